//! [`Outputs`]: where an actor's output goes when the graph fans out: one [`Forwarder`] per
//! consumer, and the rule that spreads batches over them ([`FanOut`]). The actor's input credit
//! for a batch comes back once every copy or part of it has left, so under
//! [`FanOut::Broadcast`] demand is the slowest consumer's (Akka's broadcast).
//!
//! Acknowledgements follow the paths: a record broadcast to two sinks needs an ack from each
//! (the source counts the paths from it to a sink); under [`FanOut::Balance`] and
//! [`FanOut::PartitionByKey`] a record takes one branch, so the branches must count the same
//! paths (checked when the pipeline is built).

use std::collections::VecDeque;

pub use key_route::key_route;

use crate::flow::forwarder::{Forwarder, Waiting};
use crate::pipeline::acks::AckRouter;
use crate::record::Batch;

/// How a node with two or more consumers hands them its records (the one definition: the
/// graph (`streamvisor::graph::FanOut`), the TOML `fan_out` and the actors all use it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FanOut {
    /// Every consumer gets every record; demand upstream is the smallest demand among the
    /// consumers (the slowest sets the pace). A record is acknowledged when every consumer's
    /// copy is.
    #[default]
    Broadcast,
    /// Each batch goes to one consumer, the one with the fewest batches waiting: load spreads
    /// over interchangeable consumers.
    Balance,
    /// Each record goes to the consumer its Kafka key hashes to ([`key_route`]), so that one key
    /// always lands on the same consumer, in the order the graph lists its consumers; records
    /// without a key go to the first.
    PartitionByKey,
}

/// The outgoing side of an actor: one forwarder per consumer.
pub(crate) struct Outputs {
    forwarders: Vec<Forwarder>,
    fan_out: FanOut,
    /// Per batch pushed, from `first_id` on: the credit it gives back, and the copies or parts
    /// still queued.
    pending: VecDeque<(u64, usize)>,
    first_id: u64,
    /// A retry timer is pending.
    pub retry_scheduled: bool,
    /// Counts the records pushed, when set.
    records_out: Option<metrics::Counter>,
    /// Where the offsets a batch covers are counted when a split sends them with several parts,
    /// and the paths to a sink each part stands for (see [`Outputs::settle_covered_with`]).
    covered_acks: Option<(AckRouter, u32)>,
}

