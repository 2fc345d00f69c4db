//! The death watch: how a child's exit reaches its supervisor exactly once, even when nobody saw
//! it coming (a panic outside a guarded handler, a panicking factory, a task that vanished).

use tokio::sync::mpsc;

use crate::reason::StopReason;

/// A child's exit, as delivered to its supervisor.
#[derive(Debug)]
pub(crate) struct ChildExit {
    pub(crate) slot: u64,
    pub(crate) incarnation: u64,
    pub(crate) reason: StopReason,
}

/// Carried by every child: reports its exit to the supervisor exactly once. Dropped without a
/// report, it reports a panic.
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
