//! The PostgreSQL sink's writer. Its actor takes batches within the
//! credit of its inlet and hands them to its writer, a task on the same arbiter that owns the
//! connection: it gathers records up to `max_rows` (waiting `linger` for more), writes them in
//! one transaction, and only after COMMIT acknowledges them and gives the credit back.
//!
//! The failure-or-retry rule of DESIGN.md:
//! - the database away (connection refused or lost, shutting down, starting up): the writer
//!   holds the records, reports the sink unready, and reconnects with exponential backoff
//!   (each attempt counted in `streamvisor_sink_retries_total`); no restart;
//! - a record the database refuses (a bad value, a constraint other than the dedupe key): the
//!   batch is written again row by row under savepoints, and the refused records go to the dead
//!   letters with the database's error;
//! - anything else (wrong credentials, a table gone, a panic, a kill): the actor fails, its
//!   supervisor restarts it and the partitions it held records of rewind.
//!
//! The writer's channel is unbounded in type and bounded by the inlet's credit: nothing is sent
//! to the actor beyond what it granted.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use streamvisor_supervision::{ActorRef, Backoff, Failure};
use tokio::sync::mpsc;

use crate::pipeline::dead_letters::{
    DeadLetterOrigin, DeadLetterReason, DeadLetterTarget, DeadLetters,
};
use crate::record::Batch;
use crate::sink::actor::{SinkContext, SinkMessage, SinkWriter};
use crate::sink::postgres::{
    classify, describe, Connection, ErrorClass, KeyColumn, PostgresSettings, RowBuffers,
};
use crate::sink::writer::{RetryInPlace, Settler, WriterFailure};

/// The most key and payload bytes one write gathers (besides `max_rows`): a write copies its
/// rows twice (encoded, then on the wire), so its size is memory the budget does not see.
const MAX_WRITE_BYTES: usize = 8 << 20;

/// How long the row-by-row pass over a refused write may take per row (at least the write
/// timeout in all).
const ISOLATION_PER_ROW: Duration = Duration::from_millis(50);

/// Hands batches to a task on the actor's arbiter that owns the connection and writes.
pub struct PostgresWriter {
    settings: PostgresSettings,
    dead_letters: DeadLetterTarget,
    to_task: Option<mpsc::UnboundedSender<Batch>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl PostgresWriter {
    /// A writer for `settings`, sending refused records to `dead_letters` (it connects when
    /// the actor starts).
    pub fn new(settings: PostgresSettings, dead_letters: DeadLetterTarget) -> Self {
        PostgresWriter {
            settings,
            dead_letters,
            to_task: None,
            task: None,
        }
    }
}

impl SinkWriter for PostgresWriter {
    const RETRYING: &'static str = "PostgreSQL";

    fn open(&mut self, sink: &mut SinkContext<'_, '_, Self>) -> Result<(), Failure> {
        let dead_letters = self
            .dead_letters
            .producer()
            .map_err(|error| Failure::new(format!("dead-letter producer: {error}")))?;
        let (to_task, inbox) = mpsc::unbounded_channel();
        let task = Writer {
            settings: self.settings.clone(),
            inbox,
            held: Vec::new(),
            deferred: Vec::new(),
            buffers: RowBuffers::default(),
            connection: None,
            component: sink.component().to_owned(),
            settler: sink.settler().clone(),
            retry: sink.retry_in_place(),
            dead_letters,
        };
        let failure = sink.failure();
        let actor = sink.myself();
        self.task = Some(tokio::task::spawn_local(task.run(failure, actor)));
        self.to_task = Some(to_task);
        Ok(())
    }

    fn take(&mut self, batch: Batch, sink: &mut SinkContext<'_, '_, Self>) -> Result<(), Failure> {
        match &self.to_task {
            Some(task) if task.send(batch).is_ok() => Ok(()),
            _ => Err(sink.ended("the PostgreSQL writer ended")),
        }
    }

    fn close(&mut self) {
        // A killed or panicked sink leaves nothing writing behind it: an open transaction is
        // rolled back by the server when the connection drops.
        self.to_task = None;
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    fn retry_backoff(&self) -> Backoff {
        self.settings.retry.clone()
    }
}

/// The task that owns the connection and writes.
struct Writer {
    settings: PostgresSettings,
    inbox: mpsc::UnboundedReceiver<Batch>,
    /// Records taken and not yet durable.
    held: Vec<Batch>,
    /// Records split off `held` when a write could not finish in its time: written next,
    /// before anything new.
    deferred: Vec<Batch>,
    buffers: RowBuffers,
    connection: Option<Connection>,
    component: String,
    settler: Settler,
    retry: RetryInPlace,
    dead_letters: DeadLetters,
}

impl Writer {
    async fn run(mut self, failure: WriterFailure, actor: ActorRef<SinkMessage>) {
        if let Err(why) = self.serve().await {
            tracing::error!(sink = %self.component, %why, "PostgreSQL sink fails");
            failure.set(why);
            // The actor fails at its next message; wake it in case none comes.
            let _ = actor.try_send(SinkMessage::Wake);
        }
    }

