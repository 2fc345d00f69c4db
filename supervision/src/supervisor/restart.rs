//! What a supervisor does when a child exits: the restart policy, the restart intensity, the
//! strategy's restart group, and the backoff before restarting (in start order).

use std::time::Instant;

use crate::death_watch::ChildExit;
use crate::events::Lifecycle;
use crate::policy::{RestartPolicy, SupervisionStrategy};
use crate::reason::StopReason;
use crate::registry::ActorState;

use super::{SlotState, Supervisor};

impl Supervisor {
    /// Handles a child's exit; `Some(Escalated)` when the restart intensity is spent.
    pub(super) async fn on_exit(&mut self, exit: ChildExit) -> Option<StopReason> {
        let key = exit.slot;
        let slot = self.slots.get(key)?;
        if slot.incarnation != exit.incarnation || !matches!(slot.state, SlotState::Running) {
            return None; // an older incarnation, already handled
        }
        let (path, kind, policy) = (slot.path.clone(), slot.template.kind, slot.template.policy);
        let control = slot.control.clone()?;
        let reason = exit.reason;
        if reason.is_failure() {
            tracing::warn!(path = %path, %reason, "child failed");
            self.shared.events.emit(
                &path,
                kind,
                Lifecycle::Failed {
                    reason: reason.clone(),
                },
            );
        }
        if !restarts_after(policy, &reason) {
            self.forget(key, reason);
            return None;
        }
        let now = Instant::now();
        if !self.intensity.allow_restart(now) {
            tracing::error!(
                path = %self.path,
                max_restarts = self.settings.max_restarts,
                within = ?self.settings.within,
                "restart intensity passed; escalating"
            );
            self.forget(key, reason);
            self.shared
                .events
                .emit(&self.path, self.kind, Lifecycle::Escalated);
            return Some(StopReason::Escalated);
        }
        self.shared
            .registry
            .set_state(&path, &control, ActorState::Restarting);
        let group = self.restart_group(key);
        for &sibling in group.iter().rev() {
            if sibling != key {
                self.stop_sibling(sibling).await;
            }
        }
        let slot = self.slots.get_mut(key)?;
        let delay = slot
            .backoff
            .next_delay(&self.settings.backoff, now, fastrand::f64());
        let due = now.checked_add(delay).unwrap_or(now);
        for member in group {
            if let Some(slot) = self.slots.get_mut(member) {
                let member_due = match slot.state {
                    SlotState::Pending { due: earlier } => earlier.max(due),
                    SlotState::Running => due,
                };
                slot.state = SlotState::Pending { due: member_due };
            }
        }
        None
    }

    /// The children that restart with the one under `key`, in start order.
    fn restart_group(&self, key: u64) -> Vec<u64> {
        match self.settings.strategy {
            SupervisionStrategy::OneForOne => vec![key],
            SupervisionStrategy::OneForAll => self.slots.keys(),
            SupervisionStrategy::RestForOne => self.slots.keys_from(key),
        }
    }

    /// Stops a running sibling of a failed child: it restarts with it, unless it is Temporary
    /// (then it leaves, as in OTP).
    async fn stop_sibling(&mut self, key: u64) {
        let Some(slot) = self.slots.get(key) else {
            return;
        };
        if !matches!(slot.state, SlotState::Running) {
            return;
        }
        let temporary = slot.template.policy == RestartPolicy::Temporary;
        let reason = self.stop_and_wait(key, ActorState::Restarting).await;
        if temporary {
            self.forget(key, reason.unwrap_or(StopReason::Shutdown));
        }
    }

    /// The earliest pending restart.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|(_, slot)| match slot.state {
                SlotState::Pending { due } => Some(due),
                SlotState::Running => None,
            })
            .min()
    }

    /// Starts every child whose backoff has passed, in start order. Under OneForAll and
    /// RestForOne a child never starts before an earlier child that still waits.
    pub(super) async fn restart_due(&mut self) {
        let now = Instant::now();
        let in_order = self.settings.strategy != SupervisionStrategy::OneForOne;
        let mut due = Vec::new();
        for (key, slot) in self.slots.iter() {
            match slot.state {
                SlotState::Pending { due: at } if at <= now => due.push(key),
                SlotState::Pending { .. } if in_order => break,
                _ => {}
            }
        }
        for key in due {
            self.start_slot(key).await;
        }
    }
}

/// Whether a child with `policy` restarts after stopping for `reason`.
fn restarts_after(policy: RestartPolicy, reason: &StopReason) -> bool {
    match policy {
        RestartPolicy::Permanent => true,
        RestartPolicy::Transient => reason.is_failure(),
        RestartPolicy::Temporary => false,
    }
}
