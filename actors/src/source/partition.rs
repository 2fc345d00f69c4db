//! The first actor of a partition (`/pipelines/<p>/sources/<s>/p<N>`): takes batches from the
//! polling thread within the demand it grants (its bounded input buffer, re-requesting at half),
//! sends records that do not decode (per the source's format) to the dead letters, and forwards
//! the rest to the partition's first stage (or the sink). It serves one incarnation of
//! the partition at a time: after a rewind it drops what it still holds of older incarnations
//! (replayed anyway) and grants its whole buffer anew.

use std::sync::Arc;

use dashmap::DashMap;
use streamvisor_supervision::{Failure, Worker, WorkerContext};

use crate::flow::forwarder::{Waiting, RETRY_AFTER};
use crate::flow::inlet::{Inlets, Waker};
use crate::flow::outputs::{FanOut, Outputs};
use crate::flow::InputBuffer;
use crate::metrics::SourceMetrics;
use crate::pipeline::dead_letters::DeadLetterReason;
use crate::pipeline::dead_letters::{DeadLetterOrigin, DeadLetters};
use crate::record::Batch;
use crate::source::decode::Format;
use crate::source::kafka::{SourceHandle, SourceInput};
use crate::stage::outputs_to;

/// What a partition actor gets.
#[derive(Debug)]
pub(crate) enum PartitionMessage {
    /// Records from the polling thread (within the demand granted).
    Batch(Batch),
    /// The partition rewound to this incarnation.
    Incarnation(u64),
    /// A timer: try forwarding again.
    Retry,
    /// Credit came back downstream: try forwarding now.
    Wake,
    /// A timer: try the dead letters that waited for the producer again.
    RetryDeadLetters,
}

/// The current incarnation of each partition, written by the polling thread.
pub(crate) type Incarnations = Arc<DashMap<i32, u64>>;

/// The recipe of a partition actor.
#[derive(Clone, Debug)]
pub(crate) struct PartitionRecipe {
    /// The polling thread.
    pub source: SourceHandle,
    /// The partitions' incarnations.
    pub incarnations: Incarnations,
    /// The paths of the source's consumers' actors; `{p}` is replaced by this actor's name
    /// (`p3`).
    pub next: Vec<String>,
    /// How the consumers share the records.
    pub fan_out: FanOut,
    /// Records it can hold.
    pub capacity: u64,
    /// The pipeline's inlets.
    pub inlets: Inlets,
    /// The source's record format.
    pub format: Format,
    /// Where undecodable records go.
    pub dead_letters: DeadLetters,
    /// The source's metrics.
    pub metrics: SourceMetrics,
    /// The paths from the source to a sink (what a dead letter sent here acknowledges).
    pub paths_to_sinks: u32,
}

/// A partition actor.
pub(crate) struct PartitionWorker {
    recipe: PartitionRecipe,
    partition: i32,
    incarnation: u64,
    buffer: InputBuffer,
    out: Option<Outputs>,
    /// Dead letters the producer could not take yet, with their errors.
    dead_waiting: Option<(Batch, Vec<String>)>,
    /// A dead-letter retry timer is pending.
    dead_retry_scheduled: bool,
}

impl PartitionWorker {
    /// A fresh partition actor from its recipe.
    pub(crate) fn new(recipe: PartitionRecipe) -> Self {
        let (buffer, _) = InputBuffer::new(recipe.capacity);
        PartitionWorker {
            recipe,
            partition: -1,
            incarnation: 0,
            buffer,
            out: None,
            dead_waiting: None,
            dead_retry_scheduled: false,
        }
    }

    /// Serves `incarnation` from now on: a fresh buffer, all of it granted.
    fn serve(&mut self, incarnation: u64) {
        self.incarnation = incarnation;
        let (buffer, initial) = InputBuffer::new(self.recipe.capacity);
        self.buffer = buffer;
        if let Some(out) = self.out.as_mut() {
            out.drop_older_than(incarnation);
        }
        if self
            .dead_waiting
            .as_ref()
            .is_some_and(|(waiting, _)| waiting.incarnation() < incarnation)
        {
            self.dead_waiting = None; // replayed anyway
        }
        self.grant(initial);
    }

    fn grant(&self, records: u64) {
        self.recipe.source.send(SourceInput::Grant {
            partition: self.partition,
            incarnation: self.incarnation,
            records,
        });
    }

    /// Sends the records of `batch` that do not decode to the dead letters; returns the rest
    /// (the same batch when all decode: no copy on the common path) and how many went. Those the
    /// producer cannot take now (its queue is full) wait in `dead_waiting`, retried in place.
    fn sift(&mut self, batch: Batch, actor: &str) -> Result<(Batch, u64), Failure> {
        let format = self.recipe.format;
        if batch
            .iter()
            .all(|record| format.check(record.value).is_ok())
        {
            return Ok((batch, 0));
        }
        let mut good = batch.successor(batch.len());
        let mut dead = 0;
        for record in batch.iter() {
            match format.check(record.value) {
                Ok(()) => good.push(record.offset, record.timestamp_ms, record.key, record.value),
                Err(error) => {
                    if self.send_dead(&batch, &record, &error, actor)? {
                        dead += 1;
                    } else {
                        let (waiting, errors) = self
                            .dead_waiting
                            .get_or_insert_with(|| (batch.successor(1), Vec::new()));
                        waiting.push(record.offset, record.timestamp_ms, record.key, record.value);
                        errors.push(error);
                    }
                }
            }
        }
        Ok((good, dead))
    }

