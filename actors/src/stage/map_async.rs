//! A `map_async` stage (Akka's mapAsync / mapAsyncUnordered): each record's new value comes
//! from a future, at most `parallelism` at a time, results in input order (`ordered`) or as
//! they complete. A record's input credit comes back when its result leaves, so at most the
//! stage's capacity is held. A future that fails, or panics, sends its record to the dead
//! letters with the reason. Results of an older incarnation (before a rewind) are dropped:
//! their records are replayed.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use streamvisor_supervision::{ActorRef, Failure, TrySendError, WorkerContext};

use super::core::{Rejected, StageCore};
use super::{StageLogic, StageWorker};

use crate::operators::error::OperatorError;
use crate::operators::map_async::{MapAsync, Ticket};
use crate::record::Batch;
use crate::stage::StageMessage;

/// A record handed to an async map (owned: the future outlives the batch).
#[derive(Debug, Clone)]
pub struct AsyncRecord {
    /// Its offset.
    pub offset: i64,
    /// The Kafka timestamp.
    pub timestamp_ms: Option<i64>,
    /// The Kafka key.
    pub key: Option<Vec<u8>>,
    /// The payload.
    pub value: Vec<u8>,
    /// Its piece index, when a flat_map made it.
    pub index: Option<u32>,
}

impl AsyncRecord {
    /// The record with `value` as its payload, borrowed.
    fn with_value<'a>(&'a self, value: &'a [u8]) -> crate::record::RecordRef<'a> {
        crate::record::RecordRef {
            offset: self.offset,
            timestamp_ms: self.timestamp_ms,
            key: self.key.as_deref(),
            value,
            index: self.index,
        }
    }
}

/// The future of a record's new value, or why there is none.
pub type AsyncValue = Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send>>;

/// An async map function.
pub type AsyncMapFn = dyn Fn(AsyncRecord) -> AsyncValue + Send + Sync;

/// A finished future, sent back to the stage actor.
#[derive(Debug)]
pub struct Completion {
    ticket: Ticket,
    slot: Slot,
}

/// A record in flight and what became of it.
#[derive(Debug)]
struct Slot {
    /// The empty one-record batch its result goes into: of the input's partition incarnation,
    /// keeping the input's bytes counted in flight (see [`Batch::successor`]).
    output: Batch,
    record: AsyncRecord,
    /// Offsets the input batch covers, carried by its last record.
    covered: Vec<i64>,
    result: Option<Result<Vec<u8>, String>>,
}

/// A result ready to go on: the output record (or the reason for the dead letters) and what it
/// acknowledges.
#[derive(Debug)]
pub(crate) struct Finished {
    /// A one-record batch of the result, covering what its input covered.
    pub batch: Batch,
    /// Why the record has no result (it goes to the dead letters instead of `batch`).
    pub failed: Option<String>,
}

/// A map_async stage's records.
pub(crate) struct AsyncMapping {
    function: Arc<AsyncMapFn>,
    book: MapAsync<Slot>,
    queue: VecDeque<(Batch, usize)>,
}

