//! The threads and tasks that turn the runtime's state into metrics: lifecycle events into
//! restart and escalation counters, the registry into mailbox gauges, readiness into
//! `streamvisor_ready`. Each runs while the runtime does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use streamvisor_supervision::TreeHandle;

use super::RuntimeHandle;

/// Turns lifecycle events into the restart and escalation counters, on a thread of its own
/// (it ends with the tree).
pub(super) fn count_lifecycle(tree: &TreeHandle) {
    use streamvisor_supervision::Lifecycle;
    use tokio::sync::broadcast::error::RecvError;
    let mut events = tree.subscribe();
    let spawned = std::thread::Builder::new()
        .name("lifecycle-metrics".to_owned())
        .spawn(move || loop {
            match events.blocking_recv() {
                Ok(event) => match event.event {
                    Lifecycle::Restarted { .. } => {
                        streamvisor_actors::metrics::actor_restarted(event.kind)
                    }
                    Lifecycle::Escalated => {
                        streamvisor_actors::metrics::supervisor_escalated(event.kind)
                    }
                    _ => {}
                },
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "lifecycle metrics missed events")
                }
                Err(RecvError::Closed) => return,
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "could not start the lifecycle metrics thread");
    }
}

/// Sets the mailbox gauges (messages waiting, by pipeline and actor kind) once a second, on a
/// thread of its own, while `running` holds.
pub(super) fn sample_mailboxes(tree: TreeHandle, running: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("mailbox-metrics".to_owned())
        .spawn(move || {
            while running.load(Ordering::Acquire) {
                let mut totals: std::collections::BTreeMap<(String, &'static str), (usize, usize)> =
                    Default::default();
                for actor in tree.registry().list() {
                    // /pipelines/<p>/...: the pipeline label; runtime services count under "".
                    let pipeline = actor
                        .path
                        .as_str()
                        .split('/')
                        .nth(2)
                        .unwrap_or_default()
                        .to_owned();
                    let total = totals.entry((pipeline, actor.kind)).or_default();
                    total.0 += actor.mailbox_len;
                    total.1 += actor.mailbox_capacity;
                }
                for ((pipeline, kind), (messages, capacity)) in totals {
                    streamvisor_actors::metrics::mailboxes(&pipeline, kind, messages, capacity);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "could not start the mailbox metrics thread");
    }
}

/// Keeps the samplers running while it lives: [`Sampling::stop`] or dropping it (a runtime
/// dropped without a shutdown) ends them.
#[derive(Debug)]
pub(super) struct Sampling(Arc<AtomicBool>);

impl Sampling {
    /// Samplers may run.
    pub(super) fn start() -> Self {
        Sampling(Arc::new(AtomicBool::new(true)))
    }

    /// The flag a sampler checks.
    pub(super) fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }

    /// Ends the samplers.
    pub(super) fn stop(&self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Drop for Sampling {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sets the readiness gauge of `pipeline` once a second, on a task of the current actix
/// System, while `running` holds; 0 once it ends (a stopped pipeline is not ready).
pub(super) fn sample_readiness(pipeline: String, view: RuntimeHandle, running: Arc<AtomicBool>) {
    actix_rt::spawn(async move {
        while running.load(Ordering::Acquire) {
            let ready = view.readiness().await.is_ok();
            // A shutdown during the check must not leave a stale 1 behind.
            let ready = ready && running.load(Ordering::Acquire);
            streamvisor_actors::metrics::set_ready(&pipeline, ready);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        streamvisor_actors::metrics::set_ready(&pipeline, false);
    });
}
