//! The Kafka source's client: one consumer on its own polling thread (never on an actix
//! arbiter), with a [`PartitionFlow`] per assigned partition. It hands batches to a
//! [`PartitionOutlet`] (the partitions' first actors) within the demand they grant, pauses
//! partitions without demand or at their unacked cap, commits the acknowledged prefix (batched by
//! interval and count, and on revoke and shutdown), and rewinds a partition on request.
//!
//! ```text
//!   actors ── SourceInput (grants, acks, rewinds) ──▶ polling thread ── poll ──▶ Kafka
//!      ▲                                               │  PartitionFlow per partition
//!      └─────────────── PartitionOutlet::dispatch ─────┘  commit / pause / resume / seek
//! ```
//!
//! Known rdkafka traps avoided (DESIGN.md): one consumer polled in one place (no split partition
//! queues); rebalance callbacks run inside `poll` and never wait on work that needs this thread;
//! records fetched before a pause are dropped and fetched again (the flow seeks on resume).

mod broker_contact;
mod chore_clock;
mod commits;
mod context;
mod gauges;
mod held_back;
mod inputs;
mod retention;
mod settings;

pub use broker_contact::{silence_limit, BrokerContact, BROKER_SILENCE_LIMIT};
pub(crate) use held_back::HeldBack;

pub use settings::{GroupProtocol, KafkaSourceSettings, DEFAULT_MAX_UNACKED_BYTES};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::error::SourceError;
use crate::metrics::{PartitionMetrics, SourceMetrics};
use crate::record::Batch;
use crate::source::partition_flow::{FlowAction, PartitionFlow};
use chore_clock::ChoreClock;
use context::DriverContext;

pub use inputs::{PartitionStatus, SourceInput};

/// Where the polling thread hands batches: the partitions' first actors.
pub(crate) trait PartitionOutlet: Send + 'static {
    /// `partition` was assigned and starts at `incarnation`: set up its actors, which grant
    /// demand for that incarnation through the [`SourceHandle`].
    fn assigned(&mut self, partition: i32, incarnation: u64);
    /// `partition` rewound to a new `incarnation`: its (restarted) actors grant demand anew.
    /// Returns whether its first actor was told; if not, the polling thread tells it again
    /// until it is (a restarted actor may not be listed yet).
    fn rewound(&mut self, partition: i32, incarnation: u64) -> bool;
    /// `partition` was revoked (its acknowledged offsets are committed): stop its actors.
    fn revoked(&mut self, partition: i32);
    /// Called until it returns true after `partition` was assigned (and its first actor has
    /// not granted demand yet): starts the partition's actors that could not start at the
    /// assignment (their supervisor was not listed yet). True when they run.
    fn confirm_assigned(&mut self, _partition: i32, _incarnation: u64) -> bool {
        true
    }
    /// Hands a batch to the partition's first actor (always within its granted demand).
    /// `Err` gives the batch back when that actor is gone; a rewind replays it.
    fn dispatch(&mut self, batch: Batch) -> Result<(), Batch>;
}

/// How actors reach the polling thread.
#[derive(Clone, Debug)]
pub struct SourceHandle {
    inputs: Sender<SourceInput>,
    /// Set with each input: the polling thread looks at its inputs at its next poll.
    waiting: Arc<AtomicBool>,
    held_back: HeldBack,
}

impl SourceHandle {
    /// True while the source holds `partition` back (paused: see [`HeldBack`]).
    pub fn holds_back(&self, partition: i32) -> bool {
        self.held_back.contains(partition)
    }

    /// Sends an input; false once the polling thread has ended.
    pub fn send(&self, input: SourceInput) -> bool {
        let sent = self.inputs.send(input).is_ok();
        self.waiting.store(true, Ordering::Release);
        sent
    }
}

/// The inputs of a polling thread not started yet (see [`source_channel`]).
#[derive(Debug)]
pub(crate) struct SourceInputs(Receiver<SourceInput>, Arc<AtomicBool>, HeldBack);

/// A handle and the inputs it feeds, made before the source starts (its actors need the handle
/// in their recipes, and the source needs them in its outlet).
pub(crate) fn source_channel() -> (SourceHandle, SourceInputs) {
    let (inputs, receiver) = mpsc::channel();
    let waiting = Arc::new(AtomicBool::new(false));
    let held_back = HeldBack::default();
    (
        SourceHandle {
            inputs,
            waiting: Arc::clone(&waiting),
            held_back: held_back.clone(),
        },
        SourceInputs(receiver, waiting, held_back),
    )
}

