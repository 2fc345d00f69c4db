//! [`StageCore`]: what every stage actor has, whatever its operator: its recipe, inlet,
//! outputs and metrics, the incarnation it serves, and the records its operator refused (sent
//! to the dead letters). Operators ([`StageLogic`](super::StageLogic)) act through it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use streamvisor_supervision::{ActorPath, WorkerContext};

use super::{StageMessage, StageRecipe, StageWorker};
use crate::flow::forwarder::{Waiting, RETRY_AFTER};
use crate::flow::inlet::Inlet;
use crate::flow::outputs::Outputs;
use crate::metrics::{Settled, StageMetrics};
use crate::pipeline::dead_letters::DeadLetterReason;
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
    /// Dead letters the producer's full queue did not take yet (sent again on a timer).
    pub(super) waiting_dead_letters: VecDeque<(Batch, Vec<Rejected>)>,
    /// A retry of the waiting dead letters is scheduled.
    pub(super) dead_letter_retry_scheduled: bool,
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
            waiting_dead_letters: VecDeque::new(),
            dead_letter_retry_scheduled: false,
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
