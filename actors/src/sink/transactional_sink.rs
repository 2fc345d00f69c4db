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
//! go. The offsets it commits never pass a partition's acknowledged prefix ([`prefix`]): records
//! past a gap wait for a later transaction (one that sent them early aborts, and the next one
//! sends only what lies below the prefix). A `read_committed` reader sees each input record once. The source commits no offsets of
//! its own in this mode, and a new sink makes every incarnation stale and rewinds every
//! partition (its predecessor may have died holding records of any of them).
//!
//! Costs: the source's polling thread waits for a commit in progress when it rewinds or gets
//! partitions assigned (a flush, the offsets and the commit). After a process crash its open
//! transaction holds the committed offsets until the broker aborts it
//! (`transaction.timeout.ms`, 10 s by default here).
//!
//! A record the target refuses for what it is aborts its transaction; it goes to the dead
//! letters, and the next transaction carries the rest ([`refusals`]).
//!
//! Limits: both topics on one cluster; dead letters are written outside the transactions
//! (at-least-once); an abortable transaction error is retried, a fatal one fails the actor
//! (its restart makes a new producer with the same `transactional.id`, fencing the old one).
//! The embedded broker shows aborted records to `read_committed` readers: exactly-once holds
//! there only while nothing fails.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::producer::{Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use streamvisor_supervision::{ActorRef, Failure};

use crate::pipeline::dead_letters::DeadLetterTarget;
use crate::record::Batch;
use crate::sink::actor::{SinkContext, SinkMessage, SinkWriter};
use crate::sink::fence::{FenceState, TransactionFence};
use crate::sink::kafka_sink::KafkaSinkSettings;
use crate::sink::produce::producer_config;
use crate::sink::writer::{Settler, WriterFailure};

mod prefix;
mod refusals;
mod refused;
mod send;

use refusals::{RefusalContext, Reported};
use send::Sends;

/// The transactional producer (its context keeps the broker's refusals).
type TxnProducer = ThreadedProducer<RefusalContext>;

