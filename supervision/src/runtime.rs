//! [`SupervisionRuntime`]: one supervision tree with its arbiters, registry and event stream.
//!
//! ```text
//!   SupervisionRuntime ── owns ──▶ arbiters (threads), Registry, event stream
//!        │
//!        ▼
//!   /  (root supervisor) ── escalation ──▶ OnEscalation::{Exit, Stay}
//!   ├── /pipelines        (supervisor)
//!   │   └── /pipelines/p  (supervisor) ...
//!   └── /http             (worker)
//! ```

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Arbiter, System};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::child_control::ChildControl;
use crate::death_watch::ExitNotifier;
use crate::error::SupervisionError;
use crate::events::{Events, Lifecycle, LifecycleEvent};
use crate::handle::TreeHandle;
use crate::path::ActorPath;
use crate::policy::{KillMode, OnEscalation};
use crate::reason::StopReason;
use crate::registry::{ActorState, Entry, Registry};
use crate::settings::SupervisorSettings;
use crate::shared::Shared;
use crate::spec::{ChildSpec, SupervisorSpec};
use crate::supervisor::{start_supervisor, SupervisorControl, SupervisorStart};

/// The largest event buffer a runtime accepts.
pub const MAX_EVENT_CAPACITY: usize = 1 << 24;

/// How a runtime is set up.
#[derive(Clone, Debug)]
pub struct RuntimeSettings {
    /// Arbiter threads that host the actors (default: one per core).
    pub arbiters: usize,
    /// What happens when the root supervisor escalates.
    pub on_escalation: OnEscalation,
    /// The root supervisor's settings.
    pub root: SupervisorSettings,
    /// Events buffered per subscriber before a slow one lags.
    pub event_capacity: usize,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            arbiters: std::thread::available_parallelism().map_or(1, usize::from),
            on_escalation: OnEscalation::Stay,
            root: SupervisorSettings::default(),
            event_capacity: 65_536,
        }
    }
}

/// A running supervision tree. Dropping it shuts the tree down without waiting; call
/// [`SupervisionRuntime::shutdown`] to stop it in order and wait.
pub struct SupervisionRuntime {
    shared: Arc<Shared>,
    root: Arc<SupervisorControl>,
    root_exit: watch::Receiver<Option<StopReason>>,
    arbiters: Vec<Arbiter>,
}