impl std::fmt::Debug for AsyncMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncMapping")
            .field("in_flight", &self.book.in_flight())
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl AsyncMapping {
    /// `parallelism` futures at most, results in order when `ordered`.
    pub(crate) fn new(
        function: Arc<AsyncMapFn>,
        parallelism: usize,
        ordered: bool,
    ) -> Result<Self, OperatorError> {
        Ok(AsyncMapping {
            function,
            book: MapAsync::new(parallelism, ordered)?,
            queue: VecDeque::new(),
        })
    }

    /// Queues `batch`; futures start as parallelism allows.
    pub(crate) fn push(&mut self, batch: Batch) {
        if !batch.is_empty() {
            self.queue.push_back((batch, 0));
        }
    }

    /// Starts futures for queued records while parallelism allows; each reports to `actor`.
    pub(crate) fn start(&mut self, actor: &ActorRef<StageMessage>) {
        while let Some((batch, next)) = self.queue.front_mut() {
            let Some(ticket) = self.book.try_start() else {
                return;
            };
            let Some(record) = batch.iter().nth(*next) else {
                self.queue.pop_front();
                continue;
            };
            let record = AsyncRecord {
                offset: record.offset,
                timestamp_ms: record.timestamp_ms,
                key: record.key.map(<[u8]>::to_vec),
                value: record.value.to_vec(),
                index: record.index,
            };
            *next += 1;
            let last = *next == batch.len();
            let slot = Slot {
                output: batch.successor(1),
                record: record.clone(),
                covered: if last {
                    batch.covered().to_vec()
                } else {
                    Vec::new()
                },
                result: None,
            };
            if last {
                self.queue.pop_front();
            }
            let future = (self.function)(record);
            tokio::spawn(report(future, Completion { ticket, slot }, actor.clone()));
        }
    }

    /// Takes a finished future; returns the results now ready, in order when ordered.
    pub(crate) fn complete(&mut self, completion: Completion) -> Vec<Finished> {
        self.book
            .complete(completion.ticket, completion.slot)
            .into_iter()
            .map(|slot| {
                let mut batch = slot.output;
                let record = &slot.record;
                let failed = match slot.result {
                    Some(Ok(value)) => {
                        batch.push_copy(&record.with_value(&value));
                        None
                    }
                    Some(Err(why)) => {
                        // The input, for the dead letters.
                        batch.push_copy(&record.with_value(&record.value));
                        Some(why)
                    }
                    None => Some("the future gave no result".to_owned()),
                };
                batch.cover(slot.covered);
                Finished { batch, failed }
            })
            .collect()
    }
}

/// The map_async stage's logic.
pub(super) struct MapAsyncLogic {
    mapping: AsyncMapping,
}

impl MapAsyncLogic {
    pub(super) fn new(
        function: Arc<AsyncMapFn>,
        parallelism: usize,
        ordered: bool,
    ) -> Result<Self, OperatorError> {
        Ok(MapAsyncLogic {
            mapping: AsyncMapping::new(function, parallelism, ordered)?,
        })
    }
}

impl StageLogic for MapAsyncLogic {
    fn take(
        &mut self,
        batch: Batch,
        _stage: &mut StageCore,
        ctx: &mut WorkerContext<'_, StageWorker>,
    ) -> Result<(), Failure> {
        self.mapping.push(batch);
        self.mapping.start(&ctx.myself());
        Ok(())
    }

    /// A future finished: its results go on (or to the dead letters), each giving back its
    /// record's credit, and more futures start.
    fn completed(
        &mut self,
        completion: Completion,
        stage: &mut StageCore,
        ctx: &mut WorkerContext<'_, StageWorker>,
    ) -> Result<(), Failure> {
        let finished = self.mapping.complete(completion);
        self.mapping.start(&ctx.myself());
        for done in finished {
            let credit = done.batch.len() as u64;
            if done.batch.incarnation() < stage.incarnation {
                // Read before a rewind: replayed anyway.
                stage.grant(credit);
                continue;
            }
            match done.failed {
                None => stage.push(done.batch, credit),
                Some(why) => {
                    stage.rejected.clear();
                    stage.rejected.push(Rejected::refused(0, why));
                    let sent = stage.dead_letter(&done.batch);
                    // What the record's input batch covered is settled here.
                    let paths = stage.recipe.paths_to_sinks;
                    stage
                        .recipe
                        .acks
                        .ack_some(&done.batch, std::iter::empty(), paths);
                    stage.grant(credit);
                    sent?;
                }
            }
        }
        Ok(())
    }
}

/// Awaits `future` (a panic is a failure naming it) and sends the completion to `actor`,
/// waiting while its mailbox is full; a stopped actor's completion is dropped (a restart
/// replays the partition).
async fn report(future: AsyncValue, mut completion: Completion, actor: ActorRef<StageMessage>) {
    let result = AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .unwrap_or_else(|payload| {
            let why = super::user_code::panic_message(payload.as_ref());
            Err(format!("the async function panicked: {why}"))
        });
    completion.slot.result = Some(result);
    let mut message = StageMessage::Completed(Box::new(completion));
    loop {
        match actor.try_send(message) {
            Ok(()) | Err(TrySendError::Closed(_)) => return,
            Err(TrySendError::Full(returned)) => {
                message = returned;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}
