//! The supervisor: starts children from their recipes, watches them die, and restarts them by
//! strategy, policy, restart intensity and backoff; past its intensity it stops its children and
//! escalates to its parent.
//!
//! A supervisor is a task on an actix arbiter (it lives in the actix System like any actor),
//! driven by its stop signal (a watch channel: never lost, never full), a bounded command queue
//! (add or remove a child), and its children's exits (one per child incarnation, reported by each
//! child's death watch).
//!
//! ```text
//!   parent supervisor
//!        │ stop signal, commands        ▲ exit (death watch)
//!        ▼                              │
//!   supervisor ── start from recipe ──▶ child, child, child ...
//!        ▲                              │
//!        └──────── exits ───────────────┘
//! ```

mod children;
pub(crate) mod control;
mod restart;

pub(crate) use control::{Command, SupervisorControl};

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::ArbiterHandle;
use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot, watch};

use crate::child_control::ChildControl;
use crate::death_watch::{ChildExit, ExitNotifier};
use crate::error::SupervisionError;
use crate::events::Lifecycle;
use crate::handle::TreeHandle;
use crate::intensity::RestartIntensity;
use crate::path::ActorPath;
use crate::policy::KillMode;
use crate::reason::{panic_message, Failure, StopReason};
use crate::registry::{ActorState, Entry};
use crate::resource::{OwnedResource, OwnerContext, ResourceFactory};
use crate::settings::SupervisorSettings;
use crate::shared::Shared;
use crate::spec::{ChildKind, ChildSpec, SupervisorSpec, COMMAND_CAPACITY};
use crate::worker::WorkerStart;
use children::{Children, Slot, SlotState};
use control::StopSignal;

/// How long a supervisor waits for a child to start before it goes on regardless.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// What starting a supervisor needs.
pub(crate) struct SupervisorStart {
    pub(crate) path: ActorPath,
    pub(crate) kind: &'static str,
    pub(crate) spec: Arc<SupervisorSpec>,
    pub(crate) notifier: ExitNotifier,
    pub(crate) arbiter: ArbiterHandle,
    pub(crate) shared: Arc<Shared>,
    /// Told once every child has started (OTP's synchronous start).
    pub(crate) started: oneshot::Sender<()>,
}

/// Starts a supervisor task on `start.arbiter`; its exit goes to `start.notifier`, even when it
/// panics outside a guarded handler.
pub(crate) fn start_supervisor(start: SupervisorStart) -> Arc<SupervisorControl> {
    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_CAPACITY);
    let (stop_tx, stop_rx) = watch::channel(StopSignal::Run);
    let control = Arc::new(SupervisorControl {
        path: start.path.clone(),
        commands: commands_tx,
        stop: Arc::new(stop_tx),
    });
    let SupervisorStart {
        path,
        kind,
        spec,
        mut notifier,
        arbiter,
        shared,
        started,
    } = start;
    let task = async move {
        let supervisor = Supervisor::new(path, kind, &spec, shared, commands_rx, stop_rx);
        let reason = match AssertUnwindSafe(supervisor.run(started))
            .catch_unwind()
            .await
        {
            Ok(reason) => reason,
            Err(payload) => StopReason::Panicked(panic_message(&*payload)),
        };
        notifier.report(reason);
    };
    // A dead arbiter drops the task, and with it the notifier, which reports the death.
    arbiter.spawn(task);
    control
}

enum Step {
    Stop(Option<StopSignal>),
    Command(Option<Command>),
    Exit(Option<ChildExit>),
    RestartDue,
}

struct Supervisor {
    path: ActorPath,
    kind: &'static str,
    shared: Arc<Shared>,
    settings: SupervisorSettings,
    /// Children by a key that grows with each addition: key order is start order.
    slots: Children,
    next_key: u64,
    exits_tx: mpsc::UnboundedSender<ChildExit>,
    exits_rx: mpsc::UnboundedReceiver<ChildExit>,
    commands: mpsc::Receiver<Command>,
    stop: watch::Receiver<StopSignal>,
    intensity: RestartIntensity,
    deferred: VecDeque<ChildExit>,
    owns: Option<ResourceFactory>,
    resource: Option<OwnedResource>,
}

