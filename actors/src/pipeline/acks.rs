//! [`AckRouter`]: where sinks send acknowledgements: the source that read each batch's topic.

use std::sync::Arc;

use dashmap::DashMap;

use crate::record::Batch;
use crate::source::kafka::{SourceHandle, SourceInput};

/// Sources by topic.
#[derive(Clone, Debug, Default)]
pub struct AckRouter {
    sources: Arc<DashMap<Arc<str>, SourceHandle>>,
}

impl AckRouter {
    /// Routes acks for `topic` to `source`.
    pub fn register(&self, topic: Arc<str>, source: SourceHandle) {
        self.sources.insert(topic, source);
    }

    /// The source reading `topic`, while it runs.
    pub fn source(&self, topic: &str) -> Option<SourceHandle> {
        self.sources.get(topic).map(|source| source.clone())
    }

    /// Asks every running source to rewind all its partitions (a new exactly-once sink starts).
    pub fn rewind_all(&self) {
        for source in self.sources.iter() {
            source.send(SourceInput::RewindAll);
        }
    }

    /// Acknowledges every record of `batch` (durable now) to its source, with the offsets it
    /// covers.
    pub fn ack(&self, batch: &Batch) {
        self.send_ack(batch, || batch.ack_offsets().collect(), 1);
    }

    /// Acknowledges `offsets` of `batch`'s partition and incarnation (some of its records: the
    /// others went to the dead letters, acknowledged on delivery), with the offsets the batch
    /// covers (the sources of its aggregates: settled with the batch).
    /// Each ack stands for `paths` paths to a sink (1 from a sink).
    pub fn ack_some(&self, batch: &Batch, offsets: impl Iterator<Item = i64>, paths: u32) {
        let offsets = offsets
            .filter(|offset| *offset != crate::record::NO_OFFSET)
            .chain(batch.covered().iter().copied())
            .collect();
        self.ack_paths(batch, offsets, paths);
    }

    /// Acknowledges exactly `offsets` of `batch`'s partition and incarnation (one path each).
    pub fn ack_offsets(&self, batch: &Batch, offsets: Vec<i64>) {
        self.ack_paths(batch, offsets, 1);
    }

    /// Tells the source that records of `batch`'s partition and incarnation need more acks:
    /// (offset, acks more) each. Sent before the records that need them go on, it reaches the
    /// source before any of their acks.
    pub fn expect_more(&self, batch: &Batch, mut offsets: Vec<(i64, u32)>) {
        // Aggregates have no offset of their own to count acks for.
        offsets.retain(|(offset, _)| *offset != crate::record::NO_OFFSET);
        if offsets.is_empty() {
            return;
        }
        if let Some(source) = self.sources.get(batch.topic()) {
            source.send(SourceInput::ExpectMore {
                partition: batch.partition(),
                incarnation: batch.incarnation(),
                offsets,
            });
        }
    }

    /// Acknowledges `offsets` of `batch`'s partition and incarnation for `paths` paths to a sink
    /// each (records an operator dropped: every path after it).
    pub fn ack_paths(&self, batch: &Batch, offsets: Vec<i64>, paths: u32) {
        self.send_ack(batch, || offsets, paths);
    }

    /// Sends the ack to `batch`'s source; `offsets` are listed only when it runs (acks for a
    /// stopped source are dropped: its partitions replay from their commits).
    fn send_ack(&self, batch: &Batch, offsets: impl FnOnce() -> Vec<i64>, paths: u32) {
        match self.sources.get(batch.topic()) {
            Some(source) => {
                source.send(SourceInput::Ack {
                    partition: batch.partition(),
                    incarnation: batch.incarnation(),
                    offsets: offsets(),
                    paths,
                });
            }
            None => {
                tracing::debug!(topic = %batch.topic(), "no source to acknowledge to (it stopped)")
            }
        }
    }
}
