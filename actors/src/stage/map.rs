//! Map and key_by stages: a per-record user function writes each record's new value (map) or
//! Kafka key (key_by). Records it refuses, or keeps panicking on, go to the dead letters.

use std::sync::Arc;

use streamvisor_supervision::Failure;

use super::core::{Rejected, StageCore};
use super::{MapFn, StageLogic};
use crate::record::Batch;

/// What a per-record user function writes.
#[derive(Clone, Copy)]
pub(super) enum Rewrites {
    /// The record's Kafka key (key_by).
    Key,
    /// The record's value (map).
    Value,
}

/// The map or key_by stage's logic.
pub(super) struct MapLogic {
    function: Arc<MapFn>,
    rewrites: Rewrites,
    /// The value being written (kept between records: no allocation each).
    value: Vec<u8>,
}

impl MapLogic {
    pub(super) fn new(function: Arc<MapFn>, rewrites: Rewrites) -> Self {
        MapLogic {
            function,
            rewrites,
            value: Vec::new(),
        }
    }
}

impl StageLogic for MapLogic {
    fn apply(&mut self, batch: Batch, stage: &mut StageCore) -> Result<Option<Batch>, Failure> {
        let mut rewritten = batch.successor(batch.len());
        stage.rejected.clear();
        let partition = batch.partition();
        let function = &self.function;
        for (index, record) in batch.iter().enumerate() {
            self.value.clear();
            let out = &mut self.value;
            let outcome =
                stage
                    .recipe
                    .user_code
                    .call(partition, record.offset, record.index, || {
                        function(&record, out)
                    })?;
            match outcome.and_then(|written| written) {
                Ok(()) => {
                    let (key, value) = match self.rewrites {
                        Rewrites::Key => (Some(self.value.as_slice()), record.value),
                        Rewrites::Value => (record.key, self.value.as_slice()),
                    };
                    rewritten.push_rewritten(&record, key, value);
                }
                Err(why) => stage.rejected.push(Rejected::refused(index, why)),
            }
        }
        stage.dead_letter(&batch)?;
        if rewritten.is_empty() {
            // No batch without records goes on (a sink would have nothing to write): what the
            // input covers is settled here.
            let paths = stage.recipe.paths_to_sinks;
            stage
                .recipe
                .acks
                .ack_some(&batch, std::iter::empty(), paths);
            return Ok(None);
        }
        rewritten.cover(batch.covered().iter().copied());
        Ok(Some(rewritten))
    }
}
