//! Offsets that no record stands for: transaction markers, and the records of aborted
//! transactions that a `read_committed` consumer skips. The consumer's position moves past them
//! without handing anything over, so a partition's flow would never see them acknowledged, and
//! its commits would stop one marker short of the log's end (a lag of one for ever). Once the
//! flow has taken every record before the consumer's position, its acknowledged prefix passes
//! over the rest, as over a range the broker deleted (but none of it is lost).

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::Offset;

use super::DriverState;

impl DriverState {
    /// Passes each partition's flow over the offsets before the consumer's position that no
    /// record stood for.
    pub(super) fn pass_markers<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let Ok(positions) = consumer.position() else {
            return;
        };
        for (partition, flow) in &mut self.flows {
            let position = positions
                .find_partition(&self.topic, *partition)
                .map(|element| element.offset());
            if let Some(Offset::Offset(position)) = position {
                flow.passed_to(position);
            }
        }
    }
}
