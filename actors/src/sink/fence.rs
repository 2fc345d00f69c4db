//! [`TransactionFence`]: what an exactly-once sink and its Kafka source agree on, under one lock.
//!
//! A transaction commits records together with their partitions' next offsets; it must only
//! contain records of partitions' current incarnations, and a partition must never rewind to a
//! position before records a transaction has committed (they would be written twice). So:
//! - the source records each partition's current incarnation here (on assign, rewind and
//!   revoke), and takes the lock while it rewinds (processing the acks already sent to it
//!   first) and while it looks up where newly assigned partitions start;
//! - the sink takes the lock, checks that every batch of its transaction is current, commits,
//!   and sends its acks before it lets go.
//!
//! A new sink makes every incarnation stale and asks for a rewind of every partition: its
//! predecessor may have died holding records of any of them, and records after such a gap must
//! not commit before the gap is replayed.
//!
//! Incarnations here go on counting across sources (a restarted source supervisor), so that
//! records of an earlier source cannot pass for current ones. The fence also keeps the
//! consumer's group metadata (its generation changes at each rebalance), which a transaction
//! sends with its offsets so that the broker refuses a commit from an outdated member.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rdkafka::consumer::ConsumerGroupMetadata;

/// Shared by a source and the exactly-once sink of its pipeline.
#[derive(Clone, Default)]
pub struct TransactionFence {
    state: Arc<Mutex<FenceState>>,
}

impl std::fmt::Debug for TransactionFence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionFence").finish_non_exhaustive()
    }
}

impl PartialEq for TransactionFence {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.state, &other.state)
    }
}

impl Eq for TransactionFence {}

impl TransactionFence {
    /// Takes the lock.
    pub fn lock(&self) -> MutexGuard<'_, FenceState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the lock if nobody holds it (a commit in progress does).
    pub fn try_lock(&self) -> Option<MutexGuard<'_, FenceState>> {
        match self.state.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

/// What the lock guards.
#[derive(Default)]
pub struct FenceState {
    current: HashMap<i32, u64>,
    last: HashMap<i32, u64>,
    /// The next offset of each partition as this process's transactions committed it.
    committed: HashMap<i32, i64>,
    metadata: Option<Arc<ConsumerGroupMetadata>>,
}

impl FenceState {
    /// The first incarnation for `partition`, newly assigned: past every earlier one, and at
    /// least `at_least`.
    pub fn assign(&mut self, partition: i32, at_least: u64) -> u64 {
        let incarnation = self
            .last
            .get(&partition)
            .map_or(1, |last| last + 1)
            .max(at_least);
        self.set(partition, incarnation);
        incarnation
    }

    /// `partition` runs `incarnation` now (a rewind).
    pub fn set(&mut self, partition: i32, incarnation: u64) {
        self.current.insert(partition, incarnation);
        let last = self.last.entry(partition).or_default();
        *last = (*last).max(incarnation);
    }

    /// Makes every partition's current incarnation stale (a new exactly-once sink starts: its
    /// predecessor may have died holding records of any of them, and a rewind of every
    /// partition, which it asks for, makes the replays current).
    pub fn invalidate_all(&mut self) {
        self.current.clear();
    }

    /// `partition` is not read here any more.
    pub fn revoke(&mut self, partition: i32) {
        self.current.remove(&partition);
    }

    /// True when records of `partition` read by `incarnation` are current.
    pub fn is_current(&self, partition: i32, incarnation: u64) -> bool {
        self.current.get(&partition) == Some(&incarnation)
    }

    /// A transaction committed `partition` up to `next` (exclusive).
    pub fn committed(&mut self, partition: i32, next: i64) {
        let committed = self.committed.entry(partition).or_default();
        *committed = (*committed).max(next);
    }

    /// Where a newly assigned `partition` starts: the group's committed offset as looked up
    /// (`looked_up`), or past what this process's transactions committed if that is further
    /// (a lookup that lagged behind a transaction, or fell back to the low watermark).
    pub fn start(&self, partition: i32, looked_up: i64) -> i64 {
        self.committed
            .get(&partition)
            .map_or(looked_up, |committed| looked_up.max(*committed))
    }

    /// The consumer's group metadata, as of its last rebalance.
    pub fn metadata(&self) -> Option<Arc<ConsumerGroupMetadata>> {
        self.metadata.clone()
    }

    /// Keeps the consumer's group metadata (after a rebalance).
    pub fn set_metadata(&mut self, metadata: Option<ConsumerGroupMetadata>) {
        self.metadata = metadata.map(Arc::new);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incarnations_count_on_across_assignments_and_rewinds() {
        let fence = TransactionFence::default();
        let mut state = fence.lock();
        assert_eq!(state.assign(0, 1), 1);
        assert!(state.is_current(0, 1));
        state.set(0, 2);
        assert!(!state.is_current(0, 1));
        state.revoke(0);
        assert!(!state.is_current(0, 2));
        // A new source starts counting at 1 again: the fence moves it past 2.
        assert_eq!(state.assign(0, 1), 3);
        assert_eq!(state.assign(1, 5), 5);
        state.committed(1, 700);
        state.committed(1, 600);
        assert_eq!(state.start(1, 650), 700);
        assert_eq!(state.start(1, 900), 900);
        assert_eq!(state.start(2, 5), 5);
    }
}
