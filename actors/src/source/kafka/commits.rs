//! The polling thread's commits: the acknowledged prefix of each partition, listed every time
//! (an async commit that failed is carried by the next one), and never when an exactly-once
//! sink's transactions commit the offsets.

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use super::DriverState;

impl DriverState {
    /// Commits the acknowledged prefix of every partition (asynchronously, batched by interval
    /// and count). Every partition is listed, moved or not: an async commit that failed is
    /// carried by the next one.
    pub(super) fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        mode: CommitMode,
    ) {
        self.commit_partitions(consumer, mode, None, true);
    }

    /// Commits `only` these partitions (or all), `every` one of them even if its position did not
    /// move since the last commit (which may have failed): for revoke and shutdown.
    pub(super) fn commit_partitions<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        mode: CommitMode,
        only: Option<&[i32]>,
        every: bool,
    ) {
        let mut offsets = TopicPartitionList::new();
        for (partition, flow) in &mut self.flows {
            if only.is_some_and(|only| !only.contains(partition)) {
                continue;
            }
            let moved = flow.take_commit();
            let position = if every { Some(flow.position()) } else { moved };
            if let (Some(position), Some(gauges)) =
                (position, self.partition_metrics.get(partition))
            {
                gauges.committed_offset.set(position as f64);
                gauges.uncommitted.set(flow.uncommitted() as f64);
            }
            if let Some(position) = position {
                if let Some(backlog) = &self.settings.backlog {
                    backlog.committed(*partition, position);
                }
                if let Err(error) =
                    offsets.add_partition_offset(&self.topic, *partition, Offset::Offset(position))
                {
                    tracing::warn!(partition, %error, "could not list an offset to commit");
                }
            }
        }
        // With an exactly-once sink, its transactions commit the offsets.
        if offsets.count() == 0 || !self.settings.commit_offsets {
            return;
        }
        if let Err(error) = consumer.commit(&offsets, mode) {
            tracing::warn!(%error, "commit failed; the next commit carries these offsets again (every partition is listed each time)");
        }
    }
}
