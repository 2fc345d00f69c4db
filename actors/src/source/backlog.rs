//! [`Backlog`]: producers in the process of a pipeline on the embedded broker hold back while
//! the pipeline is behind. librdkafka's mock cluster keeps at most 5 MiB or 100,000 message
//! sets per partition and deletes the oldest beyond, read or not: a generator or an ingest
//! that outruns the pipeline would have its records deleted before they are read (counted as
//! lost, but lost). So they wait while any partition of the topic holds more than
//! [`HOLD_BACK_RECORDS`] records or [`HOLD_BACK_BYTES`] not yet committed by the pipeline's
//! group. Producers count their deliveries, the source its commits: atomic counters, no lock
//! per record.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use dashmap::DashMap;

/// Records not yet committed in a partition past which producers hold back.
pub const HOLD_BACK_RECORDS: i64 = 50_000;
/// Bytes (keys and payloads) not yet committed in a partition past which producers hold back.
pub const HOLD_BACK_BYTES: u64 = 4 << 20;

/// What producers delivered to a topic's partitions and what its pipeline committed.
#[derive(Debug, Default)]
pub struct Backlog {
    partitions: DashMap<i32, Counters>,
    /// Bytes handed to producers and not delivered yet (their partition unknown yet: counted
    /// against every partition).
    sending: AtomicU64,
}

#[derive(Debug, Default)]
struct Counters {
    /// The next offset after the last delivered.
    high: AtomicI64,
    records: AtomicU64,
    bytes: AtomicU64,
    /// The next offset to read as last committed.
    committed: AtomicI64,
}

impl Counters {
    /// Records and (on average) bytes not yet committed.
    fn uncommitted(&self) -> (i64, u64) {
        let records =
            (self.high.load(Ordering::Relaxed) - self.committed.load(Ordering::Relaxed)).max(0);
        let delivered = self.records.load(Ordering::Relaxed).max(1);
        let average = self.bytes.load(Ordering::Relaxed) / delivered;
        (records, records as u64 * average)
    }
}

/// Backlogs are equal when they are the same one (settings compare by what they share).
impl PartialEq for Backlog {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for Backlog {}

impl Backlog {
    /// A record of `bytes` was handed to a producer.
    pub fn sending(&self, bytes: usize) {
        self.sending.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A record of `bytes` handed to a producer got its delivery report (delivered or not).
    pub fn sent(&self, bytes: usize) {
        let bytes = bytes as u64;
        let _ = self
            .sending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                Some(now.saturating_sub(bytes))
            });
    }

    /// A record of `bytes` was delivered to `partition` at `offset`.
    pub fn delivered(&self, partition: i32, offset: i64, bytes: usize) {
        let count = |counters: &Counters| {
            counters.high.fetch_max(offset + 1, Ordering::Relaxed);
            counters.records.fetch_add(1, Ordering::Relaxed);
            counters.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        };
        match self.partitions.get(&partition) {
            Some(counters) => count(&counters),
            None => count(&self.partitions.entry(partition).or_default()),
        }
    }

    /// The pipeline committed `partition` up to `next` (exclusive).
    pub(crate) fn committed(&self, partition: i32, next: i64) {
        self.partitions
            .entry(partition)
            .or_default()
            .committed
            .fetch_max(next, Ordering::Relaxed);
    }

    /// The most records and bytes not yet committed in one partition.
    pub fn uncommitted(&self) -> (i64, u64) {
        self.partitions
            .iter()
            .map(|counters| counters.uncommitted())
            .fold((0, 0), |(records, bytes), (r, b)| {
                (records.max(r), bytes.max(b))
            })
    }

    /// Whether producers must hold back now: a partition's records, or its bytes with every
    /// byte still on its way to the broker, past the limits.
    pub fn is_full(&self) -> bool {
        let (records, bytes) = self.uncommitted();
        let sending = self.sending.load(Ordering::Relaxed);
        records > HOLD_BACK_RECORDS || bytes + sending > HOLD_BACK_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producers_hold_back_past_the_records_or_bytes_not_committed() {
        let backlog = Backlog::default();
        for offset in 0..=HOLD_BACK_RECORDS {
            backlog.delivered(offset as i32 % 2, offset / 2, 10);
        }
        assert!(!backlog.is_full(), "25,001 records in each partition");
        for offset in 25_001..=50_000 {
            backlog.delivered(0, offset, 10);
        }
        assert_eq!(backlog.uncommitted(), (50_001, 500_010));
        assert!(backlog.is_full());
        backlog.committed(0, 10_000);
        assert!(!backlog.is_full(), "committed past 10,000");
        // Large records: 4 MiB is reached first.
        let large = Backlog::default();
        for offset in 0..5 {
            large.delivered(3, offset, 1 << 20);
        }
        assert!(large.is_full(), "5 MiB not committed");
        large.committed(3, 1);
        assert!(!large.is_full());
        // Bytes on their way count before they are delivered.
        large.sending(1 << 20);
        assert!(large.is_full(), "4 MiB not committed and 1 MiB on its way");
        large.sent(1 << 20);
        assert!(!large.is_full());
    }
}