/// A running Kafka source client. Dropping it shuts the polling thread down and waits for it.
pub(crate) struct KafkaSource {
    handle: SourceHandle,
    thread: Option<JoinHandle<Result<(), SourceError>>>,
}

impl KafkaSource {
    /// Creates the consumer, subscribes to the topic and starts the polling thread.
    #[cfg(test)]
    pub(crate) fn start(
        settings: KafkaSourceSettings,
        outlet: Box<dyn PartitionOutlet>,
    ) -> Result<Self, SourceError> {
        let (handle, inputs) = source_channel();
        Self::start_with(settings, outlet, handle, inputs)
    }

    /// Like [`KafkaSource::start`], with a channel made beforehand by [`source_channel`].
    pub(crate) fn start_with(
        settings: KafkaSourceSettings,
        outlet: Box<dyn PartitionOutlet>,
        handle: SourceHandle,
        SourceInputs(inputs_rx, waiting, held_back): SourceInputs,
    ) -> Result<Self, SourceError> {
        let context = DriverContext::new(settings.clone(), outlet, inputs_rx, held_back);
        let consumer: BaseConsumer<DriverContext> = settings
            .client_config()
            .create_with_context(context)
            .map_err(|source| SourceError::kafka("create the consumer", source))?;
        check_topic(&consumer, &settings.topic)?;
        settings.broker_contact.starting();
        consumer
            .subscribe(&[settings.topic.as_str()])
            .map_err(|source| SourceError::kafka("subscribe", source))?;
        let thread = std::thread::Builder::new()
            .name(format!("kafka-source-{}", settings.topic))
            .spawn(move || run(&consumer, &settings, &waiting))
            .map_err(|error| SourceError::Thread(error.to_string()))?;
        Ok(KafkaSource {
            handle,
            thread: Some(thread),
        })
    }

    /// A handle for the partitions' actors.
    #[cfg(test)]
    pub(crate) fn handle(&self) -> SourceHandle {
        self.handle.clone()
    }

    /// Stops intake, drains, commits and waits for the polling thread.
    pub(crate) fn shutdown(mut self) -> Result<(), SourceError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), SourceError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        self.handle.send(SourceInput::Shutdown);
        thread
            .join()
            .map_err(|_| SourceError::Thread("the polling thread panicked".to_owned()))?
    }
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::error!(%error, "Kafka source did not stop cleanly");
        }
    }
}

/// The polling thread.
fn run(
    consumer: &BaseConsumer<DriverContext>,
    settings: &KafkaSourceSettings,
    inputs_waiting: &AtomicBool,
) -> Result<(), SourceError> {
    let context = consumer.context();
    let mut last_commit = Instant::now();
    let mut chores = ChoreClock::new();
    let mut last_flush = Instant::now();
    let mut last_gauges = Instant::now();
    loop {
        // Inputs, pause/resume and commits at most every millisecond: not per record.
        if chores.due(inputs_waiting.load(Ordering::Acquire), Instant::now) {
            // Cleared before the inputs are taken (a read-modify-write: the take cannot move
            // before it), so an input sent meanwhile sets it again.
            inputs_waiting.swap(false, Ordering::AcqRel);
            let mut state = context.lock();
            if state.take_inputs() == Inputs::Shutdown {
                drop(state);
                return shut_down(consumer, settings);
            }
            state.apply_actions(consumer);
            // Partial batches leave after a poll timeout even while other partitions keep the
            // polls busy (a quiet partition's tail must not wait for a lull).
            if last_flush.elapsed() >= settings.poll_timeout {
                state.retell();
                state.flush();
                if state.reposition_due {
                    state.reposition_out_of_range(consumer);
                }
                last_flush = Instant::now();
            }
            if last_gauges.elapsed() >= GAUGES_EVERY {
                let elapsed = last_gauges.elapsed();
                last_gauges = Instant::now();
                state.update_gauges(elapsed);
            }
            let retry_due = state.retry_commit_at.is_some_and(|at| at <= Instant::now());
            if retry_due {
                state.retry_commit_at = None;
            }
            if retry_due
                || last_commit.elapsed() >= settings.commit_interval
                || state.uncommitted() >= settings.commit_max_records
            {
                state.commit(consumer, CommitMode::Async);
                last_commit = Instant::now();
                if !settings.commit_offsets {
                    refresh_group_metadata(consumer, settings);
                }
            }
        }
        match consumer.poll(settings.poll_timeout) {
            Some(Ok(message)) => {
                let mut state = context.lock();
                let timestamp = message.timestamp().to_millis();
                state.polled(
                    message.partition(),
                    message.offset(),
                    timestamp,
                    message.key(),
                    message.payload(),
                );
            }
            Some(Err(error))
                if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AutoOffsetReset) =>
            {
                context.lock().reposition_out_of_range(consumer);
            }
            Some(Err(error)) => {
                tracing::warn!(%error, topic = %settings.topic, "Kafka poll error; retrying")
            }
            None => {
                // Nothing came within the poll timeout: time for the chores.
                chores.idle();
                context.lock().flush()
            }
        }
    }
}

