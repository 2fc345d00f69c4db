//! A throttle stage: [`Throttled`] lets batches go at a rate (a token bucket: `rate` records per
//! `per`, bursts up to `burst`). It holds records under the stage's input credit: a held
//! record's credit comes back when it leaves, so upstream slows down with it. Offsets a batch
//! covers leave with it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use streamvisor_supervision::{Failure, WorkerContext};

use super::core::{set_timer, StageCore};
use super::{StageLogic, StageWorker};
use crate::operators::error::OperatorError;
use crate::operators::throttle::Throttle;
use crate::record::Batch;

/// A batch ready to go, with the input credit it gives back when it leaves.
pub(crate) type Release = (Batch, u64);

/// A throttle's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// Records let through per `per`.
    pub rate: u32,
    /// The period of `rate`.
    pub per: Duration,
    /// The most records let through at once after a quiet spell.
    pub burst: u32,
}

/// Batches waiting for the throttle's tokens.
#[derive(Debug)]
pub(crate) struct Throttled {
    throttle: Throttle,
    waiting: VecDeque<Release>,
}

impl Throttled {
    /// A throttle with a full bucket.
    pub(crate) fn new(settings: ThrottleSettings) -> Result<Self, OperatorError> {
        Ok(Throttled {
            throttle: Throttle::new(settings.rate, settings.per, settings.burst)?,
            waiting: VecDeque::new(),
        })
    }

    /// Queues `batch` (giving back `credit` when it leaves).
    pub(crate) fn push(&mut self, batch: Batch, credit: u64) {
        self.waiting.push_back((batch, credit));
    }

    /// Drops batches of incarnations before `incarnation` (a rewind: replayed anyway); returns
    /// their credit (give it back).
    pub(crate) fn drop_older_than(&mut self, incarnation: u64) -> u64 {
        let mut credit = 0;
        self.waiting.retain(|(batch, held)| {
            let keep = batch.incarnation() >= incarnation;
            if !keep {
                credit += held;
            }
            keep
        });
        credit
    }

    /// The batches the bucket lets go at `now`, in order, and how long until the next may go
    /// (none when nothing waits).
    pub(crate) fn release(&mut self, now: Instant) -> (Vec<Release>, Option<Duration>) {
        let mut out = Vec::new();
        while let Some((batch, _)) = self.waiting.front() {
            let records = u32::try_from(batch.len()).unwrap_or(u32::MAX);
            match self.throttle.try_take(records, now) {
                Ok(()) => out.extend(self.waiting.pop_front()),
                Err(wait) => return (out, Some(wait)),
            }
        }
        (out, None)
    }
}

/// The throttle stage's logic.
pub(super) struct ThrottleLogic {
    throttled: Throttled,
    /// When the timer fires, if it is set.
    timer: Option<Instant>,
}

impl ThrottleLogic {
    pub(super) fn new(settings: ThrottleSettings) -> Result<Self, OperatorError> {
        Ok(ThrottleLogic {
            throttled: Throttled::new(settings)?,
            timer: None,
        })
    }

    /// Sends on what the bucket lets go now; sets the timer for what waits.
    fn release(&mut self, stage: &mut StageCore, ctx: &mut WorkerContext<'_, StageWorker>) {
        let now = Instant::now();
        let (released, wait) = self.throttled.release(now);
        for (batch, credit) in released {
            stage.push(batch, credit);
        }
        if let Some(wait) = wait {
            set_timer(&mut self.timer, now + wait, now, ctx);
        }
    }
}

impl StageLogic for ThrottleLogic {
    fn take(
        &mut self,
        batch: Batch,
        stage: &mut StageCore,
        ctx: &mut WorkerContext<'_, StageWorker>,
    ) -> Result<(), Failure> {
        let stale = self.throttled.drop_older_than(batch.incarnation());
        stage.grant(stale);
        let credit = batch.len() as u64;
        self.throttled.push(batch, credit);
        self.release(stage, ctx);
        Ok(())
    }

    fn tick(
        &mut self,
        stage: &mut StageCore,
        ctx: &mut WorkerContext<'_, StageWorker>,
    ) -> Result<(), Failure> {
        self.timer = None;
        self.release(stage, ctx);
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests;