    /// Writes until the actor stops (`Ok`), or fails with why.
    async fn serve(&mut self) -> Result<(), Failure> {
        loop {
            self.connect().await?;
            let Writer {
                inbox, connection, ..
            } = self;
            let Some(connection) = connection.as_mut() else {
                continue;
            };
            let next = tokio::select! {
                batch = inbox.recv() => Some(batch),
                _ = &mut connection.closed => None,
            };
            match next {
                Some(Some(batch)) => {
                    self.held.push(batch);
                    self.gather().await;
                    self.write_held().await?;
                }
                Some(None) => return Ok(()),
                None => self.lost("the connection ended".to_owned()).await,
            }
        }
    }

    /// Takes what else is waiting, up to `max_rows` records and [`MAX_WRITE_BYTES`], waiting
    /// `linger` for more.
    async fn gather(&mut self) {
        let deadline = tokio::time::Instant::now() + self.settings.linger;
        let mut records: usize = self.held.iter().map(Batch::len).sum();
        let mut bytes: usize = self.held.iter().map(Batch::record_bytes).sum();
        while records < self.settings.max_rows && bytes < MAX_WRITE_BYTES {
            let batch = match self.inbox.try_recv() {
                Ok(batch) => batch,
                Err(_) if self.settings.linger.is_zero() => break,
                Err(_) => match tokio::time::timeout_at(deadline, self.inbox.recv()).await {
                    Ok(Some(batch)) => batch,
                    _ => break,
                },
            };
            records += batch.len();
            bytes += batch.record_bytes();
            self.held.push(batch);
        }
    }

    /// Connects when there is no connection, retrying in place while the database is away.
    async fn connect(&mut self) -> Result<(), Failure> {
        while self.connection.is_none() {
            match Connection::open(&self.settings).await {
                Ok(connection) => {
                    if self.retry.failures() > 0 {
                        tracing::info!(sink = %self.component, attempts = self.retry.failures(), "PostgreSQL is back");
                    }
                    self.retry.ready_again();
                    self.connection = Some(connection);
                    if self.held.is_empty() {
                        self.retry.succeeded();
                    }
                }
                Err(error) if error.is_transient() => self.lost(error.to_string()).await,
                Err(error) => return Err(Failure::from(error)),
            }
        }
        Ok(())
    }

    /// The database is away: unready, count the retry, wait the backoff.
    async fn lost(&mut self, why: String) {
        self.connection = None;
        let delay = self.retry.failed(&why);
        tokio::time::sleep(delay).await;
    }

    /// Splits the held records in two: the first half stays held, the second waits in
    /// `deferred`. False when a single record is held.
    fn split_held(&mut self) -> bool {
        let held = std::mem::take(&mut self.held);
        match halve(held) {
            Ok((first, mut later)) => {
                later.append(&mut self.deferred);
                self.held = first;
                self.deferred = later;
                true
            }
            Err(held) => {
                self.held = held;
                false
            }
        }
    }

    /// Writes the held records until they are durable (retrying in place), then settles them.
    async fn write_held(&mut self) -> Result<(), Failure> {
        loop {
            self.connect().await?;
            let key_column = self
                .connection
                .as_ref()
                .map_or(KeyColumn::default(), Connection::key_column);
            self.buffers
                .fill(&self.held, self.settings.dedupe, key_column);
            let rows = self.buffers.rows(&self.held);
            let Some(connection) = self.connection.as_mut() else {
                continue;
            };
            let began = Instant::now();
            let limit = self.settings.write_timeout;
            let written = if rows.is_empty() {
                Some(Ok(Vec::new()))
            } else {
                match connection.write_within(&rows, limit).await {
                    Some(Ok(())) => Some(Ok(Vec::new())),
                    Some(Err(error)) if classify(&error) == ErrorClass::Record => {
                        tracing::warn!(sink = %self.component, error = %describe(&error), "PostgreSQL refused a record; writing the batch row by row");
                        // A row at a time takes longer than the whole: a budget per row.
                        let budget = limit.max(ISOLATION_PER_ROW * rows.len() as u32);
                        tokio::time::timeout(budget, connection.write_isolating(&rows))
                            .await
                            .ok()
                    }
                    Some(Err(error)) => Some(Err(error)),
                    None => None,
                }
            };
            drop(rows);
            let Some(written) = written else {
                // Written again whole it would take as long: half of it first, then the rest.
                if self.split_held() {
                    tracing::warn!(sink = %self.component, records = self.held.iter().map(Batch::len).sum::<usize>(), "a PostgreSQL write did not finish in its time; writing half of its records first");
                }
                self.lost(format!("a write took over {limit:?}")).await;
                continue;
            };
            match written {
                Ok(rejected) => {
                    self.settler.timed(began);
                    self.retry.succeeded();
                    self.settle(rejected).await?;
                    if self.deferred.is_empty() {
                        return Ok(());
                    }
                    // What a write that ran out of time left for later, before anything new.
                    self.held = std::mem::take(&mut self.deferred);
                    continue;
                }
                Err(error) if classify(&error) == ErrorClass::Transient => {
                    self.lost(describe(&error)).await;
                }
                Err(error) => {
                    return Err(Failure::new(format!(
                        "PostgreSQL write failed: {}",
                        describe(&error)
                    )))
                }
            }
        }
    }

