//! A filter stage: keeps the records its predicate accepts. Records it drops are acknowledged
//! at once (deliberately filtered); records it refuses, or keeps panicking on, go to the dead
//! letters.

use std::sync::Arc;

use streamvisor_supervision::Failure;

use super::core::{Rejected, StageCore};
use super::{FilterFn, StageLogic};
use crate::record::Batch;

/// The filter stage's logic.
pub(super) struct FilterLogic {
    keep: Arc<FilterFn>,
    /// The verdicts for the batch at hand (kept between batches: no allocation each).
    verdicts: Vec<bool>,
}

impl FilterLogic {
    pub(super) fn new(keep: Arc<FilterFn>) -> Self {
        FilterLogic {
            keep,
            verdicts: Vec::new(),
        }
    }
}

impl StageLogic for FilterLogic {
    fn apply(&mut self, batch: Batch, stage: &mut StageCore) -> Result<Option<Batch>, Failure> {
        stage.rejected.clear();
        let partition = batch.partition();
        let code = &stage.recipe.user_code;
        let keep = &self.keep;
        let mut verdicts = std::mem::take(&mut self.verdicts);
        verdicts.clear();
        for (index, record) in batch.iter().enumerate() {
            match code.call(partition, record.offset, record.index, || keep(&record))? {
                Ok(keep) => verdicts.push(keep),
                Err(why) => {
                    stage.rejected.push(Rejected::refused(index, why));
                    verdicts.push(false);
                }
            }
        }
        stage.dead_letter(&batch)?;
        if stage.rejected.is_empty() && verdicts.iter().all(|keep| *keep) {
            self.verdicts = verdicts;
            return Ok(Some(batch));
        }
        let mut kept = batch.successor(batch.len());
        let mut dropped = Vec::new();
        let mut rejected = stage.rejected.iter().map(|r| r.index).peekable();
        for ((index, record), keep) in batch.iter().enumerate().zip(verdicts.iter().copied()) {
            if rejected.next_if_eq(&index).is_some() {
                continue; // acknowledged when the dead letters have it
            }
            if keep {
                kept.push_copy(&record);
            } else {
                dropped.push(record.offset);
            }
        }
        self.verdicts = verdicts;
        let paths = stage.recipe.paths_to_sinks;
        if kept.is_empty() {
            // Nothing goes on: what the batch covers is settled with the dropped records.
            stage.settled(dropped.len() + batch.covered().len(), |s| &s.filtered);
            stage
                .recipe
                .acks
                .ack_some(&batch, dropped.into_iter(), paths);
            return Ok(None);
        }
        // What the batch covers goes on with the records kept.
        kept.cover(batch.covered().iter().copied());
        stage.settled(dropped.len(), |s| &s.filtered);
        stage.recipe.acks.ack_paths(&batch, dropped, paths);
        Ok(Some(kept))
    }
}