/// Gives an exactly-once sink the consumer's current group metadata (its generation, or under
/// KIP-848 its member epoch, can move on without a rebalance callback; a transaction's offsets
/// sent with an older one are refused). Skipped while a commit holds the fence: the polling
/// thread never waits for one here.
fn refresh_group_metadata(consumer: &BaseConsumer<DriverContext>, settings: &KafkaSourceSettings) {
    if let Some(mut fence) = settings.fence.try_lock() {
        if let Some(metadata) = consumer.group_metadata() {
            fence.set_metadata(Some(metadata));
        }
    }
}

/// Calls `done(partition, incarnation)` for each partition of `pending` still assigned, and
/// keeps those it is not done with yet.
fn until_done(
    pending: &mut std::collections::BTreeSet<i32>,
    flows: &std::collections::BTreeMap<i32, PartitionFlow>,
    mut done: impl FnMut(i32, u64) -> bool,
) {
    pending.retain(|partition| {
        flows
            .get(partition)
            .is_some_and(|flow| !done(*partition, flow.incarnation()))
    });
}

/// Shutdown: pause everything, wait for acks of what is in flight (the drain timeout at most),
/// commit synchronously.
fn shut_down(
    consumer: &BaseConsumer<DriverContext>,
    settings: &KafkaSourceSettings,
) -> Result<(), SourceError> {
    let context = consumer.context();
    let mut state = context.lock();
    state.pause_all(consumer);
    state.drain(settings.drain_timeout, None);
    state.commit_partitions(consumer, CommitMode::Sync, None, true);
    let left = state.unacked();
    drop(state);
    consumer.unsubscribe();
    if left > 0 {
        tracing::warn!(unacked = left, topic = %settings.topic, "shut down with records unacknowledged; they will be read again");
    }
    Ok(())
}

/// How often the polling thread updates its partitions' gauges.
const GAUGES_EVERY: Duration = Duration::from_millis(250);

/// Whether the inputs asked to stop.
#[derive(Debug, PartialEq, Eq)]
enum Inputs {
    Continue,
    Shutdown,
}

/// The polling thread's state, shared with the rebalance callbacks (which run inside `poll`, on
/// the same thread: the lock is never contended, and never held across `poll`).
struct DriverState {
    settings: KafkaSourceSettings,
    topic: Arc<str>,
    metrics: SourceMetrics,
    partition_metrics: std::collections::BTreeMap<i32, PartitionMetrics>,
    /// The last incarnation of partitions revoked, so that a new assignment counts on.
    last_incarnation: std::collections::BTreeMap<i32, u64>,
    /// A commit failed: commit again at this time.
    retry_commit_at: Option<Instant>,
    /// Pause time not yet counted (the counter takes whole seconds).
    paused_seconds: f64,
    /// Partitions whose first actor has not been told its incarnation yet.
    retell: std::collections::BTreeSet<i32>,
    /// Partitions assigned whose actors are not known to run yet.
    unconfirmed: std::collections::BTreeSet<i32>,
    flows: std::collections::BTreeMap<i32, PartitionFlow>,
    outlet: Box<dyn PartitionOutlet>,
    inputs: Receiver<SourceInput>,
    /// The partitions paused, for the actors (see [`HeldBack`]).
    held_back: HeldBack,
    /// Inputs taken out of turn (a rewind takes the acks first), handled next.
    deferred: std::collections::VecDeque<SourceInput>,
    shutdown_requested: bool,
    /// A partition out of its log's bounds could not be repositioned yet: try again.
    reposition_due: bool,
}

impl DriverState {
    /// Tells partitions' first actors their incarnation again where it did not reach them.
    /// Also starts partitions' actors that could not start at their assignment.
    fn retell(&mut self) {
        let outlet = &mut self.outlet;
        until_done(
            &mut self.unconfirmed,
            &self.flows,
            |partition, incarnation| outlet.confirm_assigned(partition, incarnation),
        );
        until_done(&mut self.retell, &self.flows, |partition, incarnation| {
            outlet.rewound(partition, incarnation)
        });
    }

