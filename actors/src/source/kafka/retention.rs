//! A partition whose position the broker cannot serve: librdkafka is told
//! `auto.offset.reset = error`, so it skips nothing on its own and reports
//! `_AUTO_OFFSET_RESET` instead (without naming the partition). The polling thread then looks
//! at every assigned partition's log: a position below the log's start was deleted before it
//! was read (retention). That range is an error in the log naming the partition and offsets,
//! and a count in `streamvisor_records_lost_total{reason="retention"}`, and the partition goes
//! on from where `auto.offset.reset` says; the acknowledged prefix passes over the gap. Gaps
//! that are not loss (transaction markers, compacted or aborted records) never get here: the
//! broker serves the offsets around them.

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use super::context::LOOKUP_TIMEOUT;
use super::DriverState;
use crate::source::partition_flow::Reposition;

impl DriverState {
    /// Repositions the partitions whose position fell out of their log (see the module's
    /// doc), counting what was lost: those whose position is unknown (a new group: librdkafka
    /// had no offset to start from) or whose next offset lies outside the log's bounds now.
    /// Each goes on from where its flow says, assigned again at that offset (librdkafka does
    /// not seek a partition it stopped for an offset error), and paused again when its flow is.
    /// A partition that could not be looked at or assigned is tried again on the poll loop's
    /// next round ([`DriverState::reposition_due`]): librdkafka reports nothing more for it.
    pub(super) fn reposition_out_of_range<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) {
        self.reposition_due = false;
        let reset = self.settings.offset_reset();
        let positions = consumer.position().ok();
        for (partition, flow) in &mut self.flows {
            let position = positions
                .as_ref()
                .and_then(|positions| positions.find_partition(&self.topic, *partition))
                .and_then(|element| match element.offset() {
                    Offset::Offset(offset) => Some(offset),
                    _ => None,
                });
            let (low, high) = match consumer.fetch_watermarks(
                &self.topic,
                *partition,
                LOOKUP_TIMEOUT,
            ) {
                Ok(watermarks) => watermarks,
                Err(error) => {
                    tracing::warn!(partition, %error, "out of range: the log's bounds are unknown; trying again");
                    self.reposition_due = true;
                    continue;
                }
            };
            let next = flow.next_offset();
            if position.is_some() && (low..=high).contains(&next) {
                continue;
            }
            match flow.reposition(low, high, reset) {
                Reposition::Lost { from, to } => {
                    let lost = to - from;
                    tracing::error!(
                        topic = %self.topic,
                        partition,
                        from,
                        to,
                        lost,
                        "records deleted by the broker before they were read (retention): \
                         lost, counted in streamvisor_records_lost_total, and skipped"
                    );
                    if let Some(metrics) = self.partition_metrics.get(partition) {
                        metrics.records_lost.increment(lost.unsigned_abs());
                    }
                }
                Reposition::PastEnd { from, to } => tracing::error!(
                    topic = %self.topic,
                    partition,
                    from,
                    to,
                    "the position is past the log's end (a log truncated or recreated): going on from its end"
                ),
                Reposition::InRange => {}
            }
            let mut list = TopicPartitionList::new();
            let at = Offset::Offset(flow.next_offset());
            let assigned = list
                .add_partition_offset(&self.topic, *partition, at)
                .and_then(|()| consumer.incremental_unassign(&list))
                .and_then(|()| consumer.incremental_assign(&list))
                .and_then(|()| {
                    // An assignment fetches: a partition its flow holds paused stays paused.
                    if flow.is_paused() {
                        consumer.pause(&list)
                    } else {
                        Ok(())
                    }
                });
            if let Err(error) = assigned {
                tracing::warn!(partition, %error, "could not assign the partition again at its position; trying again");
                self.reposition_due = true;
            }
        }
    }
}
