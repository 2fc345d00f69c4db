//! The consumer's context: rebalance callbacks. They run inside `poll` on the polling thread, so
//! they share the driver state through an uncontended lock (never held across `poll`). Assign
//! creates a [`PartitionFlow`] at the committed offset; revoke waits for in-flight acks (the drain
//! timeout at most), commits them, and stops the partition's actors.

use std::collections::BTreeMap;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::{DriverState, HeldBack, KafkaSourceSettings, PartitionOutlet, SourceInput};
use crate::flow::memory::PartitionMemory;
use crate::metrics::SourceMetrics;
use crate::source::partition_flow::{OffsetReset, PartitionFlow};

/// How soon a failed commit is tried again.
const COMMIT_RETRY_AFTER: Duration = Duration::from_millis(100);

/// How long the assign callback waits for the broker's committed offsets and watermarks.
pub(super) const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct DriverContext {
    state: Mutex<DriverState>,
}

impl DriverContext {
    pub(crate) fn new(
        settings: KafkaSourceSettings,
        outlet: Box<dyn PartitionOutlet>,
        inputs: Receiver<SourceInput>,
        held_back: HeldBack,
    ) -> Self {
        DriverContext {
            state: Mutex::new(DriverState {
                topic: Arc::from(settings.topic.as_str()),
                metrics: SourceMetrics::new(&settings.pipeline, &settings.source, &settings.topic),
                partition_metrics: BTreeMap::new(),
                last_incarnation: BTreeMap::new(),
                retry_commit_at: None,
                paused_seconds: 0.0,
                retell: Default::default(),
                unconfirmed: Default::default(),
                settings,
                flows: BTreeMap::new(),
                outlet,
                inputs,
                held_back,
                deferred: std::collections::VecDeque::new(),
                shutdown_requested: false,
                reposition_due: false,
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, DriverState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ClientContext for DriverContext {
    /// librdkafka's errors, logged as errors, but for `_AUTO_OFFSET_RESET`: with
    /// `auto.offset.reset = error` that is how a partition without a usable position is
    /// reported (every partition of a new group, too), and the polling thread repositions it
    /// (`retention.rs`), logging a loss as an error there.
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::AutoOffsetReset) {
            tracing::debug!(%error, reason, "a partition without a usable position: the runtime repositions it");
        } else {
            tracing::error!(%error, reason, "librdkafka error");
        }
    }

    /// librdkafka's statistics (every `statistics.interval.ms`, inside `poll`): the lag gauges
    /// and when a broker last answered.
    fn stats(&self, statistics: rdkafka::Statistics) {
        let state = self.lock();
        state
            .settings
            .broker_contact
            .observe(&statistics, std::time::Instant::now());
        state.update_lag(&statistics);
    }
}

impl ConsumerContext for DriverContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let mut state = self.lock();
            let revoked: Vec<i32> = list
                .elements()
                .iter()
                .map(|element| element.partition())
                .collect();
            // At shutdown the drain already happened: do not wait a second time.
            let drain = if state.shutdown_requested {
                Duration::ZERO
            } else {
                // Inside poll: a rebalance waits at most a few seconds for acks.
                state.settings.drain_timeout.min(REVOKE_DRAIN_LIMIT)
            };
            state.drain(drain, Some(&revoked));
            state.commit_partitions(consumer, CommitMode::Sync, Some(&revoked), true);
            let fence = state.settings.fence.clone();
            let mut fence = fence.lock();
            for partition in &revoked {
                fence.revoke(*partition);
            }
            fence.set_metadata(consumer.group_metadata());
            drop(fence);
            for partition in revoked {
                state.partition_metrics.remove(&partition);
                state.held_back.set(partition, false);
                if let Some(flow) = state.flows.remove(&partition) {
                    state.last_incarnation.insert(partition, flow.incarnation());
                    tracing::info!(
                        partition,
                        committed = flow.position(),
                        unacked = flow.unacked(),
                        "partition revoked"
                    );
                }
                state.outlet.revoked(partition);
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                // librdkafka keeps a partition's pause across a revoke and a new assignment: a
                // partition paused before it was revoked would come back paused while its new
                // flow believes it fetches, and never flow again. Every assigned partition
                // starts resumed, as its flow does.
                if let Err(error) = consumer.resume(list) {
                    tracing::warn!(%error, "could not resume newly assigned partitions");
                }
                // Under the fence: a transaction that commits offsets of these partitions does
                // it before their start is looked up, or is refused (not current).
                let fence = self.lock().settings.fence.clone();
                let mut fence = fence.lock();
                fence.set_metadata(consumer.group_metadata());
                let reset = self.lock().settings.offset_reset();
                let starts = start_offsets(consumer, list, reset);
                let mut state = self.lock();
                for (partition, looked_up) in starts {
                    let start = fence.start(partition, looked_up);
                    // Incarnations go on counting across assignments of the same partition, so
                    // that actors of an earlier assignment cannot pass for current ones.
                    let first = fence.assign(
                        partition,
                        state
                            .last_incarnation
                            .get(&partition)
                            .map_or(1, |last| last + 1),
                    );
                    let mut flow = PartitionFlow::with_incarnation(
                        Arc::clone(&state.topic),
                        partition,
                        start,
                        state.settings.batch_size,
                        state.settings.max_unacked,
                        first,
                    )
                    .with_memory(PartitionMemory::new(
                        state.settings.max_unacked_bytes,
                        Arc::clone(&state.settings.memory_budget),
                    ));
                    flow.set_required_acks(state.settings.paths_to_sinks);
                    tracing::info!(partition, start, looked_up, "partition assigned");
                    let incarnation = flow.incarnation();
                    state.flows.insert(partition, flow);
                    // A fresh flow is not held back (whatever an earlier one published).
                    state.held_back.set(partition, false);
                    let gauges = state.metrics.partition(partition);
                    gauges.committed_offset.set(start as f64);
                    state.partition_metrics.insert(partition, gauges);
                    state.outlet.assigned(partition, incarnation);
                    // The polling thread checks that the partition's actors run (one may not
                    // have started: its supervisor was not listed yet).
                    state.unconfirmed.insert(partition);
                }
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance error"),
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        offsets: &TopicPartitionList,
    ) {
        if let Err(error) = result {
            // Try again soon (every partition is listed in each commit), not at the next interval.
            self.lock().retry_commit_at = Some(std::time::Instant::now() + COMMIT_RETRY_AFTER);
            tracing::warn!(%error, partitions = offsets.count(), "commit failed; the next one carries these offsets");
        }
    }
}

/// Where each newly assigned partition starts: the group's committed offset, else (a new group,
/// `auto.offset.reset = earliest`) the partition's low watermark.
fn start_offsets<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    list: &TopicPartitionList,
    reset: OffsetReset,
) -> Vec<(i32, i64)> {
    // A failed lookup is tried again before falling back to the low watermark (which replays
    // the partition): an exactly-once sink's open transaction can hold it for a while.
    let mut committed = consumer.committed_offsets(list.clone(), LOOKUP_TIMEOUT);
    for attempt in 2..=LOOKUP_ATTEMPTS {
        let Err(error) = &committed else { break };
        tracing::warn!(%error, attempt, "committed offsets lookup failed; trying again");
        committed = consumer.committed_offsets(list.clone(), LOOKUP_TIMEOUT);
    }
    if let Err(error) = &committed {
        tracing::error!(%error, "committed offsets unknown: starting from the low watermark (records are read again)");
    }
    list.elements()
        .iter()
        .map(|element| {
            let partition = element.partition();
            let stored = committed
                .as_ref()
                .ok()
                .and_then(|committed| committed.find_partition(element.topic(), partition))
                .map(|found| found.offset());
            let start = match stored {
                Some(Offset::Offset(offset)) => offset,
                _ => consumer
                    .fetch_watermarks(element.topic(), partition, LOOKUP_TIMEOUT)
                    .map(|(low, high)| match reset {
                        OffsetReset::Earliest => low,
                        OffsetReset::Latest => high,
                    })
                    .unwrap_or(0),
            };
            (partition, start)
        })
        .collect()
}

/// Committed-offset lookups before falling back to the low watermark.
const LOOKUP_ATTEMPTS: u32 = 3;

/// The longest a revoke waits for the acks of what its partitions have in flight (what is not
/// acknowledged by then is read again by the partitions' next owner).
const REVOKE_DRAIN_LIMIT: Duration = Duration::from_secs(5);