impl Supervisor {
    fn new(
        path: ActorPath,
        kind: &'static str,
        spec: &SupervisorSpec,
        shared: Arc<Shared>,
        commands: mpsc::Receiver<Command>,
        stop: watch::Receiver<StopSignal>,
    ) -> Self {
        let (exits_tx, exits_rx) = mpsc::unbounded_channel();
        let slots = Children::from_specs(&path, &spec.children);
        Supervisor {
            intensity: RestartIntensity::new(spec.settings.max_restarts, spec.settings.within),
            settings: spec.settings.clone(),
            path,
            kind,
            shared,
            next_key: spec.children.len() as u64,
            slots,
            exits_tx,
            exits_rx,
            commands,
            stop,
            deferred: VecDeque::new(),
            owns: spec.owns.clone(),
            resource: None,
        }
    }
}

impl Supervisor {
    async fn run(mut self, started: oneshot::Sender<()>) -> StopReason {
        for key in self.slots.keys() {
            self.start_slot(key).await;
        }
        if let Err(failure) = self.make_resource().await {
            tracing::warn!(path = %self.path, %failure, "supervisor could not make what it owns");
            let _ = started.send(());
            return self
                .terminate(StopReason::Failed(failure.to_string()))
                .await;
        }
        let _ = started.send(());
        loop {
            let outcome = if let Some(exit) = self.deferred.pop_front() {
                self.on_exit(exit).await
            } else {
                let due = self.next_due();
                let step = tokio::select! {
                    biased;
                    changed = self.stop.changed() => {
                        Step::Stop(changed.ok().map(|()| *self.stop.borrow_and_update()))
                    }
                    command = self.commands.recv() => Step::Command(command),
                    exit = self.exits_rx.recv() => Step::Exit(exit),
                    () = sleep_until(due) => Step::RestartDue,
                };
                match step {
                    // Every handle on this supervisor is gone: nobody can reach it any more.
                    Step::Stop(None) | Step::Command(None) => Some(StopReason::Shutdown),
                    Step::Stop(Some(signal)) => self.on_stop_signal(signal),
                    Step::Command(Some(command)) => {
                        self.on_command(command).await;
                        None
                    }
                    Step::Exit(Some(exit)) => self.on_exit(exit).await,
                    Step::Exit(None) => None,
                    Step::RestartDue => {
                        self.restart_due().await;
                        None
                    }
                }
            };
            if let Some(reason) = outcome {
                return self.terminate(reason).await;
            }
        }
    }