    /// Acknowledges what is durable, sends what was refused to the dead letters, gives the
    /// credit back.
    async fn settle(&mut self, rejected: Vec<(usize, String)>) -> Result<(), Failure> {
        let mut refused: Vec<(usize, i64, String)> = self.buffers.refused().to_vec();
        refused.extend(rejected.into_iter().map(|(row, why)| {
            let (batch, offset) = self.buffers.origin(row);
            (batch, offset, why)
        }));
        let mut records = 0u64;
        for (index, batch) in self.held.iter().enumerate() {
            records += batch.len() as u64;
            let dead: HashSet<i64> = refused
                .iter()
                .filter(|(of, _, _)| *of == index)
                .map(|(_, offset, _)| *offset)
                .collect();
            self.settler.metrics().settled.durable(batch, dead.len());
            if dead.is_empty() {
                self.settler.acks().ack(batch);
            } else {
                self.settler.acks().ack_some(
                    batch,
                    batch.offsets().filter(|o| !dead.contains(o)),
                    1,
                );
            }
        }
        for (index, offset, why) in &refused {
            self.dead_letter(*index, *offset, why).await?;
        }
        self.settler
            .metrics()
            .records_out
            .increment(records - refused.len() as u64);
        self.held.clear();
        self.settler.give_back(records);
        Ok(())
    }

    /// Sends record `offset` of held batch `index` to the dead letters (acknowledged when the
    /// broker has it).
    async fn dead_letter(&self, index: usize, offset: i64, why: &str) -> Result<(), Failure> {
        let batch = &self.held[index];
        let Some(record) = batch.iter().find(|record| record.offset == offset) else {
            return Ok(());
        };
        let Some(source) = self.settler.acks().source(batch.topic()) else {
            // The source stopped: the record is replayed by whoever reads the partition next.
            return Ok(());
        };
        tracing::warn!(sink = %self.component, partition = batch.partition(), offset, %why, "record refused by PostgreSQL; sent to the dead letters");
        loop {
            let origin = DeadLetterOrigin::of(&source, batch, offset, 1);
            match self.dead_letters.send(
                batch.topic(),
                &record,
                origin,
                DeadLetterReason::RefusedBySink,
                why,
                &self.component,
            ) {
                Ok(()) => {
                    self.settler
                        .metrics()
                        .dead_letters
                        .sent(DeadLetterReason::RefusedBySink);
                    return Ok(());
                }
                Err(None) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(Some(why)) => return Err(Failure::new(why)),
            }
        }
    }
}

/// `batches` in two halves by records (a batch split if need be; the offsets a batch covers
/// stay with its later records), or back as they are when they hold a single record.
fn halve(batches: Vec<Batch>) -> Result<(Vec<Batch>, Vec<Batch>), Vec<Batch>> {
    let records: usize = batches.iter().map(Batch::len).sum();
    if records < 2 {
        return Err(batches);
    }
    let mut keep = records / 2;
    let (mut first, mut later) = (Vec::new(), Vec::new());
    for mut batch in batches {
        if keep == 0 {
            later.push(batch);
        } else if batch.len() <= keep {
            keep -= batch.len();
            first.push(batch);
        } else {
            first.push(batch.split_front(keep));
            keep = 0;
            later.push(batch);
        }
    }
    Ok((first, later))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_write_that_ran_out_of_time_is_halved_by_records() {
        let batch = |first: i64, count: i64| {
            let mut batch = Batch::new(Arc::from("t"), 0, 1, count as usize);
            for offset in first..first + count {
                batch.push(offset, None, None, b"{}");
            }
            batch
        };
        let (first, later) = halve(vec![batch(0, 3), batch(3, 4)]).expect("7 records");
        let offsets = |batches: &[Batch]| -> Vec<i64> {
            batches.iter().flat_map(|batch| batch.offsets()).collect()
        };
        assert_eq!(offsets(&first), [0, 1, 2]);
        assert_eq!(offsets(&later), [3, 4, 5, 6]);
        let (first, later) = halve(vec![batch(0, 5)]).expect("5 records");
        assert_eq!(
            (offsets(&first), offsets(&later)),
            (vec![0, 1], vec![2, 3, 4])
        );
        assert!(halve(vec![batch(9, 1)]).is_err(), "one record stays whole");
    }
}
