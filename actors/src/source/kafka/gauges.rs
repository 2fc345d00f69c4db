//! The polling thread's gauges: demand, oldest unacknowledged age, backpressure time and
//! consumer lag per partition.

use std::time::Duration;

use super::DriverState;

impl DriverState {
    /// Demand, oldest unacked age and pause time, for the metrics.
    pub(super) fn update_gauges(&mut self, elapsed: Duration) {
        let mut paused = 0.0;
        for (partition, flow) in &self.flows {
            if let Some(gauges) = self.partition_metrics.get(partition) {
                gauges.demand.set(flow.demand() as f64);
                gauges
                    .oldest_unacked_age
                    .set(flow.oldest_unacked_age().as_secs_f64());
            }
            if flow.is_paused() {
                paused += elapsed.as_secs_f64();
            }
        }
        let budget = &self.settings.memory_budget;
        self.metrics.memory.inflight.set(budget.used() as f64);
        self.metrics.memory.peak.set(budget.peak() as f64);
        // An unlimited budget shows as none (absent rather than 1.8e19).
        if budget.limit() != usize::MAX {
            self.metrics.memory.budget.set(budget.limit() as f64);
        }
        // The counter counts whole seconds; the fractions wait for the next update.
        self.paused_seconds += paused;
        let whole = self.paused_seconds.floor();
        if whole >= 1.0 {
            self.metrics.backpressure_seconds.increment(whole as u64);
            self.paused_seconds -= whole;
        }
    }

    /// The consumer lag of each partition from librdkafka's statistics: the high watermark minus
    /// the committed (acknowledged) position.
    pub(super) fn update_lag(&self, statistics: &rdkafka::Statistics) {
        let Some(topic) = statistics.topics.get(&*self.topic) else {
            return;
        };
        for (partition, flow) in &self.flows {
            if let (Some(stats), Some(gauges)) = (
                topic.partitions.get(partition),
                self.partition_metrics.get(partition),
            ) {
                if stats.hi_offset >= 0 {
                    gauges
                        .lag
                        .set((stats.hi_offset - flow.position()).max(0) as f64);
                }
            }
        }
    }
}