    fn on_stop_signal(&mut self, signal: StopSignal) -> Option<StopReason> {
        match signal {
            StopSignal::Run => None,
            StopSignal::Shutdown => Some(StopReason::Shutdown),
            StopSignal::Kill(KillMode::Stop) => Some(StopReason::Killed),
            StopSignal::Kill(KillMode::Panic) => {
                let path = self.path.clone();
                let outcome = catch_unwind::<_, ()>(move || {
                    panic!("killed by request at {path} (mode=panic)")
                });
                outcome
                    .err()
                    .map(|payload| StopReason::Panicked(panic_message(&*payload)))
            }
        }
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::StartChild { spec, reply } => {
                let outcome = self.add_child(spec).await;
                match &outcome {
                    Ok(_) => {}
                    // A caller that starts a child it has not seen listed yet (its start still
                    // on the way) learns it from the answer: no cause for a warning.
                    Err(error @ SupervisionError::DuplicateChild { .. }) => {
                        tracing::debug!(supervisor = %self.path, %error, "the child runs already")
                    }
                    Err(error) => {
                        tracing::warn!(supervisor = %self.path, %error, "could not add a child")
                    }
                }
                let _ = reply.send(outcome);
            }
            Command::StopChild { name, reply } => {
                let outcome = self.remove_child(&name).await;
                if let Err(error) = &outcome {
                    tracing::warn!(supervisor = %self.path, %error, "could not remove a child");
                }
                let _ = reply.send(outcome);
            }
        }
    }

    async fn add_child(&mut self, spec: ChildSpec) -> Result<ActorPath, SupervisionError> {
        spec.validate()?;
        if self.slots.key_named(&spec.name).is_some() {
            return Err(SupervisionError::DuplicateChild {
                supervisor: self.path.to_string(),
                name: spec.name.to_string(),
            });
        }
        let slot = Slot::new(&self.path, &spec);
        let path = slot.path.clone();
        let key = self.next_key;
        self.next_key += 1;
        self.slots.push(key, slot);
        self.start_slot(key).await;
        Ok(path)
    }

    async fn remove_child(&mut self, name: &str) -> Result<(), SupervisionError> {
        let key = self
            .slots
            .key_named(name)
            .ok_or_else(|| SupervisionError::UnknownPath(self.path.child(name).to_string()))?;
        self.stop_slot_for_good(key).await;
        Ok(())
    }

    /// Starts (or restarts) the child under `key` from its recipe, waits until it has started
    /// (a supervisor: with all its children), and lists it.
    async fn start_slot(&mut self, key: u64) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        let restart = slot.incarnation > 0;
        slot.incarnation += 1;
        if restart {
            slot.restarts = slot.restarts.saturating_add(1);
        }
        let notifier = ExitNotifier::new(self.exits_tx.clone(), key, slot.incarnation);
        let arbiter = self.shared.arbiter(slot.template.arbiter);
        let (started_tx, started_rx) = oneshot::channel();
        let control: Arc<dyn ChildControl> = match &slot.template.recipe {
            ChildKind::Worker(recipe) => recipe.start(WorkerStart {
                path: slot.path.clone(),
                capacity: slot.template.mailbox_capacity,
                notifier,
                arbiter,
                started: started_tx,
            }),
            ChildKind::Supervisor(spec) => start_supervisor(SupervisorStart {
                path: slot.path.clone(),
                kind: slot.template.kind,
                spec: Arc::clone(spec),
                notifier,
                arbiter,
                shared: Arc::clone(&self.shared),
                started: started_tx,
            }),
        };
        let (path, kind, incarnation, restarts) = (
            slot.path.clone(),
            slot.template.kind,
            slot.incarnation,
            slot.restarts,
        );
        slot.state = SlotState::Running;
        slot.control = Some(Arc::clone(&control));
        // A child that dies during its start still answers (its sender drops): no hang.
        if tokio::time::timeout(START_TIMEOUT, started_rx)
            .await
            .is_err()
        {
            tracing::warn!(path = %path, timeout = ?START_TIMEOUT, "child slow to start; going on");
        }
        self.shared.registry.insert(
            path.clone(),
            Entry {
                kind,
                state: ActorState::Running,
                restarts,
                incarnation,
                control,
            },
        );
        let event = if restart {
            Lifecycle::Restarted {
                incarnation,
                restarts,
            }
        } else {
            Lifecycle::Started { incarnation }
        };
        self.shared.events.emit(&path, kind, event);
    }

    /// Asks the running child under `key` to stop and waits for it (its shutdown timeout at
    /// most); `None` when it did not stop in time (recorded for the shutdown report).
    async fn stop_and_wait(&mut self, key: u64, state: ActorState) -> Option<StopReason> {
        let slot = self.slots.get(key)?;
        let control = slot.control.clone()?;
        let (path, incarnation, timeout) = (
            slot.path.clone(),
            slot.incarnation,
            slot.template.shutdown_timeout,
        );
        self.shared.registry.set_state(&path, &control, state);
        control.shutdown();
        let reason = self.wait_for_exit(key, incarnation, timeout).await;
        if reason.is_none() {
            self.shared.note_stop_timeout(&path, timeout);
        }
        reason
    }

    /// Stops the child under `key` (if it runs), waits for it, and removes it from the tree.
    async fn stop_slot_for_good(&mut self, key: u64) {
        let running = self
            .slots
            .get(key)
            .is_some_and(|slot| matches!(slot.state, SlotState::Running));
        let reason = if running {
            self.stop_and_wait(key, ActorState::Stopping).await
        } else {
            None
        };
        self.forget(key, reason.unwrap_or(StopReason::Shutdown));
    }

    /// Removes a child from the tree for good: its slot, its registry entry (only if it is still
    /// this child's), and a `Stopped` event.
    fn forget(&mut self, key: u64, reason: StopReason) {
        if let Some(slot) = self.slots.remove(key) {
            if let Some(control) = &slot.control {
                self.shared.registry.remove(&slot.path, control);
            }
            self.shared.events.emit(
                &slot.path,
                slot.template.kind,
                Lifecycle::Stopped { reason },
            );
        }
    }

    /// Waits for the exit of one incarnation, keeping other exits for later.
    async fn wait_for_exit(
        &mut self,
        key: u64,
        incarnation: u64,
        timeout: Duration,
    ) -> Option<StopReason> {
        let matches = |exit: &ChildExit| exit.slot == key && exit.incarnation == incarnation;
        if let Some(position) = self.deferred.iter().position(matches) {
            return self.deferred.remove(position).map(|exit| exit.reason);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.exits_rx.recv()).await {
                Ok(Some(exit)) if matches(&exit) => return Some(exit.reason),
                Ok(Some(exit)) => self.deferred.push_back(exit),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Makes the resource this supervisor owns, off the arbiter thread (it may block).
    async fn make_resource(&mut self) -> Result<(), Failure> {
        let Some(factory) = self.owns.clone() else {
            return Ok(());
        };
        let context = OwnerContext {
            path: self.path.clone(),
            tree: TreeHandle {
                shared: Arc::clone(&self.shared),
            },
        };
        let made = tokio::task::spawn_blocking(move || {
            catch_unwind(AssertUnwindSafe(|| factory(&context)))
                .unwrap_or_else(|payload| Err(Failure::new(panic_message(&*payload))))
        })
        .await
        .unwrap_or_else(|error| Err(Failure::new(error.to_string())));
        self.resource = Some(made?);
        Ok(())
    }

    /// Stops every child, last started first, each within its shutdown timeout; returns `reason`.
    /// What the supervisor owns goes first (off the arbiter thread), while its children still run.
    async fn terminate(&mut self, reason: StopReason) -> StopReason {
        if reason != StopReason::Shutdown {
            tracing::warn!(path = %self.path, %reason, "supervisor stopping its children");
        }
        // From now on its children are stopping: kills are refused rather than absorbed.
        for (_, slot) in self.slots.iter() {
            if let Some(control) = &slot.control {
                self.shared
                    .registry
                    .set_state(&slot.path, control, ActorState::Stopping);
            }
        }
        if let Some(resource) = self.resource.take() {
            let dropped = tokio::task::spawn_blocking(move || {
                catch_unwind(AssertUnwindSafe(move || drop(resource))).is_ok()
            })
            .await;
            if !matches!(dropped, Ok(true)) {
                tracing::warn!(path = %self.path, "dropping what the supervisor owned panicked");
            }
        }
        for key in self.slots.keys().into_iter().rev() {
            self.stop_slot_for_good(key).await;
        }
        reason
    }
}

impl Drop for Supervisor {
    /// A supervisor that died outside `terminate` (a panic in its own code) still leaves no orphan:
    /// its children are asked to stop and leave the registry.
    fn drop(&mut self) {
        for slot in self.slots.take_all() {
            if let Some(control) = &slot.control {
                control.shutdown();
                self.shared.registry.remove(&slot.path, control);
            }
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await,
        None => std::future::pending().await,
    }
}