    /// Waits (at most `timeout`) until nothing is unacknowledged in `only` (or in any partition)
    /// but what window stages hold in open windows.
    fn drain(&mut self, timeout: Duration, only: Option<&[i32]>) {
        let deadline = Instant::now() + timeout;
        loop {
            let unacked: usize = self
                .flows
                .iter()
                .filter(|(partition, _)| only.is_none_or(|only| only.contains(partition)))
                .map(|(_, flow)| flow.draining())
                .sum();
            if unacked == 0 {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.inputs.recv_timeout(left) {
                Ok(input) => self.handle(input),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn polled(
        &mut self,
        partition: i32,
        offset: i64,
        timestamp: Option<i64>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) {
        let Some(flow) = self.flows.get_mut(&partition) else {
            return; // revoked meanwhile
        };
        flow.polled(offset, timestamp, key, value.unwrap_or_default());
        if let Some(batch) = flow.take_batch(false) {
            let _ = self.dispatch(batch);
        }
    }

    /// The broker had nothing more: partial batches leave (within demand).
    fn flush(&mut self) {
        let partitions: Vec<i32> = self.flows.keys().copied().collect();
        for partition in partitions {
            // Each batch leaves before the next is taken: a failed dispatch rewinds the
            // partition, and nothing taken before the rewind may follow it.
            while let Some(batch) = self
                .flows
                .get_mut(&partition)
                .and_then(|flow| flow.take_batch(true))
            {
                if !self.dispatch(batch) {
                    break;
                }
            }
        }
    }

    /// Hands `batch` to its partition's first actor; false when it could not take it (the
    /// partition rewound).
    fn dispatch(&mut self, batch: Batch) -> bool {
        let partition = batch.partition();
        let records = batch.len() as u64;
        if let Err(batch) = self.outlet.dispatch(batch) {
            // Its first actor cannot take it (gone, restarting, not listed yet): replay from the
            // acknowledged prefix rather than leave these offsets in flight for good.
            tracing::debug!(
                partition,
                records = batch.len(),
                "partition actor cannot take a batch; rewinding"
            );
            self.rewind(partition, None);
            false
        } else {
            self.metrics.records_in.increment(records);
            true
        }
    }

    fn apply_actions<C: rdkafka::consumer::ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        for (partition, flow) in &mut self.flows {
            match flow.action() {
                Some(FlowAction::Pause) => {
                    if let Err(error) = consumer.pause(&one(&self.topic, *partition)) {
                        tracing::warn!(partition, %error, "pause failed");
                    }
                }
                Some(FlowAction::Resume { from }) => {
                    let seek = consumer.seek(
                        &self.topic,
                        *partition,
                        Offset::Offset(from),
                        Duration::from_secs(5),
                    );
                    if let Err(error) = seek {
                        tracing::warn!(partition, from, %error, "seek failed; retrying");
                        flow.resume_failed();
                    } else if let Err(error) = consumer.resume(&one(&self.topic, *partition)) {
                        tracing::warn!(partition, %error, "resume failed; retrying");
                        flow.resume_failed();
                    }
                }
                None => {}
            }
            // Also when neither happened: what open windows hold changes on its own.
            if let Some(held) = flow.held_back_change() {
                self.held_back.set(*partition, held);
            }
        }
    }

    fn pause_all<C: rdkafka::consumer::ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let mut all = TopicPartitionList::new();
        for partition in self.flows.keys() {
            all.add_partition(&self.topic, *partition);
        }
        if let Err(error) = consumer.pause(&all) {
            tracing::warn!(%error, "pause failed");
        }
    }

    fn uncommitted(&self) -> i64 {
        self.flows.values().map(PartitionFlow::uncommitted).sum()
    }

    fn unacked(&self) -> usize {
        self.flows.values().map(PartitionFlow::unacked).sum()
    }
}

/// Fails clearly when the brokers cannot be reached or the topic does not exist (a consumer
/// subscribed to a missing topic would wait silently).
fn check_topic<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
) -> Result<(), SourceError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .map_err(|source| SourceError::kafka("reach the brokers (metadata request)", source))?;
    let exists = metadata.topics().iter().any(|found| {
        found.name() == topic && found.error().is_none() && !found.partitions().is_empty()
    });
    if exists {
        Ok(())
    } else {
        Err(SourceError::MissingTopic(topic.to_owned()))
    }
}

/// How long the source waits for the brokers' metadata at start.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

fn one(topic: &str, partition: i32) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    list.add_partition(topic, partition);
    list
}

#[cfg(test)]
mod tests;
