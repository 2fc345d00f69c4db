//! The flat_map stage: a user function makes zero or more records of each record
//! ([`Pieces`]). Each piece keeps its source record's offset and timestamp and gets its index
//! among the pieces, so that (topic, partition, offset, index) identifies it in every sink.
//!
//! Acknowledgement: a record that made no piece is acknowledged at once for every path after
//! the stage (as a filter does); one that made `n` pieces needs `n` times the acks, and the
//! stage tells the source so ([`AckRouter::expect_more`](crate::pipeline::acks::AckRouter))
//! before any piece goes on, so the source releases the offset only once every piece is durable
//! on every path, however the pieces are batched. A function that refuses a record (or panics
//! on it past its retry budget) sends it to the dead letters and none of its pieces goes on.
//! Pieces go on in batches of at most the emission chunk (an inlet never sees a batch larger
//! than its credit), closed between records, or cut within one record that makes more.

use std::sync::Arc;

use streamvisor_supervision::Failure;

use super::core::{Rejected, StageCore};
use super::StageLogic;
use crate::record::{Batch, RecordRef, MAX_BATCH_BYTES};

/// A flat map: emits the pieces of `record` through `pieces`, or says why it cannot (the record
/// goes to the dead letters, and none of its pieces goes on).
pub type FlatMapFn = dyn Fn(&RecordRef<'_>, &mut Pieces<'_>) -> Result<(), String> + Send + Sync;

/// Where a flat map function puts the pieces of one record.
pub struct Pieces<'a> {
    out: &'a mut Batch,
    offset: i64,
    timestamp_ms: Option<i64>,
    key: Option<&'a [u8]>,
    made: u32,
}

impl<'a> Pieces<'a> {
    /// The pieces of `record`, appended to `out` (how the stage calls a function; also how a
    /// test calls one).
    pub fn new(out: &'a mut Batch, record: &RecordRef<'a>) -> Self {
        Pieces {
            out,
            offset: record.offset,
            timestamp_ms: record.timestamp_ms,
            key: record.key,
            made: 0,
        }
    }

    /// Emits a piece with `value`, keeping the record's key.
    pub fn emit(&mut self, value: &[u8]) {
        let key = self.key;
        self.emit_keyed(key, value);
    }

    /// Emits a piece with its own key.
    pub fn emit_keyed(&mut self, key: Option<&[u8]>, value: &[u8]) {
        self.out
            .push_piece(self.offset, self.timestamp_ms, key, value, self.made);
        self.made = self.made.saturating_add(1);
    }

    /// Emits a piece (keeping the record's key) whose value `write` writes in place; on its
    /// error no piece is emitted and the error is returned.
    pub fn emit_written<E>(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.out
            .push_piece_written(self.offset, self.timestamp_ms, self.key, self.made, write)?;
        self.made = self.made.saturating_add(1);
        Ok(())
    }

    /// Pieces emitted so far.
    pub fn made(&self) -> u32 {
        self.made
    }
}

/// The flat_map stage's logic.
pub(super) struct FlatMapLogic {
    function: Arc<FlatMapFn>,
}

impl FlatMapLogic {
    pub(super) fn new(function: Arc<FlatMapFn>) -> Self {
        FlatMapLogic { function }
    }
}

impl StageLogic for FlatMapLogic {
    /// Runs the function over `batch`; returns the last batch of pieces (the input's credit
    /// comes back with it), the others already pushed.
    fn apply(&mut self, batch: Batch, stage: &mut StageCore) -> Result<Option<Batch>, Failure> {
        let function = &self.function;
        let new_batch = |records: usize| batch.successor(records);
        let chunk = stage.emission_chunk();
        let mut chunks = Vec::new();
        let mut pieces = new_batch(batch.len());
        let mut dropped = Vec::new();
        let mut more = Vec::new();
        let paths = stage.recipe.paths_to_sinks;
        let partition = batch.partition();
        stage.rejected.clear();
        for (index, record) in batch.iter().enumerate() {
            // Chunks close between records (a refused record's pieces are taken back from the
            // open one), each about the emission chunk: no inlet sees a batch over its credit;
            // and at half the byte cap, so that one more record's pieces cannot pass it.
            if pieces.len() >= chunk || pieces.data_len() >= MAX_BATCH_BYTES / 2 {
                chunks.push(std::mem::replace(&mut pieces, new_batch(chunk)));
            }
            let before = pieces.len();
            let outcome =
                stage
                    .recipe
                    .user_code
                    .call(partition, record.offset, record.index, || {
                        function(&record, &mut Pieces::new(&mut pieces, &record))
                    })?;
            match outcome.and_then(|made| made) {
                Ok(()) => match pieces.len() - before {
                    0 => dropped.push(record.offset),
                    1 => {}
                    made => {
                        let extra = u32::try_from(made - 1).unwrap_or(u32::MAX);
                        more.push((record.offset, extra.saturating_mul(paths)));
                    }
                },
                Err(why) => {
                    pieces.truncate(before);
                    stage.rejected.push(Rejected::refused(index, why));
                }
            }
            if pieces.len() > chunk {
                // One record made more pieces than a chunk: cut them (in one pass), or no
                // inlet would ever have the credit for them.
                let whole = std::mem::replace(&mut pieces, new_batch(chunk));
                for piece in whole.iter() {
                    let bytes = piece.key.map_or(0, <[u8]>::len) + piece.value.len();
                    if pieces.len() == chunk
                        || (!pieces.is_empty() && pieces.data_len() + bytes > MAX_BATCH_BYTES)
                    {
                        chunks.push(std::mem::replace(&mut pieces, new_batch(chunk)));
                    }
                    pieces.push_copy(&piece);
                }
            }
        }
        stage.dead_letter(&batch)?;
        if pieces.is_empty() {
            if let Some(last) = chunks.pop() {
                pieces = last;
            } else {
                stage.settled(dropped.len(), |s| &s.filtered);
                stage
                    .recipe
                    .acks
                    .ack_some(&batch, dropped.into_iter(), paths);
                return Ok(None);
            }
        }
        // Before any piece goes on: the source must count their acks.
        stage.recipe.acks.expect_more(&batch, more);
        stage.settled(dropped.len(), |s| &s.filtered);
        stage.recipe.acks.ack_paths(&batch, dropped, paths);
        // What the input covers is settled with its last pieces (a window never comes before
        // a flat_map, so nothing but an input's own offsets is covered here).
        pieces.cover(batch.covered().iter().copied());
        for chunk in chunks {
            stage.push(chunk, 0);
        }
        Ok(Some(pieces))
    }
}
