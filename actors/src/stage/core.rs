//! [`StageCore`]: what every stage actor has, whatever its operator: its recipe, inlet,
//! outputs and metrics, the incarnation it serves, and the records its operator refused (sent
//! to the dead letters). Operators ([`StageLogic`](super::StageLogic)) act through it.

use std::sync::Arc;
use std::time::Instant;

use streamvisor_supervision::{ActorPath, Failure, WorkerContext};

use super::{StageMessage, StageRecipe, StageWorker};
use crate::flow::forwarder::{Waiting, RETRY_AFTER};
use crate::flow::inlet::Inlet;
use crate::flow::outputs::Outputs;
use crate::metrics::{Settled, StageMetrics};
use crate::pipeline::dead_letters::{DeadLetterOrigin, DeadLetterReason};
use crate::record::Batch;
use metrics::Counter;

/// A record an operator did not take, and why (it goes to the dead letters).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rejected {
    /// Its index in the batch.
    pub index: usize,
    /// The reason's class.
    pub reason: DeadLetterReason,
    /// Why, in words.
    pub why: String,
}

impl Rejected {
    /// A record the operator refused (a field missing, a function's error or panic).
    pub(crate) fn refused(index: usize, why: String) -> Self {
        Rejected {
            index,
            reason: DeadLetterReason::Refused,
            why,
        }
    }
}

/// The state every stage actor shares.
pub(super) struct StageCore {
    pub(super) recipe: StageRecipe,
    pub(super) path: Option<ActorPath>,
    pub(super) inlet: Option<Arc<Inlet>>,
    pub(super) out: Option<Outputs>,
    pub(super) metrics: Option<StageMetrics>,
    /// Records of the batch at hand that go to the dead letters.
    pub(super) rejected: Vec<Rejected>,
    /// The newest partition incarnation seen: batches of older ones are dropped (replayed).
    pub(super) incarnation: u64,
    /// Its path as text (dead letters name it).
    pub(super) actor: String,
}

impl StageCore {
    pub(super) fn new(recipe: StageRecipe) -> Self {
        StageCore {
            recipe,
            path: None,
            inlet: None,
            out: None,
            metrics: None,
            rejected: Vec::new(),
            incarnation: 0,
            actor: String::new(),
        }
    }

    /// Counts `records` of the input settled here as `how` picks (filtered, dropped).
    pub(super) fn settled(&self, records: usize, how: impl Fn(&Settled) -> &Counter) {
        if let (true, Some(metrics)) = (records > 0, &self.metrics) {
            how(&metrics.settled).increment(records as u64);
        }
    }

    /// Gives back the input credit of `records` (they left, or were dropped).
    pub(super) fn grant(&self, records: u64) {
        if let (true, Some(inlet)) = (records > 0, &self.inlet) {
            inlet.grant(records);
        }
    }

    /// Sends `batch` on; its leaving gives back `credit` of the input.
    pub(super) fn push(&mut self, batch: Batch, credit: u64) {
        if let Some(out) = self.out.as_mut() {
            out.push_with_credit(batch, credit);
        }
    }

    /// What an operator made of an input of `records` that came at `began`: `output` goes on
    /// (the input's credit comes back when it leaves), or the credit comes back at once.
    pub(super) fn pass_on(&mut self, output: Option<Batch>, records: u64, began: Instant) {
        if let Some(metrics) = &self.metrics {
            metrics.latency.record(began.elapsed().as_secs_f64());
        }
        match (output, self.out.as_mut()) {
            (Some(output), Some(out)) => out.push_with_credit(output, records),
            _ => self.grant(records),
        }
    }

    /// True when the outputs have nothing queued.
    pub(super) fn outputs_idle(&self) -> bool {
        self.out.as_ref().is_some_and(Outputs::is_idle)
    }

    /// Records per emitted batch: a batch's worth (a quarter of an actor's capacity, the
    /// smallest inlet downstream), so that every batch fits the next actor's credit.
    pub(super) fn emission_chunk(&self) -> usize {
        (self.recipe.capacity / 4).max(1) as usize
    }

    /// Sends the records of `batch` in [`StageCore::rejected`] to the dead letters
    /// (acknowledged on delivery). A full producer queue fails the actor: the partition
    /// rewinds and they come again.
    pub(super) fn dead_letter(&self, batch: &Batch) -> Result<(), Failure> {
        if self.rejected.is_empty() {
            return Ok(());
        }
        let Some(source) = self.recipe.acks.source(batch.topic()) else {
            return Ok(()); // the source stopped: replayed by the partition's next reader
        };
        let producer = self
            .recipe
            .dead_letters
            .producer()
            .map_err(|error| Failure::new(format!("dead-letter producer: {error}")))?;
        let mut rejected = self.rejected.iter().peekable();
        for (index, record) in batch.iter().enumerate() {
            let Some(refused) = rejected.next_if(|refused| refused.index == index) else {
                continue;
            };
            tracing::debug!(partition = batch.partition(), offset = record.offset, why = %refused.why, "record to the dead letters");
            let origin = DeadLetterOrigin {
                source: source.clone(),
                partition: batch.partition(),
                incarnation: batch.incarnation(),
                offset: record.offset,
                paths: self.recipe.paths_to_sinks,
            };
            producer
                .send(
                    batch.topic(),
                    &record,
                    origin,
                    refused.reason,
                    &refused.why,
                    &self.actor,
                )
                .map_err(|why| {
                    Failure::new(why.unwrap_or_else(|| "the dead-letter queue is full".to_owned()))
                })?;
            if let Some(metrics) = &self.metrics {
                metrics.dead_letters.sent(refused.reason);
                metrics.settled.dead_letter.increment(1);
            }
        }
        Ok(())
    }

    /// Sends on what the outputs can take, giving the input credit back as batches leave;
    /// `refill` hands the outputs more when they go idle (a buffer stage's). Sets the retry
    /// timer while a consumer is away.
    pub(super) fn pump(
        &mut self,
        ctx: &mut WorkerContext<'_, StageWorker>,
        mut refill: impl FnMut(&mut StageCore) -> bool,
    ) {
        loop {
            let Some(out) = self.out.as_mut() else {
                return;
            };
            let (sent, waiting) = out.pump();
            let retry = waiting == Waiting::ForActor && !out.retry_scheduled;
            if retry {
                out.retry_scheduled = true;
            }
            for records in sent {
                self.grant(records as u64);
            }
            if retry {
                ctx.send_later(StageMessage::Retry, RETRY_AFTER);
            }
            if !refill(self) {
                return;
            }
        }
    }
}

/// Sets a timer (`timer`) to tick at `at` unless one is set to fire sooner.
pub(super) fn set_timer(
    timer: &mut Option<Instant>,
    at: Instant,
    now: Instant,
    ctx: &mut WorkerContext<'_, StageWorker>,
) {
    if timer.is_none_or(|set| set > at) {
        *timer = Some(at);
        ctx.send_later(StageMessage::Tick, at.saturating_duration_since(now));
    }
}
