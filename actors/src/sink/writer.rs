//! The pieces sink writers share: the [`Settler`] that acknowledges durable records and gives
//! their credit back (from the actor, a producer's delivery callback, a task or a thread),
//! [`RetryInPlace`] (the failure-or-retry rule's backoff and readiness), and [`WriterFailure`]
//! (why a writer's task or thread gave up).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use streamvisor_supervision::{Backoff, Failure};

use crate::flow::inlet::Inlet;
use crate::metrics::SinkMetrics;
use crate::pipeline::acks::AckRouter;
use crate::pipeline::health::Readiness;
use crate::record::Batch;

/// Settles what a writer made durable: acknowledges it to its source, counts it, and gives the
/// credit back to the actor's inlet. Shared with the writer's callbacks, tasks and threads.
#[derive(Clone, Debug)]
pub struct Settler {
    acks: AckRouter,
    inlet: Arc<Inlet>,
    metrics: SinkMetrics,
}

impl Settler {
    /// A settler for one actor incarnation's inlet.
    pub fn new(acks: AckRouter, inlet: Arc<Inlet>, metrics: SinkMetrics) -> Self {
        Settler {
            acks,
            inlet,
            metrics,
        }
    }

    /// `batches` are durable: acknowledges each, counts their records out, and gives their
    /// credit back; returns how many records they held.
    pub fn durable<'a>(&self, batches: impl IntoIterator<Item = &'a Batch>) -> u64 {
        let records = self.durable_uncredited(batches);
        self.inlet.grant(records);
        records
    }

    /// Like [`Settler::durable`], leaving the credit to the caller (a writer that gave some of
    /// it back before: records it held long).
    pub fn durable_uncredited<'a>(&self, batches: impl IntoIterator<Item = &'a Batch>) -> u64 {
        let mut records = 0u64;
        for batch in batches {
            self.acks.ack(batch);
            self.metrics.settled.durable(batch, 0);
            records += batch.len() as u64;
        }
        self.metrics.records_out.increment(records);
        records
    }

    /// Records how long a write that began at `began` took.
    pub fn timed(&self, began: Instant) {
        self.metrics
            .write_seconds
            .record(began.elapsed().as_secs_f64());
    }

    /// Gives back the credit of `records` not written here (replayed, or settled otherwise).
    pub fn give_back(&self, records: u64) {
        if records > 0 {
            self.inlet.grant(records);
        }
    }

    /// Where acks go (for settling part of a batch, or rewinding its partition).
    pub fn acks(&self) -> &AckRouter {
        &self.acks
    }

    /// The sink's metrics.
    pub fn metrics(&self) -> &SinkMetrics {
        &self.metrics
    }
}

/// Retry in place (the failure-or-retry rule): while the target is away the sink holds its
/// records, says it is unready, counts each retry and waits its backoff; the first write that
/// succeeds makes it ready again.
#[derive(Debug)]
pub struct RetryInPlace {
    backoff: Backoff,
    retrying: &'static str,
    failures: u32,
    component: String,
    readiness: Readiness,
    metrics: SinkMetrics,
}

impl RetryInPlace {
    /// Retries of `component` (of `retrying`, as its unready reason says), waiting `backoff`.
    pub fn new(
        backoff: Backoff,
        retrying: &'static str,
        component: String,
        readiness: Readiness,
        metrics: SinkMetrics,
    ) -> Self {
        RetryInPlace {
            backoff,
            retrying,
            failures: 0,
            component,
            readiness,
            metrics,
        }
    }

    /// An attempt failed because of `why`: unready, counted; returns the wait before the next.
    pub fn failed(&mut self, why: &str) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.metrics.retries.increment(1);
        let delay = self.backoff.delay(self.failures);
        tracing::warn!(sink = %self.component, %why, attempt = self.failures, retry_in = ?delay, "sink cannot write; holding the records and retrying in place");
        self.readiness.unready(
            &self.component,
            format!("retrying {}: {why}", self.retrying),
        );
        delay
    }

    /// An attempt succeeded: ready again if it had failed, and the backoff starts over.
    pub fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(sink = %self.component, attempts = self.failures, "sink writes again");
            self.readiness.ready(&self.component);
            self.failures = 0;
        }
    }

    /// Ready again (its target answers), the backoff going on from where it is until a write
    /// succeeds.
    pub fn ready_again(&self) {
        self.readiness.ready(&self.component);
    }

    /// Retries of the same component, target and backoff, none failed yet.
    pub fn fresh(&self) -> Self {
        RetryInPlace::new(
            self.backoff.clone(),
            self.retrying,
            self.component.clone(),
            self.readiness.clone(),
            self.metrics.clone(),
        )
    }

    /// Failed attempts in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// Why a sink's writer task or thread gave up, kept for the actor, which fails with it at its
/// next message (a flag read on every message; the lock only once it is set).
#[derive(Clone, Debug, Default)]
pub struct WriterFailure {
    failed: Arc<AtomicBool>,
    why: Arc<Mutex<Option<Failure>>>,
}

impl WriterFailure {
    /// The writer gave up, because of `why` (its typed error inside, when it had one).
    pub fn set(&self, why: Failure) {
        *self.why.lock().unwrap_or_else(PoisonError::into_inner) = Some(why);
        self.failed.store(true, Ordering::Release);
    }

    /// Why the writer gave up, if it did.
    pub fn get(&self) -> Option<Failure> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        self.why
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
