//! Test workers and waits shared by the supervision integration tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use streamvisor_supervision::{
    Failure, Lifecycle, LifecycleEvent, RuntimeSettings, StopReason, SupervisorSettings, Worker,
    WorkerContext,
};
use tokio::sync::broadcast;

/// A generous bound for anything that should take milliseconds.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Silences the panic hook for the panics these tests cause on purpose.
pub(crate) fn quiet_intended_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let text = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !(text.starts_with("killed by request") || text.starts_with("intended panic")) {
                default(info);
            }
        }));
    });
}

/// Settings for tests: two arbiters, no backoff, a high intensity unless a test says otherwise.
pub(crate) fn settings() -> RuntimeSettings {
    RuntimeSettings {
        arbiters: 2,
        root: SupervisorSettings {
            max_restarts: 100_000,
            within: Duration::from_secs(1),
            backoff: streamvisor_supervision::Backoff::none(),
            ..SupervisorSettings::default()
        },
        ..RuntimeSettings::default()
    }
}

/// What probes record: starts (name, time, thread) and stops (name, reason), in order.
#[derive(Clone, Default)]
pub(crate) struct Journal {
    pub starts: Arc<Mutex<Vec<(String, Instant, ThreadId)>>>,
    pub stops: Arc<Mutex<Vec<(String, StopReason)>>>,
    pub handled: Arc<AtomicU64>,
}

impl Journal {
    pub(crate) fn start_names(&self) -> Vec<String> {
        lock(&self.starts)
            .iter()
            .map(|(name, _, _)| name.clone())
            .collect()
    }

    pub(crate) fn stop_log(&self) -> Vec<(String, StopReason)> {
        lock(&self.stops).clone()
    }

    pub(crate) fn start_times(&self) -> Vec<Instant> {
        lock(&self.starts).iter().map(|(_, at, _)| *at).collect()
    }

    pub(crate) fn handled(&self) -> u64 {
        self.handled.load(Ordering::SeqCst)
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a probe can be told to do.
#[derive(Debug)]
pub(crate) enum Order {
    /// Count one handled message.
    Count,
    /// Panic in the handler.
    Panic,
    /// Return an error from the handler.
    Fail,
    /// Stop normally.
    Finish,
    /// Block the arbiter thread until the receiver yields (to hold messages in the mailbox).
    Block(std::sync::mpsc::Receiver<()>),
    /// Spawn a future on the actix context that panics (outside any handler guard).
    PanicInFuture,
}

/// A worker that records its life in a [`Journal`]; optionally fails at every start.
pub(crate) struct Probe {
    pub name: String,
    pub journal: Journal,
    pub fail_on_start: bool,
}

impl Probe {
    pub(crate) fn factory(
        name: &str,
        journal: &Journal,
    ) -> impl Fn() -> Probe + Send + Sync + 'static {
        let (name, journal) = (name.to_owned(), journal.clone());
        move || Probe {
            name: name.clone(),
            journal: journal.clone(),
            fail_on_start: false,
        }
    }
}

impl Worker for Probe {
    type Message = Order;

    fn started(&mut self, _ctx: &mut WorkerContext<'_, Self>) -> Result<(), Failure> {
        lock(&self.journal.starts).push((
            self.name.clone(),
            Instant::now(),
            std::thread::current().id(),
        ));
        if self.fail_on_start {
            return Err(Failure::new("fails at every start"));
        }
        Ok(())
    }

    fn handle(&mut self, order: Order, ctx: &mut WorkerContext<'_, Self>) -> Result<(), Failure> {
        match order {
            Order::Count => {
                self.journal.handled.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            Order::Panic => panic!("intended panic in {}", self.name),
            Order::Fail => Err(Failure::new("told to fail")),
            Order::Finish => {
                ctx.stop();
                Ok(())
            }
            Order::Block(release) => {
                let _ = release.recv_timeout(WAIT);
                Ok(())
            }
            Order::PanicInFuture => {
                use actix::AsyncContext;
                let doomed = async { panic!("intended panic in a spawned future") };
                ctx.actix().spawn(actix::fut::wrap_future::<
                    _,
                    streamvisor_supervision::WorkerActor<Probe>,
                >(doomed));
                Ok(())
            }
        }
    }

    fn stopped(&mut self, reason: &StopReason) {
        lock(&self.journal.stops).push((self.name.clone(), reason.clone()));
    }
}

/// Polls `condition` every 5 ms until it holds; panics naming `what` after `timeout`.
pub(crate) async fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The next event that satisfies `wanted`; panics naming `what` after `timeout`.
pub(crate) async fn next_event(
    events: &mut broadcast::Receiver<LifecycleEvent>,
    what: &str,
    mut wanted: impl FnMut(&LifecycleEvent) -> bool,
) -> LifecycleEvent {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(event)) if wanted(&event) => return event,
            Ok(Ok(_)) => {}
            Ok(Err(error)) => panic!("event stream broke while waiting for {what}: {error}"),
            Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
        }
    }
}

/// Every event received so far, without waiting.
pub(crate) fn drain(events: &mut broadcast::Receiver<LifecycleEvent>) -> Vec<LifecycleEvent> {
    let mut all = Vec::new();
    loop {
        match events.try_recv() {
            Ok(event) => all.push(event),
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => {
                return all
            }
            Err(error) => panic!("event stream broke: {error}"),
        }
    }
}

pub(crate) fn is_restart_of(event: &LifecycleEvent, path: &str) -> bool {
    event.path.as_str() == path && matches!(event.event, Lifecycle::Restarted { .. })
}