impl SupervisionRuntime {
    /// Starts the arbiters and the root supervisor with `children`, and returns once every child
    /// has started (children in order, as OTP does). Must run inside an actix System.
    pub async fn start(
        settings: RuntimeSettings,
        children: Vec<ChildSpec>,
    ) -> Result<Self, SupervisionError> {
        if System::try_current().is_none() {
            return Err(SupervisionError::NoSystem);
        }
        if !(1..=MAX_EVENT_CAPACITY).contains(&settings.event_capacity) {
            return Err(SupervisionError::InvalidSetting {
                setting: "runtime.event_capacity",
                why: format!(
                    "{} must lie between 1 and {MAX_EVENT_CAPACITY}",
                    settings.event_capacity
                ),
            });
        }
        if settings.arbiters == 0 {
            return Err(SupervisionError::InvalidSetting {
                setting: "runtime.arbiters",
                why: "at least one arbiter is needed".to_owned(),
            });
        }
        let spec = SupervisorSpec::builder()
            .settings(settings.root.clone())
            .children(children)
            .build()?;
        let arbiters = (0..settings.arbiters)
            .map(|_| {
                Arbiter::try_new().map_err(|error| SupervisionError::Arbiter(error.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let shared = Arc::new(Shared {
            registry: Registry::default(),
            events: Events::new(settings.event_capacity),
            arbiters: arbiters.iter().map(Arbiter::handle).collect(),
            next_arbiter: AtomicUsize::new(0),
            stop_timeouts: Mutex::new(Vec::new()),
        });
        let (exits_tx, mut exits_rx) = mpsc::unbounded_channel();
        let root_path = ActorPath::root();
        let (started_tx, started_rx) = oneshot::channel();
        let root = start_supervisor(SupervisorStart {
            path: root_path.clone(),
            kind: "supervisor",
            spec: Arc::new(spec),
            notifier: ExitNotifier::new(exits_tx, 0, 1),
            arbiter: shared.arbiter(Some(0)),
            shared: Arc::clone(&shared),
            started: started_tx,
        });
        let root_control: Arc<dyn ChildControl> = Arc::clone(&root) as _;
        shared.registry.insert(
            root_path.clone(),
            Entry {
                kind: "supervisor",
                state: ActorState::Running,
                restarts: 0,
                incarnation: 1,
                control: Arc::clone(&root_control),
            },
        );
        shared.events.emit(
            &root_path,
            "supervisor",
            Lifecycle::Started { incarnation: 1 },
        );

        let (exit_tx, root_exit) = watch::channel(None);
        let watcher_shared = Arc::clone(&shared);
        let on_escalation = settings.on_escalation;
        shared.arbiter(Some(0)).spawn(async move {
            let reason = match exits_rx.recv().await {
                Some(exit) => exit.reason,
                None => StopReason::Panicked("the root supervisor vanished".to_owned()),
            };
            watcher_shared.registry.remove(&root_path, &root_control);
            watcher_shared.events.emit(
                &root_path,
                "supervisor",
                Lifecycle::Stopped {
                    reason: reason.clone(),
                },
            );
            if reason.is_failure() && on_escalation == OnEscalation::Exit {
                tracing::error!(%reason, "root supervisor gave up; exiting (on_escalation = \"exit\")");
                std::process::exit(1);
            }
            let _ = exit_tx.send(Some(reason));
        });

        // The root answers once its children have started (or it died trying: the sender drops).
        let _ = started_rx.await;
        let runtime = SupervisionRuntime {
            shared,
            root,
            root_exit,
            arbiters,
        };
        if runtime.root_exit.borrow().is_some() || runtime.registry().get("/").is_none() {
            let reason = runtime.stopped().await;
            return Err(SupervisionError::Stopped(format!(
                "/ (the root supervisor: {reason})"
            )));
        }
        Ok(runtime)
    }

    /// The registry of live actors.
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// Subscribes to lifecycle events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LifecycleEvent> {
        self.shared.events.subscribe()
    }

    /// Kills the actor at `path` (see [`Registry::kill`]).
    pub fn kill(&self, path: &str, mode: KillMode) -> Result<(), SupervisionError> {
        self.shared.registry.kill(path, mode)
    }

    /// A cloneable handle on the tree (for threads and handlers outside the actors).
    pub fn handle(&self) -> TreeHandle {
        TreeHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Adds a child under the supervisor at `parent` and starts it; returns its path.
    pub async fn start_child(
        &self,
        parent: &str,
        spec: ChildSpec,
    ) -> Result<ActorPath, SupervisionError> {
        self.handle().start_child(parent, spec).await
    }

    /// Stops the child `name` of the supervisor at `parent` for good (subtree first) and waits.
    pub async fn stop_child(&self, parent: &str, name: &str) -> Result<(), SupervisionError> {
        self.handle().stop_child(parent, name).await
    }

    /// Waits until the root supervisor stops (an escalation under `Stay`, or a shutdown) and
    /// returns why.
    pub async fn stopped(&self) -> StopReason {
        let mut exit = self.root_exit.clone();
        let reason = match exit.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or(StopReason::Shutdown),
            Err(_) => StopReason::Panicked("the root watcher vanished".to_owned()),
        };
        reason
    }

    /// Stops the whole tree in order (children before parents, each within its own timeout) and
    /// waits at most `deadline`; then stops the arbiters.
    pub async fn shutdown(self, deadline: Duration) -> Result<(), SupervisionError> {
        self.root.shutdown();
        let finished = tokio::time::timeout(deadline, self.stopped()).await.is_ok();
        let timed_out: Vec<String> = self
            .shared
            .stop_timeouts
            .lock()
            .map(|paths| paths.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
        if finished && timed_out.is_empty() {
            Ok(())
        } else {
            let mut still_running: Vec<String> = self
                .shared
                .registry
                .list()
                .into_iter()
                .map(|info| info.path.to_string())
                .collect();
            still_running.extend(timed_out);
            Err(SupervisionError::ShutdownTimeout {
                deadline,
                still_running,
            })
        }
    }
}

impl Drop for SupervisionRuntime {
    /// Without an explicit shutdown, the tree still stops in order, in the background.
    fn drop(&mut self) {
        if self.root_exit.borrow().is_none() {
            self.root.shutdown();
        }
    }
}
