//! How a supervisor (and the registry) reaches a running child, and how a child's death reaches
//! its supervisor even when nobody saw it coming.

use std::any::Any;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::policy::KillMode;
use crate::reason::StopReason;

/// The supervisor-side handle on one incarnation of a child, worker or supervisor.
pub(crate) trait ChildControl: Send + Sync + 'static {
    /// Sends a kill; false when the child is already gone.
    fn kill(&self, mode: KillMode) -> bool;
    /// Asks the child to stop (children first, for a supervisor); it reports `Shutdown`.
    fn shutdown(&self);
    /// Messages waiting in the child's mailbox (counted by this crate).
    fn mailbox_len(&self) -> usize;
    /// The mailbox capacity.
    fn mailbox_capacity(&self) -> usize;
    /// The concrete handle, for lookups of supervisors (`start_child`, `stop_child`).
    fn as_any(&self) -> &dyn Any;
    /// A boxed `ActorRef<M>` for a worker whose messages are `M`; `None` for a supervisor.
    fn actor_ref_any(self: Arc<Self>) -> Option<Box<dyn Any + Send>>;
}

/// A child's exit, as delivered to its supervisor.
#[derive(Debug)]
pub(crate) struct ChildExit {
    pub(crate) slot: u64,
    pub(crate) incarnation: u64,
    pub(crate) reason: StopReason,
}

/// The death watch a child carries: reports its exit to the supervisor exactly once. Dropped
/// without a report (the actor's task died unseen, or its factory panicked) it reports a panic.
#[derive(Debug)]
pub(crate) struct ExitNotifier {
    // The control plane's only unbounded channel: at most one message per child incarnation.
    exits: Option<mpsc::UnboundedSender<ChildExit>>,
    slot: u64,
    incarnation: u64,
}

impl ExitNotifier {
    pub(crate) fn new(
        exits: mpsc::UnboundedSender<ChildExit>,
        slot: u64,
        incarnation: u64,
    ) -> Self {
        ExitNotifier {
            exits: Some(exits),
            slot,
            incarnation,
        }
    }

    /// The incarnation this notifier reports for.
    pub(crate) fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Reports the exit; later reports are ignored.
    pub(crate) fn report(&mut self, reason: StopReason) {
        if let Some(exits) = self.exits.take() {
            // The supervisor may be gone already (it is stopping too): nobody to tell.
            let _ = exits.send(ChildExit {
                slot: self.slot,
                incarnation: self.incarnation,
                reason,
            });
        }
    }
}

impl Drop for ExitNotifier {
    fn drop(&mut self) {
        if self.exits.is_some() {
            let why = if std::thread::panicking() {
                "the actor died while panicking outside a guarded handler"
            } else {
                "the actor died without reporting why (its task ended unseen)"
            };
            self.report(StopReason::Panicked(why.to_owned()));
        }
    }
}
