//! How each record read was settled ([`Settled`], `streamvisor_records_settled_total`) and why
//! dead letters were sent ([`DeadLetterCounters`], `streamvisor_dead_letters_total{reason}`).
//! Every record a pipeline acknowledges is counted once per path to a sink under one reason, so
//! for a pipeline of one path the reasons add up to the records read.
#![allow(clippy::disallowed_macros)]

use metrics::{counter, Counter};

use super::{DEAD_LETTERS, RECORDS_SETTLED};
use crate::pipeline::dead_letters::DeadLetterReason;
use crate::record::{Batch, NO_OFFSET};

/// The reasons of `streamvisor_records_settled_total`.
pub const SETTLED_REASONS: &[&str] = &[
    "written",
    "aggregated",
    "filtered",
    "dropped",
    "dead_letter",
];

/// A pipeline's settled counters (every reason present at zero from the start).
#[derive(Clone, Debug)]
pub struct Settled {
    /// Written by a sink (a record that carries its source's offset).
    pub written: Counter,
    /// Absorbed into an aggregate a sink wrote (a window's result covers them).
    pub aggregated: Counter,
    /// Dropped by a filter, or expanded by a flat_map into no piece at all.
    pub filtered: Counter,
    /// Dropped by an explicit overflow policy (a buffer's drop strategies).
    pub dropped: Counter,
    /// Sent to the dead letters (`streamvisor_dead_letters_total` says why).
    pub dead_letter: Counter,
}

impl Settled {
    /// The counters of `pipeline`.
    pub fn new(pipeline: &str) -> Self {
        let make = |reason: &'static str| {
            let handle =
                counter!(RECORDS_SETTLED, "pipeline" => pipeline.to_owned(), "reason" => reason);
            handle.increment(0);
            handle
        };
        Settled {
            written: make("written"),
            aggregated: make("aggregated"),
            filtered: make("filtered"),
            dropped: make("dropped"),
            dead_letter: make("dead_letter"),
        }
    }

    /// A sink made `batch` durable, but for `refused` of its records (sent to the dead letters
    /// and counted there): its records that carry an offset were written, and the offsets it
    /// covers were aggregated into its records.
    pub fn durable(&self, batch: &Batch, refused: usize) {
        let written = batch
            .offsets()
            .filter(|offset| *offset != NO_OFFSET)
            .count();
        self.written
            .increment(written.saturating_sub(refused) as u64);
        self.aggregated.increment(batch.covered().len() as u64);
    }
}

/// Dead letters of one component (`source`, `stage` or `sink` label), by reason.
#[derive(Clone, Debug)]
pub struct DeadLetterCounters {
    /// By [`DeadLetterReason::index`]: the reasons the component sends for.
    by_reason: Vec<Option<Counter>>,
    labels: [(&'static str, String); 2],
    /// The pipeline's records settled as dead letters (each sent one counts there too).
    settled: Counter,
}

impl DeadLetterCounters {
    /// Handles for the component `kind` (`source`, `stage`, `sink`) named `name` of `pipeline`,
    /// each of `reasons` present at zero.
    pub fn new(
        pipeline: &str,
        kind: &'static str,
        name: &str,
        reasons: &[DeadLetterReason],
    ) -> Self {
        let labels = [("pipeline", pipeline.to_owned()), (kind, name.to_owned())];
        let by_reason = DeadLetterReason::ALL
            .iter()
            .map(|reason| {
                reasons.contains(reason).then(|| {
                    let handle = Self::handle(&labels, *reason);
                    handle.increment(0);
                    handle
                })
            })
            .collect();
        let settled =
            counter!(RECORDS_SETTLED, "pipeline" => pipeline.to_owned(), "reason" => "dead_letter");
        DeadLetterCounters {
            by_reason,
            labels,
            settled,
        }
    }

    fn handle(labels: &[(&'static str, String); 2], reason: DeadLetterReason) -> Counter {
        counter!(
            DEAD_LETTERS,
            labels[0].0 => labels[0].1.clone(),
            labels[1].0 => labels[1].1.clone(),
            "reason" => reason.as_str()
        )
    }

    /// Counts one dead letter sent for `reason` (and its record settled as a dead letter).
    pub fn sent(&self, reason: DeadLetterReason) {
        match &self.by_reason[reason.index()] {
            Some(handle) => handle.increment(1),
            None => Self::handle(&self.labels, reason).increment(1),
        }
        self.settled.increment(1);
    }
}
