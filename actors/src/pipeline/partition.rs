//! The first actor of a partition (`/pipelines/<p>/sources/<s>/p<N>`): takes batches from the
//! polling thread within the demand it grants (its bounded input buffer, re-requesting at half),
//! sends records that do not decode (per the source's format) to the dead letters, and forwards
//! the rest to the partition's first stage (or the sink). It serves one incarnation of
//! the partition at a time: after a rewind it drops what it still holds of older incarnations
//! (replayed anyway) and grants its whole buffer anew.

use std::sync::Arc;

use dashmap::DashMap;
use streamvisor_supervision::{ActorPath, Failure, Worker, WorkerContext};

use crate::flow::InputBuffer;
use crate::metrics::SourceMetrics;
use crate::pipeline::dead_letters::{DeadLetterOrigin, DeadLetters};
use crate::pipeline::decode::Format;
use crate::pipeline::forwarder::{Forwarder, Waiting, RETRY_AFTER};
use crate::pipeline::inlet::{Inlets, Waker};
use crate::record::Batch;
use crate::source::kafka::{SourceHandle, SourceInput};

/// What a partition actor gets.
#[derive(Debug)]
pub enum PartitionMessage {
    /// Records from the polling thread (within the demand granted).
    Batch(Batch),
    /// The partition rewound to this incarnation.
    Incarnation(u64),
    /// A timer: try forwarding again.
    Retry,
}

/// The current incarnation of each partition, written by the polling thread.
pub type Incarnations = Arc<DashMap<i32, u64>>;

/// The recipe of a partition actor.
#[derive(Clone, Debug)]
pub struct PartitionRecipe {
    /// The polling thread.
    pub source: SourceHandle,
    /// The partitions' incarnations.
    pub incarnations: Incarnations,
    /// The next actor's path; `{p}` is replaced by this actor's name (`p3`).
    pub next: String,
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
}

/// A partition actor.
pub struct PartitionWorker {
    recipe: PartitionRecipe,
    partition: i32,
    incarnation: u64,
    buffer: InputBuffer,
    out: Option<Forwarder>,
}

impl PartitionWorker {
    /// A fresh partition actor from its recipe.
    pub fn new(recipe: PartitionRecipe) -> Self {
        let (buffer, _) = InputBuffer::new(recipe.capacity);
        PartitionWorker {
            recipe,
            partition: -1,
            incarnation: 0,
            buffer,
            out: None,
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
    /// (the same batch when all decode: no copy on the common path) and how many went.
    fn sift(&self, batch: Batch, actor: &str) -> Result<(Batch, u64), Failure> {
        let format = self.recipe.format;
        if batch
            .iter()
            .all(|record| format.check(record.value).is_ok())
        {
            return Ok((batch, 0));
        }
        let mut good = Batch::new(
            Arc::clone(batch.topic()),
            batch.partition(),
            batch.incarnation(),
            batch.len(),
        );
        let mut dead = 0;
        for record in batch.iter() {
            match format.check(record.value) {
                Ok(()) => good.push(record.offset, record.timestamp_ms, record.key, record.value),
                Err(error) => {
                    let origin = DeadLetterOrigin {
                        source: self.recipe.source.clone(),
                        partition: batch.partition(),
                        incarnation: batch.incarnation(),
                        offset: record.offset,
                    };
                    self.recipe
                        .dead_letters
                        .send(batch.topic(), &record, origin, &error, actor)
                        .map_err(Failure::new)?;
                    dead += 1;
                    self.recipe.metrics.dead_letters.increment(1);
                }
            }
        }
        Ok((good, dead))
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
        let next = ActorPath::parse(&self.recipe.next.replace("{p}", name))?;
        let me = ctx.myself();
        let waker: Waker = Arc::new(move || {
            let _ = me.try_send(PartitionMessage::Retry);
        });
        self.out = Some(Forwarder::new(next, self.recipe.inlets.clone(), waker));
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
                }
                self.buffer
                    .arrived(batch.len() as u64)
                    .map_err(|violation| {
                        Failure::new(format!("partition {}: {violation}", self.partition))
                    })?;
                let (good, dead) = self.sift(batch, ctx.path().as_str())?;
                if dead > 0 {
                    // Dead letters left the buffer: they are acknowledged on delivery.
                    if let Some(grant) = self.buffer.drained(dead) {
                        self.grant(grant);
                    }
                }
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
        }
        self.pump(ctx);
        Ok(())
    }
}
