//! A grouped_within stage (Akka's groupedWithin): [`Grouping`] regroups records into batches of
//! `max_records`, or what came within `within` of a group's first record. It holds records
//! under the stage's input credit: a held record's credit comes back when it leaves, so
//! upstream slows down with it. Offsets a batch covers leave with its last record.

use std::time::{Duration, Instant};

use streamvisor_supervision::{Failure, WorkerContext};

use super::core::{set_timer, StageCore};
use super::throttle::Release;
use super::{StageLogic, StageWorker};
use crate::operators::error::OperatorError;
use crate::record::{Batch, MAX_BATCH_BYTES};

/// Records gathered into groups.
#[derive(Debug)]
pub(crate) struct Grouping {
    max_records: usize,
    within: Duration,
    /// The group being filled, its credit, and when its first record came.
    pending: Option<(Batch, u64, Instant)>,
}

impl Grouping {
    /// Groups of at most `max_records`, or what came within `within`.
    pub(crate) fn new(max_records: usize, within: Duration) -> Result<Self, OperatorError> {
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
    pub(crate) fn push(&mut self, batch: &Batch, credit: u64, now: Instant) -> (Vec<Release>, u64) {
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
            // A group closes before a record would take it past a batch's byte cap.
            let bytes = record.key.map_or(0, <[u8]>::len) + record.value.len();
            if self.pending.as_ref().is_some_and(|(group, _, _)| {
                !group.is_empty() && group.data_len() + bytes > MAX_BATCH_BYTES
            }) {
                full.extend(
                    self.pending
                        .take()
                        .map(|(group, credit, _)| (group, credit)),
                );
            }
            let (group, group_credit, _) = self.pending.get_or_insert_with(|| {
                (
                    batch.successor(self.max_records.min(batch.len().max(1024))),
                    0,
                    now,
                )
            });
            if index == 0 {
                // A group begun by earlier batches keeps this one's bytes counted too.
                group.keep_counted(batch);
            }
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
    pub(crate) fn due(&self) -> Option<Instant> {
        self.pending
            .as_ref()
            .map(|(_, _, first)| *first + self.within)
    }

    /// The group being filled, if it is due at `now`.
    pub(crate) fn flush_due(&mut self, now: Instant) -> Option<Release> {
        if self.due().is_some_and(|due| due <= now) {
            return self
                .pending
                .take()
                .map(|(group, credit, _)| (group, credit));
        }
        None
    }
}

/// The grouped_within stage's logic.
pub(super) struct GroupLogic {
    grouping: Grouping,
    /// When the timer fires, if it is set.
    timer: Option<Instant>,
}

impl GroupLogic {
    pub(super) fn new(max_records: usize, within: Duration) -> Result<Self, OperatorError> {
        Ok(GroupLogic {
            grouping: Grouping::new(max_records, within)?,
            timer: None,
        })
    }

    /// Sends on `released` and the group that is due; sets the timer for the next.
    fn release(
        &mut self,
        mut released: Vec<Release>,
        stage: &mut StageCore,
        ctx: &mut WorkerContext<'_, StageWorker>,
    ) {
        let now = Instant::now();
        released.extend(self.grouping.flush_due(now));
        for (batch, credit) in released {
            stage.push(batch, credit);
        }
        if let Some(at) = self.grouping.due() {
            set_timer(&mut self.timer, at, now, ctx);
        }
    }
}

impl StageLogic for GroupLogic {
    fn take(
        &mut self,
        batch: Batch,
        stage: &mut StageCore,
        ctx: &mut WorkerContext<'_, StageWorker>,
    ) -> Result<(), Failure> {
        let (full, dropped) = self
            .grouping
            .push(&batch, batch.len() as u64, Instant::now());
        stage.grant(dropped); // an older incarnation's group: replayed
        self.release(full, stage, ctx);
        Ok(())
    }

    fn tick(
        &mut self,
        stage: &mut StageCore,
        ctx: &mut WorkerContext<'_, StageWorker>,
    ) -> Result<(), Failure> {
        self.timer = None;
        self.release(Vec::new(), stage, ctx);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