impl std::fmt::Debug for Outputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outputs")
            .field("forwarders", &self.forwarders)
            .field("fan_out", &self.fan_out)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Outputs {
    /// Outputs to `forwarders` (at least one), spread by `fan_out`.
    pub(crate) fn new(forwarders: Vec<Forwarder>, fan_out: FanOut) -> Self {
        Outputs {
            forwarders,
            fan_out,
            pending: VecDeque::new(),
            first_id: 0,
            retry_scheduled: false,
            records_out: None,
            covered_acks: None,
        }
    }

    /// A batch split by key sends the offsets it covers (the sources of a window's aggregates)
    /// with every part, and tells `acks`' source, before any part leaves, that each needs an ack
    /// from every part (`paths` paths each): so they are settled only once every part is
    /// durable. Without it (a partition actor's outputs: source batches cover nothing) they go
    /// with the first part.
    pub(crate) fn settle_covered_with(&mut self, acks: AckRouter, paths: u32) {
        self.covered_acks = Some((acks, paths));
    }

    /// Counts every record pushed from now on with `counter`.
    pub(crate) fn count_records(&mut self, counter: metrics::Counter) {
        self.records_out = Some(counter);
    }

    /// True when nothing waits to be sent.
    pub(crate) fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// Queues a batch; once sent it gives back credit for its records.
    pub(crate) fn push(&mut self, batch: Batch) {
        let credit = batch.len() as u64;
        self.push_with_credit(batch, credit);
    }

    /// Queues a batch that gives back `credit` once every copy or part of it has left.
    pub(crate) fn push_with_credit(&mut self, mut batch: Batch, credit: u64) {
        if let Some(records_out) = &self.records_out {
            records_out.increment(batch.len() as u64);
        }
        let id = self.first_id + self.pending.len() as u64;
        let parts = match (self.forwarders.len(), self.fan_out) {
            (0, _) => 0,
            (1, _) => {
                self.forwarders[0].push_with_credit(batch, id);
                1
            }
            (_, FanOut::Broadcast) => {
                // The copies share its bytes.
                batch.share();
                let last = self.forwarders.len() - 1;
                for forwarder in &mut self.forwarders[..last] {
                    forwarder.push_with_credit(batch.clone(), id);
                }
                self.forwarders[last].push_with_credit(batch, id);
                self.forwarders.len()
            }
            (_, FanOut::Balance) => {
                let target = (0..self.forwarders.len())
                    .min_by_key(|index| self.forwarders[*index].queued())
                    .unwrap_or(0);
                self.forwarders[target].push_with_credit(batch, id);
                1
            }
            (count, FanOut::PartitionByKey) => {
                let mut parts = split_by_key(&mut batch, count, self.covered_acks.is_some());
                let with_records = parts.iter().flatten().count();
                if let (Some((acks, paths)), true) = (&self.covered_acks, with_records > 1) {
                    let more = u32::try_from(with_records - 1)
                        .unwrap_or(u32::MAX)
                        .saturating_mul(*paths);
                    let covered = batch.covered().iter().map(|offset| (*offset, more));
                    acks.expect_more(&batch, covered.collect());
                }
                let mut sent = 0;
                for (index, part) in parts.drain(..).enumerate() {
                    if let Some(part) = part {
                        self.forwarders[index].push_with_credit(part, id);
                        sent += 1;
                    }
                }
                sent
            }
        };
        self.pending.push_back((credit, parts));
    }

    /// Sends what credit allows on every output; returns the credit of the batches that have
    /// left whole (in order) and what the rest waits for (a gone actor before missing credit).
    pub(crate) fn pump(&mut self) -> (Vec<usize>, Waiting) {
        let mut waiting = Waiting::No;
        for index in 0..self.forwarders.len() {
            let (sent, waits) = self.forwarders[index].pump();
            for id in sent {
                self.part_left(id as u64);
            }
            waiting = match (waiting, waits) {
                (Waiting::ForActor, _) | (_, Waiting::ForActor) => Waiting::ForActor,
                (Waiting::ForCredit, _) | (_, Waiting::ForCredit) => Waiting::ForCredit,
                _ => Waiting::No,
            };
        }
        (self.released(), waiting)
    }

    /// Drops queued batches of incarnations before `incarnation` (they will be replayed).
    pub(crate) fn drop_older_than(&mut self, incarnation: u64) {
        for index in 0..self.forwarders.len() {
            for id in self.forwarders[index].drop_older_than(incarnation) {
                self.part_left(id);
            }
        }
        let _ = self.released();
    }

    fn part_left(&mut self, id: u64) {
        if let Some(entry) = id
            .checked_sub(self.first_id)
            .and_then(|at| self.pending.get_mut(at as usize))
        {
            entry.1 = entry.1.saturating_sub(1);
        }
    }

    /// The credit of the batches at the front that have left whole.
    fn released(&mut self) -> Vec<usize> {
        let mut credits = Vec::new();
        while let Some((credit, 0)) = self.pending.front().copied() {
            self.pending.pop_front();
            self.first_id += 1;
            credits.push(credit as usize);
        }
        credits
    }
}

/// Splits `batch` into `count` parts by the hash of each record's key; the offsets it covers
/// go with every part that has records (`cover_all`), or with the first. (No batch without
/// records is ever sent between actors: operators settle what such a batch would cover
/// themselves.)
fn split_by_key(batch: &mut Batch, count: usize, cover_all: bool) -> Vec<Option<Batch>> {
    let mut parts = batch.split_by(count, |record| {
        record.key.map_or(0, |key| key_route(key, count))
    });
    let with_records = parts.iter().any(Option::is_some);
    if !batch.covered().is_empty() && cover_all && with_records {
        for part in parts.iter_mut().flatten() {
            part.cover(batch.covered().iter().copied());
        }
    } else if !batch.covered().is_empty() {
        let first = parts.iter().position(Option::is_some).unwrap_or(0);
        parts[first]
            .get_or_insert_with(|| batch.successor(0))
            .cover(batch.covered().iter().copied());
    }
    parts
}

mod key_route;
#[cfg(test)]
mod tests;
