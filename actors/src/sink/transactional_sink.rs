//! The exactly-once Kafka sink (`kind = "kafka"`, `exactly_once = true`): Kafka to Kafka in
//! transactions. The actor hands batches (within its inlet's credit) to a thread that owns a
//! transactional producer, since every transaction call blocks. Per transaction the thread:
//! drops batches that are not their partition's current incarnation (their partition rewound or
//! moved: the rewind replays them), begins, sends records as their batches arrive for
//! `transaction_interval` (origin headers as in the at-least-once sink), then takes the
//! [`TransactionFence`]: if a partition of the transaction rewound or moved meanwhile, it aborts
//! (the broker keeps the aborted records, which `read_committed` readers skip) and sends the
//! current records again in the next transaction; otherwise it flushes, sends the partitions'
//! next offsets with the consumer's group metadata, commits, acknowledges, and lets the fence
//! go. A `read_committed` reader sees each input record once. The source commits no offsets of
//! its own in this mode, and a new sink makes every incarnation stale and rewinds every
//! partition (its predecessor may have died holding records of any of them).
//!
//! Costs: the source's polling thread waits for a commit in progress when it rewinds or gets
//! partitions assigned (a flush, the offsets and the commit). After a process crash its open
//! transaction holds the committed offsets until the broker aborts it
//! (`transaction.timeout.ms`, 10 s by default here).
//!
//! Limits: both topics on one cluster; dead letters are written outside the transactions
//! (at-least-once); an abortable transaction error is retried, a fatal one fails the actor
//! (its restart makes a new producer with the same `transactional.id`, fencing the old one).
//! The embedded broker shows aborted records to `read_committed` readers: exactly-once holds
//! there only while nothing fails.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use streamvisor_supervision::{ActorRef, Failure};

use crate::record::Batch;
use crate::sink::actor::{SinkContext, SinkMessage, SinkWriter};
use crate::sink::fence::{FenceState, TransactionFence};
use crate::sink::kafka_sink::KafkaSinkSettings;
use crate::sink::produce::{origin_headers, producer_config};
use crate::sink::writer::{Settler, WriterFailure};

/// How long one transaction call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how an exactly-once Kafka sink writes.
#[derive(Clone, Debug)]
pub(crate) struct TransactionalSettings {
    /// Where it writes.
    pub settings: KafkaSinkSettings,
    /// The producer's `transactional.id` (stable for the process: a restarted sink fences its
    /// predecessor).
    pub transactional_id: String,
    /// Records per transaction, at most.
    pub max_records: usize,
    /// How long a transaction gathers records.
    pub interval: Duration,
    /// Shared with the source.
    pub fence: TransactionFence,
    /// Send records as they arrive within an open transaction (a real broker); false on the
    /// embedded broker, whose `read_committed` readers see aborted records: there the whole
    /// transaction runs under the fence and never aborts for its own reasons.
    pub send_early: bool,
}

/// Hands batches to a thread that owns the transactional producer.
pub(crate) struct TransactionalWriter {
    settings: TransactionalSettings,
    to_thread: Option<mpsc::Sender<Batch>>,
    /// False once the actor stops or dies: its thread writes no further transaction.
    alive: Arc<AtomicBool>,
}

impl TransactionalWriter {
    /// A writer for `settings` (its thread starts with the actor).
    pub(crate) fn new(settings: TransactionalSettings) -> Self {
        TransactionalWriter {
            settings,
            to_thread: None,
            alive: Arc::new(AtomicBool::new(true)),
        }
    }
}

impl SinkWriter for TransactionalWriter {
    fn open(&mut self, sink: &mut SinkContext<'_, '_, Self>) -> Result<(), Failure> {
        let (to_thread, inbox) = mpsc::channel();
        let writer = Writer {
            recipe: self.settings.clone(),
            inbox,
            settler: sink.settler().clone(),
            pending: Vec::new(),
            alive: Arc::clone(&self.alive),
        };
        let failure = sink.failure();
        let actor = sink.myself();
        std::thread::Builder::new()
            .name("kafka-txn-sink".to_owned())
            .spawn(move || writer.run(failure, actor))
            .map_err(|error| Failure::new(format!("exactly-once sink thread: {error}")))?;
        self.to_thread = Some(to_thread);
        Ok(())
    }

