//! [`HeldBack`]: the partitions a Kafka source holds back: paused because their actors granted
//! no demand or they reached their cap of unacknowledged records, or paused to seek after a
//! rewind. Records may wait in Kafka for such a partition; none can arrive downstream. A window
//! reads it to tell backpressure from idleness: its idle timeout counts only time during which
//! records could have come.

use std::sync::Arc;

use dashmap::DashSet;

/// The partitions held back, shared between the polling thread (which writes it when it pauses
/// or resumes one) and the actors (which read it).
#[derive(Clone, Debug, Default)]
pub(crate) struct HeldBack {
    partitions: Arc<DashSet<i32>>,
}

impl HeldBack {
    /// True while the source holds `partition` back.
    pub(crate) fn contains(&self, partition: i32) -> bool {
        self.partitions.contains(&partition)
    }

    /// `partition` is held back (`true`) or flows again (`false`).
    pub(crate) fn set(&self, partition: i32, held: bool) {
        if held {
            self.partitions.insert(partition);
        } else {
            self.partitions.remove(&partition);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_held_back_from_its_pause_to_its_resume_and_clones_see_it() {
        let held = HeldBack::default();
        let seen_by_an_actor = held.clone();
        assert!(!seen_by_an_actor.contains(3));
        held.set(3, true);
        held.set(3, true);
        assert!(seen_by_an_actor.contains(3));
        assert!(!seen_by_an_actor.contains(4));
        held.set(3, false);
        assert!(!seen_by_an_actor.contains(3));
    }
}
