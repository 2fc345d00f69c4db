//! Stages that change when records leave rather than what they are: [`Throttled`] lets batches
//! go at a rate (a token bucket: `rate` records per `per`, bursts up to `burst`), and
//! [`Grouping`] regroups records into batches of `max_records`, or what came within `within` of
//! a group's first record (Akka's groupedWithin). Both hold records under the stage's input
//! credit: a held record's credit comes back when it leaves, so upstream slows down with them.
//! Offsets a batch covers leave with its last record.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use streamvisor_supervision::{Failure, WorkerContext};

use super::{Paced, StageWorker};
use crate::operators::error::OperatorError;
use crate::operators::throttle::Throttle;
use crate::record::Batch;
use crate::stage::StageMessage;

/// A batch ready to go, with the input credit it gives back when it leaves.
pub type Release = (Batch, u64);

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
pub struct Throttled {
    throttle: Throttle,
    waiting: VecDeque<Release>,
}

impl Throttled {
    /// A throttle with a full bucket.
    pub fn new(settings: ThrottleSettings) -> Result<Self, OperatorError> {
        Ok(Throttled {
            throttle: Throttle::new(settings.rate, settings.per, settings.burst)?,
            waiting: VecDeque::new(),
        })
    }

    /// Queues `batch` (giving back `credit` when it leaves).
    pub fn push(&mut self, batch: Batch, credit: u64) {
        self.waiting.push_back((batch, credit));
    }