/// librdkafka's default `batch.size`: the most bytes of a message set.
const DEFAULT_BATCH_BYTES: usize = 1_000_000;

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
    /// Where records the target refuses go.
    pub dead_letters: DeadLetterTarget,
    /// Send records as they arrive within an open transaction (a real broker); false on the
    /// embedded broker, whose `read_committed` readers see aborted records: there the whole
    /// transaction runs under the fence and aborts only for a record the topic refuses.
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
            component: sink.component().to_owned(),
            reported: Reported::default(),
            sends: Sends::default(),
            next_suspects: Vec::new(),
            topic_limit: None,
            pending: Vec::new(),
            held: Vec::new(),
            prepaid: 0,
            past_gap: false,
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
fn commit(producer: &TxnProducer) -> Result<(), KafkaError> {
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
    /// The sink's actor path (for dead letters).
    component: String,
    /// Records the broker refused, from the producer's delivery reports.
    reported: Reported,
    /// What the open transaction sent, and what was refused.
    sends: Sends,
    /// Records refused in a message set with others in the open transaction.
    next_suspects: Vec<refusals::RecordId>,
    /// The output topic's `max.message.bytes`, once asked (`Some(None)`: not known).
    topic_limit: Option<Option<usize>>,
    /// Batches taken and not yet committed.
    pending: Vec<Batch>,
    /// Batches past a gap in their partition's acknowledged prefix, left out of the transaction
    /// being committed: pending again (first) for the next one.
    held: Vec<Batch>,
    /// Credit given back ahead for held records (so that the record closing a gap can still
    /// come in through the inlet they would otherwise fill): at least the held records' count.
    prepaid: u64,
    /// The last transaction found records past a gap in the acknowledged prefix: the next one
    /// sends nothing early, only what lies below the prefix at its commit.
    past_gap: bool,
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

    fn producer(&mut self) -> Result<TxnProducer, String> {
        let context = RefusalContext {
            reported: Arc::clone(&self.reported),
        };
        let mut config = producer_config(
            &self.recipe.settings.brokers,
            &self.recipe.settings.properties,
        );
        // The broker counts a topic's `max.message.bytes` against a whole message set: sets
        // no larger than that, so that only a record too large alone is ever refused.
        if let Some(limit) = self.topic_limit() {
            if limit < DEFAULT_BATCH_BYTES
                && !self.recipe.settings.properties.contains_key("batch.size")
            {
                config.set("batch.size", limit.to_string());
            }
        }
        let settings = &self.recipe.settings;
        let producer: TxnProducer = config
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
            .create_with_context(context)
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
            let waiting = |writer: &Self| writer.pending.is_empty() && writer.held.is_empty();
            if !self.gather() && waiting(self) {
                return Ok(());
            }
            if waiting(self) {
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
    /// Held batches that went stale are dropped too (they were sent in no transaction).
    fn drop_stale(&mut self, fence: &FenceState) -> usize {
        let current = |batch: &Batch| fence.is_current(batch.partition(), batch.incarnation());
        let (pending, stale): (Vec<Batch>, Vec<Batch>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(current);
        let (held, stale_held): (Vec<Batch>, Vec<Batch>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(current);
        self.pending = pending;
        self.held = held;
        let records: usize = stale.iter().map(Batch::len).sum();
        let held_records: usize = stale_held.iter().map(Batch::len).sum();
        self.settle_credit((records + held_records) as u64);
        records
    }

    /// Gives back the credit of `settled` records (committed, or dropped as stale) and of the
    /// records held now, less what was given back ahead: the inlet's credit never counts held
    /// records.
    fn settle_credit(&mut self, settled: u64) {
        let held: u64 = self.held.iter().map(|batch| batch.len() as u64).sum();
        let grant = (settled + held).saturating_sub(self.prepaid);
        self.prepaid = (self.prepaid + grant).saturating_sub(settled);
        self.settler.give_back(grant);
    }

    /// One transaction. On a real broker ([`TransactionalSinkRecipe::send_early`]) it begins,
    /// sends the pending batches and those that arrive during the interval (or up to
    /// `max_records`) as they come, then, under the fence, commits them with the partitions'
    /// next offsets: a kill, a crash or a rewind in the middle aborts records the broker already
    /// holds (`read_committed` readers never see them), and a transaction holding records of a
    /// partition that rewound or moved meanwhile is aborted, its current records sent again in
    /// the next one. On the embedded broker (whose `read_committed` readers see aborted records)
    /// it gathers first and begins, sends and commits all under the fence, after dropping what
    /// is stale, so that it aborts only for a refused record. No partition can rewind or be
    /// assigned while the commit runs.
    fn transaction(&mut self, producer: &TxnProducer) -> Result<Outcome, KafkaError> {
        let began = Instant::now();
        // What the last transaction's producer refused leaves before this one: its delivery
        // reports served first (an abort returns before they are).
        let _ = send::wait_delivered(producer, None);
        self.settle_refused();
        let early = self.recipe.send_early && !self.past_gap;
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
                self.held.clear();
                return Ok(Outcome::Gone);
            }
            if self.pending.is_empty() {
                return Ok(Outcome::Stale);
            }
            self.begin(producer)?;
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
                        let topic = self.recipe.settings.topic.as_str();
                        let batch = &self.pending[last];
                        if let Err(error) =
                            self.sends
                                .send(producer, &self.reported, topic, &self.alive, batch)
                        {
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
        // Before the fence: the source answers between polls, and may wait for the fence.
        let mut candidates = std::mem::take(&mut self.held);
        candidates.append(&mut self.pending);
        self.pending = candidates;
        let prefixes = match prefix::ask(self.settler.acks(), &self.pending) {
            Ok(prefixes) => prefixes,
            Err(why) if early => return self.abandon(producer, &why),
            Err(why) => {
                tracing::warn!(%why, "the transaction waits");
                return Ok(Outcome::Stale);
            }
        };
        self.held = prefix::hold_past(&mut self.pending, &prefixes);
        self.settle_credit(0);
        self.past_gap = !self.held.is_empty();
        if self.past_gap && early {
            tracing::info!(
                "records past a gap in the acknowledged prefix were sent: the transaction is \
                 aborted, and the next one sends only what lies below the prefix"
            );
            producer.abort_transaction(CALL_TIMEOUT)?;
            return Ok(Outcome::Stale);
        }
        if self.pending.is_empty() {
            // Nothing lies below the prefix yet: wait for the gap to close (held records that
            // went stale meanwhile, their partition rewound or gone, are dropped).
            let fence = self.recipe.fence.clone();
            self.drop_stale(&fence.lock());
            std::thread::sleep(Duration::from_millis(10));
            return Ok(Outcome::Stale);
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
            self.begin(producer)?;
            if let Err(error) = self.send_all(producer) {
                drop(fence);
                return self.abandon(producer, &error.to_string());
            }
        }
        send::wait_delivered(producer, Some(&self.reported))?;
        if self.refusals_waiting() {
            drop(fence);
            tracing::info!("a record of the transaction was refused: it is aborted, and the next one goes without it");
            producer.abort_transaction(CALL_TIMEOUT)?;
            // The producer bumps its epoch after the abort: a transaction begun at once fails.
            std::thread::sleep(Duration::from_millis(300));
            return Ok(Outcome::Stale);
        }
        let current = std::mem::take(&mut self.pending);
        let next = prefix::next_offsets(&current, &prefixes);
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
        // Each suspect went alone in it, and was not refused.
        self.sends.suspects.clear();
        // Acknowledged before the fence goes: no partition rewinds past a committed record.
        let settled = self.settler.durable_uncredited(&current);
        self.settle_credit(settled);
        drop(fence);
        self.settler.timed(began);
        Ok(Outcome::Committed)
    }

    /// Sends every pending batch in the open transaction.
    fn send_all(&mut self, producer: &TxnProducer) -> Result<(), KafkaError> {
        let topic = self.recipe.settings.topic.as_str();
        for batch in &self.pending {
            self.sends
                .send(producer, &self.reported, topic, &self.alive, batch)?;
        }
        Ok(())
    }

    /// Begins a transaction: the tags of the last one name nothing any more.
    fn begin(&mut self, producer: &TxnProducer) -> Result<(), KafkaError> {
        self.sends.sent.begin();
        producer.begin_transaction()
    }

    /// Gives up the open transaction (`why`): aborts it, keeping the pending batches for the
    /// next one (a send refused because the transaction must abort, records that timed out while
    /// a broker was away), or drops them when the actor is gone (its successor replays them).
    /// Only an abort that fails ends the writer (a fenced producer: a successor took over).
    fn abandon(&mut self, producer: &TxnProducer, why: &str) -> Result<Outcome, KafkaError> {
        let gone = !self.alive.load(Ordering::Acquire);
        if gone {
            self.pending.clear();
            self.held.clear();
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
