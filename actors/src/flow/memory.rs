//! Backpressure from memory: the bytes of records in flight, held against a budget.
//!
//! A batch leaving a source partition takes a [`Lease`] on its records' bytes (keys and
//! payloads). The lease rides with the batch and with every batch an operator makes of it
//! ([`crate::record::Batch::successor`], splits, fan-out clones), and its bytes are given back
//! when the last of them is dropped: written by a sink, or absorbed into a window's aggregates
//! (whose acks may still wait: bytes no longer held stop counting at once). A partition pauses
//! while its own bytes in flight reach its cap or the whole runtime's reach the
//! [`MemoryBudget`], and resumes below them. Counting is two atomic additions per batch; nothing
//! per record.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The runtime's memory budget for records in flight, shared by all its partitions.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
    peak: AtomicUsize,
}

/// Budgets are equal when they allow as much (settings compare by what they say).
impl PartialEq for MemoryBudget {
    fn eq(&self, other: &Self) -> bool {
        self.limit == other.limit
    }
}

impl Eq for MemoryBudget {}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(MemoryBudget {
            limit: limit.max(1),
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        })
    }

    /// No budget: only the partitions' own caps apply.
    pub fn unlimited() -> Arc<Self> {
        Self::new(usize::MAX)
    }

    /// The budget, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The bytes of records in flight now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The most bytes ever in flight at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    fn is_full(&self) -> bool {
        self.used() >= self.limit
    }

    fn take(&self, bytes: usize) {
        let now = self.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// The bytes one source partition has in flight, against its own cap and the budget.
#[derive(Debug, Clone)]
pub(crate) struct PartitionMemory {
    used: Arc<AtomicUsize>,
    cap: usize,
    budget: Arc<MemoryBudget>,
}

impl PartitionMemory {
    /// A partition allowed `cap` bytes in flight, within `budget`.
    pub(crate) fn new(cap: usize, budget: Arc<MemoryBudget>) -> Self {
        PartitionMemory {
            used: Arc::new(AtomicUsize::new(0)),
            cap: cap.max(1),
            budget,
        }
    }

    /// No limit at all (tests of other rules).
    pub(crate) fn unlimited() -> Self {
        Self::new(usize::MAX, MemoryBudget::unlimited())
    }

    /// Whether the partition must not send more: its bytes in flight reach its cap, or the
    /// runtime's reach the budget.
    pub(crate) fn is_full(&self) -> bool {
        self.used() >= self.cap || self.budget.is_full()
    }

    /// The partition's bytes in flight.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The most bytes one batch of this partition may hold: a small share of its cap and of the
    /// budget (so that going past them by one batch stays small), never past `ceiling`.
    pub(crate) fn batch_bytes(&self, ceiling: usize) -> usize {
        (self.cap / 8).min(self.budget.limit / 32).clamp(1, ceiling)
    }

    /// Counts `bytes` as in flight until the returned lease is dropped.
    pub(crate) fn lease(&self, bytes: usize) -> Lease {
        self.used.fetch_add(bytes, Ordering::Relaxed);
        self.budget.take(bytes);
        Lease::Bytes {
            bytes,
            partition: Arc::clone(&self.used),
            budget: Arc::clone(&self.budget),
        }
    }
}

/// Bytes counted in flight, given back when dropped.
#[derive(Debug)]
pub(crate) enum Lease {
    /// Bytes of one batch of a partition.
    Bytes {
        bytes: usize,
        partition: Arc<AtomicUsize>,
        budget: Arc<MemoryBudget>,
    },
    /// The leases of several batches (records gathered from them into one).
    Several(Vec<Arc<Lease>>),
}

impl Lease {
    /// One lease holding both `held` and `more` (`held` itself when it already holds `more`).
    pub(crate) fn join(held: &Arc<Lease>, more: &Arc<Lease>) -> Arc<Lease> {
        let holds = |lease: &Arc<Lease>| {
            Arc::ptr_eq(lease, more)
                || matches!(&**lease, Lease::Several(all) if all.iter().any(|one| Arc::ptr_eq(one, more)))
        };
        if holds(held) {
            return Arc::clone(held);
        }
        let mut all = match &**held {
            Lease::Several(all) => all.clone(),
            Lease::Bytes { .. } => vec![Arc::clone(held)],
        };
        all.push(Arc::clone(more));
        Arc::new(Lease::Several(all))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Lease::Bytes {
            bytes,
            partition,
            budget,
        } = self
        {
            partition.fetch_sub(*bytes, Ordering::Relaxed);
            budget.give_back(*bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_count_until_dropped_against_cap_and_budget() {
        let budget = MemoryBudget::new(1_000);
        let first = PartitionMemory::new(600, Arc::clone(&budget));
        let second = PartitionMemory::new(600, Arc::clone(&budget));
        let a = first.lease(600);
        assert!(first.is_full(), "at its own cap");
        assert!(!second.is_full(), "the budget has room");
        let b = second.lease(400);
        assert!(second.is_full(), "the budget is spent");
        assert_eq!((budget.used(), budget.peak()), (1_000, 1_000));
        drop(a);
        assert!(!first.is_full() && !second.is_full());
        assert_eq!((first.used(), second.used(), budget.used()), (0, 400, 400));
        drop(b);
        assert_eq!((budget.used(), budget.peak()), (0, 1_000));
    }

    #[test]
    fn joined_leases_give_back_when_the_last_holder_drops() {
        let budget = MemoryBudget::new(1_000);
        let memory = PartitionMemory::new(1_000, Arc::clone(&budget));
        let (a, b) = (Arc::new(memory.lease(100)), Arc::new(memory.lease(50)));
        let both = Lease::join(&a, &b);
        assert!(Arc::ptr_eq(&Lease::join(&both, &b), &both), "held once");
        drop((a, b));
        assert_eq!(budget.used(), 150, "the joined lease still holds both");
        drop(both);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_batch_holds_a_small_share_of_cap_and_budget() {
        let memory = PartitionMemory::new(64 << 20, MemoryBudget::new(64 << 20));
        assert_eq!(memory.batch_bytes(usize::MAX), 2 << 20);
        assert_eq!(memory.batch_bytes(1_000), 1_000);
        assert_eq!(PartitionMemory::unlimited().batch_bytes(4_096), 4_096);
    }
}