    /// Drops batches of incarnations before `incarnation` (a rewind: replayed anyway); returns
    /// their credit (give it back).
    pub fn drop_older_than(&mut self, incarnation: u64) -> u64 {
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
    pub fn release(&mut self, now: Instant) -> (Vec<Release>, Option<Duration>) {
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

/// Records gathered into groups.
#[derive(Debug)]
pub struct Grouping {
    max_records: usize,
    within: Duration,
    /// The group being filled, its credit, and when its first record came.
    pending: Option<(Batch, u64, Instant)>,
}

impl Grouping {
    /// Groups of at most `max_records`, or what came within `within`.
    pub fn new(max_records: usize, within: Duration) -> Result<Self, OperatorError> {
        let zero = |setting| OperatorError::Zero {
            operator: "grouped_within",
            setting,
        };
        if max_records == 0 {
            return Err(zero("max_records"));
        }
        if within.is_zero() {
            return Err(zero("within"));
        }
        Ok(Grouping {
            max_records,
            within,
            pending: None,
        })
    }

    /// Adds the records of `batch` (giving back `credit` once the group holding its last record
    /// leaves); returns the groups that filled up, and the credit of a group dropped because
    /// `batch` is of a newer incarnation (its records will be replayed).
    pub fn push(&mut self, batch: &Batch, credit: u64, now: Instant) -> (Vec<Release>, u64) {
        let mut dropped = 0;
        if self
            .pending
            .as_ref()
            .is_some_and(|(group, _, _)| group.incarnation() < batch.incarnation())
        {
            dropped = self.pending.take().map_or(0, |(_, credit, _)| credit);
        }
        let mut full = Vec::new();
        let last = batch.len().saturating_sub(1);
        for (index, record) in batch.iter().enumerate() {
            let (group, group_credit, _) = self.pending.get_or_insert_with(|| {
                (
                    Batch::new(
                        Arc::clone(batch.topic()),
                        batch.partition(),
                        batch.incarnation(),
                        self.max_records.min(batch.len().max(1024)),
                    ),
                    0,
                    now,
                )
            });
            group.push_copy(&record);
            if index == last {
                *group_credit += credit;
                group.cover(batch.covered().iter().copied());
            }
            if group.len() >= self.max_records {
                full.extend(
                    self.pending
                        .take()
                        .map(|(group, credit, _)| (group, credit)),
                );
            }
        }
        (full, dropped)
    }

    /// When the group being filled is due (its first record's arrival plus `within`).
    pub fn due(&self) -> Option<Instant> {
        self.pending
            .as_ref()
            .map(|(_, _, first)| *first + self.within)
    }

    /// The group being filled, if it is due at `now`.
    pub fn flush_due(&mut self, now: Instant) -> Option<Release> {
        if self.due().is_some_and(|due| due <= now) {
            return self
                .pending
                .take()
                .map(|(group, credit, _)| (group, credit));
        }
        None
    }
}

/// The stage actor's side of throttles, groupings and buffers.
impl StageWorker {
    /// Takes `batch` into the throttle or grouping, sends on what may leave now (each with the
    /// input credit it gives back), and sets the timer for what waits.
    pub(super) fn pace(
        &mut self,
        batch: Option<Batch>,
        ctx: &mut WorkerContext<'_, Self>,
    ) -> Result<(), Failure> {
        let now = Instant::now();
        let (released, next) = match self.paced.as_mut() {
            Some(Paced::Throttle(throttled)) => {
                if let Some(batch) = batch {
                    let stale = throttled.drop_older_than(batch.incarnation());
                    if let (true, Some(inlet)) = (stale > 0, &self.inlet) {
                        inlet.grant(stale);
                    }
                    let credit = batch.len() as u64;
                    throttled.push(batch, credit);
                }
                let (released, wait) = throttled.release(now);
                (released, wait.map(|wait| now + wait))
            }
            Some(Paced::Group(grouping)) => {
                let mut released = Vec::new();
                if let Some(batch) = batch {
                    let (full, dropped) = grouping.push(&batch, batch.len() as u64, now);
                    released = full;
                    if let (true, Some(inlet)) = (dropped > 0, &self.inlet) {
                        inlet.grant(dropped); // an older incarnation's group: replayed
                    }
                }
                released.extend(grouping.flush_due(now));
                (released, grouping.due())
            }
            Some(Paced::Buffer(buffered)) => {
                if let Some(batch) = batch {
                    let stale = buffered.drop_older_than(batch.incarnation());
                    if let (true, Some(inlet)) = (stale > 0, &self.inlet) {
                        inlet.grant(stale);
                    }
                    let credit = batch.len() as u64;
                    let offer = buffered
                        .offer(batch, credit)
                        .map_err(|error| Failure::new(error.to_string()))?;
                    if let Some(dropped) = offer.dropped {
                        let paths = self.recipe.paths_to_sinks;
                        self.recipe
                            .acks
                            .ack_some(&dropped, dropped.offsets(), paths);
                    }
                    if let (true, Some(inlet)) = (offer.credit > 0, &self.inlet) {
                        inlet.grant(offer.credit);
                    }
                }
                // The outputs take one batch at a time from the buffer (in `pump`): the buffer,
                // not their queue, holds.
                (Vec::new(), None)
            }
            None => return Ok(()),
        };
        if let Some(out) = self.out.as_mut() {
            for (batch, credit) in released {
                out.push_with_credit(batch, credit);
            }
        }
        if let Some(at) = next {
            if self.pacing_timer.is_none_or(|set| set > at) {
                self.pacing_timer = Some(at);
                ctx.send_later(StageMessage::Tick, at.saturating_duration_since(now));
            }
        }
        Ok(())
    }

    /// A buffer stage whose outputs went idle hands them its next batch; false when it did
    /// not (not a buffer, outputs still busy, or nothing buffered).
    pub(super) fn feed_from_buffer(&mut self) -> bool {
        let (Some(Paced::Buffer(buffered)), Some(out)) = (self.paced.as_mut(), self.out.as_mut())
        else {
            return false;
        };
        if !out.is_idle() {
            return false;
        }
        let (next, credit) = buffered.take_next();
        if let (true, Some(inlet)) = (credit > 0, &self.inlet) {
            inlet.grant(credit);
        }
        match next {
            Some(batch) => {
                out.push_with_credit(batch, 0);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests;