    /// Queues one dead letter; false when the producer's queue is full.
    fn send_dead(
        &self,
        batch: &Batch,
        record: &crate::record::RecordRef<'_>,
        error: &str,
        actor: &str,
    ) -> Result<bool, Failure> {
        let origin = DeadLetterOrigin::of(
            &self.recipe.source,
            batch,
            record.offset,
            self.recipe.paths_to_sinks,
        );
        match self.recipe.dead_letters.send(
            batch.topic(),
            record,
            origin,
            DeadLetterReason::Undecodable,
            error,
            actor,
        ) {
            Ok(()) => {
                self.recipe
                    .metrics
                    .dead_letters
                    .sent(DeadLetterReason::Undecodable);
                Ok(true)
            }
            Err(None) => {
                tracing::warn!(
                    partition = batch.partition(),
                    offset = record.offset,
                    "dead letter waits for the producer's queue"
                );
                Ok(false)
            }
            // Refused for good: fail (a fresh start, then escalation if it keeps failing).
            Err(Some(why)) => Err(Failure::new(why)),
        }
    }

    /// Tries the dead letters that waited again; returns how many went.
    fn retry_dead(&mut self, actor: &str) -> Result<u64, Failure> {
        let Some((waiting, errors)) = self.dead_waiting.take() else {
            return Ok(0);
        };
        if waiting.incarnation() < self.incarnation {
            return Ok(0); // read before a rewind: replayed anyway
        }
        let mut still = waiting.successor(1);
        let mut still_errors = Vec::new();
        let mut sent = 0;
        for (record, error) in waiting.iter().zip(errors) {
            if self.send_dead(&waiting, &record, &error, actor)? {
                sent += 1;
            } else {
                still.push(record.offset, record.timestamp_ms, record.key, record.value);
                still_errors.push(error);
            }
        }
        if !still.is_empty() {
            self.dead_waiting = Some((still, still_errors));
        }
        Ok(sent)
    }

    /// `sent` dead letters left the buffer (acknowledged on delivery): grant for them; retry
    /// those still waiting on a timer.
    fn dead_letters_left(&mut self, sent: u64, ctx: &mut WorkerContext<'_, Self>) {
        if sent > 0 {
            if let Some(grant) = self.buffer.drained(sent) {
                self.grant(grant);
            }
        }
        if self.dead_waiting.is_some() && !self.dead_retry_scheduled {
            self.dead_retry_scheduled = true;
            ctx.send_later(PartitionMessage::RetryDeadLetters, RETRY_AFTER);
        }
    }

    fn pump(&mut self, ctx: &mut WorkerContext<'_, Self>) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let (sent, waiting) = out.pump();
        let mut grant = 0;
        for records in sent {
            grant += self.buffer.drained(records as u64).unwrap_or(0);
        }
        if waiting == Waiting::ForActor && !out.retry_scheduled {
            out.retry_scheduled = true;
            ctx.send_later(PartitionMessage::Retry, RETRY_AFTER);
        }
        if grant > 0 {
            self.grant(grant);
        }
    }
}

impl Worker for PartitionWorker {
    type Message = PartitionMessage;

    fn started(&mut self, ctx: &mut WorkerContext<'_, Self>) -> Result<(), Failure> {
        let name = ctx.path().name();
        self.partition = name
            .strip_prefix('p')
            .and_then(|number| number.parse().ok())
            .ok_or_else(|| Failure::new(format!("partition actor named {name:?}, not p<N>")))?;
        let me = ctx.myself();
        let waker: Waker = Arc::new(move || {
            let _ = me.try_send(PartitionMessage::Wake);
        });
        self.out = Some(outputs_to(
            &self.recipe.next,
            name,
            self.recipe.fan_out,
            &self.recipe.inlets,
            &waker,
        )?);
        let incarnation = self
            .recipe
            .incarnations
            .get(&self.partition)
            .map(|incarnation| *incarnation)
            .unwrap_or(1);
        self.serve(incarnation);
        Ok(())
    }

    fn handle(
        &mut self,
        message: PartitionMessage,
        ctx: &mut WorkerContext<'_, Self>,
    ) -> Result<(), Failure> {
        match message {
            PartitionMessage::Batch(batch) => {
                if batch.incarnation() < self.incarnation {
                    return Ok(()); // read before a rewind: replayed anyway
                }
                if batch.incarnation() > self.incarnation {
                    // Only this actor grants for an incarnation, so it granted this one already
                    // (its Incarnation message came late): adopt it without granting twice.
                    self.incarnation = batch.incarnation();
                    self.buffer = InputBuffer::new(self.recipe.capacity).0;
                    if self
                        .dead_waiting
                        .as_ref()
                        .is_some_and(|(waiting, _)| waiting.incarnation() < self.incarnation)
                    {
                        self.dead_waiting = None; // replayed anyway
                    }
                }
                self.buffer
                    .arrived(batch.len() as u64)
                    .map_err(|violation| {
                        Failure::new(format!("partition {}: {violation}", self.partition))
                    })?;
                let actor = ctx.path().to_string();
                let (good, dead) = self.sift(batch, &actor)?;
                self.dead_letters_left(dead, ctx);
                if !good.is_empty() {
                    if let Some(out) = self.out.as_mut() {
                        out.push(good);
                    }
                }
            }
            PartitionMessage::Incarnation(incarnation) => {
                if incarnation > self.incarnation {
                    self.serve(incarnation);
                }
            }
            PartitionMessage::Retry => {
                if let Some(out) = self.out.as_mut() {
                    out.retry_scheduled = false;
                }
            }
            PartitionMessage::Wake => {}
            PartitionMessage::RetryDeadLetters => {
                self.dead_retry_scheduled = false;
                let actor = ctx.path().to_string();
                let sent = self.retry_dead(&actor)?;
                self.dead_letters_left(sent, ctx);
            }
        }
        self.pump(ctx);
        Ok(())
    }
}