    fn take(&mut self, batch: Batch, sink: &mut SinkContext<'_, '_, Self>) -> Result<(), Failure> {
        match &self.to_thread {
            Some(thread) if thread.send(batch).is_ok() => Ok(()),
            _ => Err(sink.ended("the exactly-once sink's thread ended")),
        }
    }

    fn close(&mut self) {
        self.alive.store(false, Ordering::Release);
        self.to_thread = None;
    }
}

/// Commits the open transaction, retrying a commit librdkafka says may be retried (it may have
/// reached the broker already: aborting it instead could write its records twice).
fn commit(producer: &ThreadedProducer<DefaultProducerContext>) -> Result<(), KafkaError> {
    let mut attempts = 0;
    loop {
        match producer.commit_transaction(CALL_TIMEOUT) {
            Err(KafkaError::Transaction(error)) if error.is_retriable() && attempts < 10 => {
                attempts += 1;
                tracing::warn!(%error, attempts, "commit_transaction failed; retrying the commit");
                std::thread::sleep(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// The thread that owns the transactional producer.
struct Writer {
    recipe: TransactionalSettings,
    inbox: Receiver<Batch>,
    settler: Settler,
    /// Batches taken and not yet committed.
    pending: Vec<Batch>,
    alive: Arc<AtomicBool>,
}

/// How a transaction ended.
enum Outcome {
    /// Committed: its batches are acknowledged.
    Committed,
    /// Nothing current to write (records of rewound partitions were dropped).
    Stale,
    /// The actor is gone.
    Gone,
}

impl Writer {
    fn run(mut self, failure: WriterFailure, actor: ActorRef<SinkMessage>) {
        if let Err(why) = self.serve() {
            tracing::error!(%why, "exactly-once Kafka sink fails");
            failure.set(Failure::new(why));
            let _ = actor.try_send(SinkMessage::Wake);
        }
    }

    fn producer(&self) -> Result<ThreadedProducer<DefaultProducerContext>, String> {
        let settings = &self.recipe.settings;
        let producer: ThreadedProducer<DefaultProducerContext> =
            producer_config(&settings.brokers, &settings.properties)
                .set("transactional.id", &self.recipe.transactional_id)
                // A crashed process's open transaction blocks its partitions' committed offsets
                // until the broker aborts it: keep that short (overridable in `properties`).
                .set(
                    "transaction.timeout.ms",
                    settings
                        .properties
                        .get("transaction.timeout.ms")
                        .map_or("10000", String::as_str),
                )
                .set("enable.idempotence", "true")
                .set("acks", "all")
                .create()
                .map_err(|error| format!("transactional producer: {error}"))?;
        // Under the fence: a predecessor's transaction in progress ends first (this call would
        // abort it, and aborted records show on the embedded broker).
        let fence = self.recipe.fence.clone();
        let mut fence = fence.lock();
        producer
            .init_transactions(CALL_TIMEOUT)
            .map_err(|error| format!("init_transactions: {error}"))?;
        // A predecessor may have died holding records of any partition: nothing current may
        // commit past such a gap before it is replayed.
        fence.invalidate_all();
        self.settler.acks().rewind_all();
        Ok(producer)
    }

    fn serve(&mut self) -> Result<(), String> {
        let producer = self.producer()?;
        loop {
            if !self.gather() && self.pending.is_empty() {
                return Ok(());
            }
            if self.pending.is_empty() {
                continue;
            }
            match self.transaction(&producer) {
                Ok(Outcome::Committed) | Ok(Outcome::Stale) => {}
                Ok(Outcome::Gone) => return Ok(()),
                Err(KafkaError::Transaction(error)) if error.txn_requires_abort() => {
                    tracing::warn!(%error, "transaction aborted; retrying its records");
                    producer
                        .abort_transaction(CALL_TIMEOUT)
                        .map_err(|error| format!("abort_transaction: {error}"))?;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(KafkaError::Transaction(error)) if error.is_retriable() => {
                    tracing::warn!(%error, "transaction call failed; retrying");
                    let _ = producer.abort_transaction(CALL_TIMEOUT);
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(error) => return Err(format!("transaction failed: {error}")),
            }
        }
    }

    /// Waits for a first batch when none is pending (200 ms at most). False once the actor is
    /// gone.
    fn gather(&mut self) -> bool {
        if !self.pending.is_empty() {
            return true;
        }
        match self.inbox.recv_timeout(Duration::from_millis(200)) {
            Ok(batch) => {
                self.pending.push(batch);
                true
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => false,
        }
    }

    /// Drops the pending batches of partitions that rewound or moved (the rewind replays them),
    /// giving their credit back; returns how many records were dropped.
    fn drop_stale(&mut self, fence: &FenceState) -> usize {
        let (current, stale): (Vec<Batch>, Vec<Batch>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|batch| fence.is_current(batch.partition(), batch.incarnation()));
        self.pending = current;
        let records: usize = stale.iter().map(Batch::len).sum();
        self.settler.give_back(records as u64);
        records
    }

    /// One transaction. On a real broker ([`TransactionalSinkRecipe::send_early`]) it begins,
    /// sends the pending batches and those that arrive during the interval (or up to
    /// `max_records`) as they come, then, under the fence, commits them with the partitions'
    /// next offsets: a kill, a crash or a rewind in the middle aborts records the broker already
    /// holds (`read_committed` readers never see them), and a transaction holding records of a
    /// partition that rewound or moved meanwhile is aborted, its current records sent again in
    /// the next one. On the embedded broker (whose `read_committed` readers see aborted records)
    /// it gathers first and begins, sends and commits all under the fence, after dropping what
    /// is stale, so that it never aborts for its own reasons. No partition can rewind or be
    /// assigned while the commit runs.
    fn transaction(
        &mut self,
        producer: &ThreadedProducer<DefaultProducerContext>,
    ) -> Result<Outcome, KafkaError> {
        let began = Instant::now();
        let early = self.recipe.send_early;
        if early {
            {
                let fence = self.recipe.fence.clone();
                let fence = fence.lock();
                let dropped = self.drop_stale(&fence);
                if dropped > 0 {
                    tracing::info!(
                        records = dropped,
                        "dropped records of rewound partitions before a transaction; they are replayed"
                    );
                }
            }
            if !self.alive.load(Ordering::Acquire) {
                // The actor is gone: its successor (or the rewind its death causes) takes over.
                self.pending.clear();
                return Ok(Outcome::Gone);
            }
            if self.pending.is_empty() {
                return Ok(Outcome::Stale);
            }
            producer.begin_transaction()?;
            if let Err(error) = self.send_all(producer) {
                return self.abandon(producer, &error.to_string());
            }
        }
        let mut records: usize = self.pending.iter().map(Batch::len).sum();
        let deadline = began + self.recipe.interval;
        while records < self.recipe.max_records {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.inbox.recv_timeout(left) {
                Ok(batch) => {
                    records += batch.len();
                    self.pending.push(batch);
                    if early {
                        let last = self.pending.len() - 1;
                        if let Err(error) = self.send(producer, &self.pending[last]) {
                            return self.abandon(producer, &error.to_string());
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    self.alive.store(false, Ordering::Release);
                    break;
                }
            }
        }
        let fence = self.recipe.fence.clone();
        let mut fence = fence.lock();
        if !self.alive.load(Ordering::Acquire) {
            drop(fence);
            return self.abandon(producer, "the actor is gone");
        }
        let dropped = self.drop_stale(&fence);
        let Some(metadata) = fence.metadata() else {
            drop(fence);
            if early {
                producer.abort_transaction(CALL_TIMEOUT)?;
            }
            tracing::info!("no group metadata yet (no partition assigned): the records wait");
            std::thread::sleep(Duration::from_millis(100));
            return Ok(Outcome::Stale);
        };
        if early && dropped > 0 {
            drop(fence);
            tracing::info!(
                records = dropped,
                "aborted a transaction holding records of rewound partitions; the others go again"
            );
            producer.abort_transaction(CALL_TIMEOUT)?;
            return Ok(Outcome::Stale);
        }
        if self.pending.is_empty() {
            return Ok(Outcome::Stale);
        }
        if !early {
            producer.begin_transaction()?;
            self.send_all(producer)?;
        }
        producer.flush(CALL_TIMEOUT)?;
        let current = std::mem::take(&mut self.pending);
        let mut next: BTreeMap<(Arc<str>, i32), i64> = BTreeMap::new();
        for batch in &current {
            if let Some(last) = batch.offsets().last() {
                let entry = next
                    .entry((Arc::clone(batch.topic()), batch.partition()))
                    .or_default();
                *entry = (*entry).max(last + 1);
            }
        }
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), offset) in &next {
            offsets.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
        }
        if let Err(error) = producer
            .send_offsets_to_transaction(&offsets, &metadata, CALL_TIMEOUT)
            .and_then(|()| commit(producer))
        {
            self.pending = current;
            return Err(error);
        }

        for ((_, partition), offset) in &next {
            fence.committed(*partition, *offset);
        }
        // Acknowledged before the fence goes: no partition rewinds past a committed record.
        self.settler.durable(&current);
        drop(fence);
        self.settler.timed(began);
        Ok(Outcome::Committed)
    }

    /// Sends the records of `batch` in the open transaction (origin headers as in the
    /// at-least-once sink), waiting while the producer's queue is full.
    fn send(
        &self,
        producer: &ThreadedProducer<DefaultProducerContext>,
        batch: &Batch,
    ) -> Result<(), KafkaError> {
        let topic = self.recipe.settings.topic.as_str();
        let partition = batch.partition().to_string();
        for record in batch.iter() {
            let mut digits = itoa::Buffer::new();
            let offset = digits.format(record.offset);
            let headers = origin_headers(batch.topic(), &partition, offset, 0);
            let mut message: BaseRecord<'_, [u8], [u8]> =
                BaseRecord::to(topic).payload(record.value).headers(headers);
            if let Some(key) = record.key {
                message = message.key(key);
            }
            if let Some(timestamp) = record.timestamp_ms {
                message = message.timestamp(timestamp);
            }
            loop {
                match producer.send(message) {
                    Ok(()) => break,
                    Err((error, returned))
                        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull)
                            && self.alive.load(Ordering::Acquire) =>
                    {
                        message = returned;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err((error, _)) => return Err(error),
                }
            }
        }
        Ok(())
    }

    /// Sends every pending batch in the open transaction.
    fn send_all(
        &self,
        producer: &ThreadedProducer<DefaultProducerContext>,
    ) -> Result<(), KafkaError> {
        self.pending
            .iter()
            .try_for_each(|batch| self.send(producer, batch))
    }

    /// Gives up the open transaction (`why`): aborts it, keeping the pending batches for the
    /// next one (a send refused because the transaction must abort, records that timed out while
    /// a broker was away), or drops them when the actor is gone (its successor replays them).
    /// Only an abort that fails ends the writer (a fenced producer: a successor took over).
    fn abandon(
        &mut self,
        producer: &ThreadedProducer<DefaultProducerContext>,
        why: &str,
    ) -> Result<Outcome, KafkaError> {
        let gone = !self.alive.load(Ordering::Acquire);
        if gone {
            self.pending.clear();
        } else {
            tracing::warn!(%why, "transaction aborted; its records go again in the next one");
        }
        match producer.abort_transaction(CALL_TIMEOUT) {
            Ok(()) => {}
            Err(_) if gone => return Ok(Outcome::Gone),
            Err(error) => return Err(error),
        }
        if gone {
            return Ok(Outcome::Gone);
        }
        std::thread::sleep(Duration::from_millis(100));
        Ok(Outcome::Stale)
    }
}
