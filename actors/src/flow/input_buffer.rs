//! The downstream's side of demand: a bounded input buffer that grants its whole capacity at
//! start and grants again once half of it is free (Akka's request-at-half), so that the upstream
//! can never overfill it.

use thiserror::Error;

/// An upstream sent more than it was granted.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[error("upstream sent {arrived} records with only {requested} requested")]
pub(crate) struct DemandViolation {
    /// Records that arrived.
    pub arrived: u64,
    /// Records requested and not yet arrived.
    pub requested: u64,
}

/// A stage's bounded input buffer, in records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InputBuffer {
    capacity: u64,
    buffered: u64,
    requested: u64,
}

impl InputBuffer {
    /// A buffer of `capacity` records (at least 1) and the demand to grant at start (all of it).
    pub(crate) fn new(capacity: u64) -> (Self, u64) {
        let capacity = capacity.max(1);
        let buffer = InputBuffer {
            capacity,
            buffered: 0,
            requested: capacity,
        };
        (buffer, capacity)
    }

    /// Records `records` arriving; an upstream that exceeds its demand is refused.
    pub(crate) fn arrived(&mut self, records: u64) -> Result<(), DemandViolation> {
        if records > self.requested {
            return Err(DemandViolation {
                arrived: records,
                requested: self.requested,
            });
        }
        self.requested -= records;
        self.buffered += records;
        Ok(())
    }

    /// Records `records` leaving the buffer (handed on or done); returns the demand to grant
    /// upstream now, if at least half of the buffer is neither buffered nor requested.
    pub(crate) fn drained(&mut self, records: u64) -> Option<u64> {
        self.buffered = self.buffered.saturating_sub(records);
        let free = self.capacity - self.buffered - self.requested;
        if free > 0 && free * 2 >= self.capacity {
            self.requested += free;
            Some(free)
        } else {
            None
        }
    }

    /// Records in the buffer.
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> u64 {
        self.buffered
    }

    /// Records requested and not yet arrived.
    #[cfg(test)]
    pub(crate) fn requested(&self) -> u64 {
        self.requested
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::flow::Demand;

    #[test]
    fn requests_again_at_half() {
        let (mut buffer, initial) = InputBuffer::new(8);
        assert_eq!(initial, 8);
        buffer.arrived(8).expect("within demand");
        assert_eq!(
            buffer.arrived(1),
            Err(DemandViolation {
                arrived: 1,
                requested: 0
            })
        );
        assert_eq!(buffer.drained(3), None);
        assert_eq!(buffer.drained(1), Some(4));
        assert_eq!((buffer.buffered(), buffer.requested()), (4, 4));
    }

    proptest! {
        /// An upstream that sends whatever its demand allows, in random batch sizes, and a
        /// downstream that drains at random: the buffer never overflows, no violation happens,
        /// and an empty buffer always has at least half its capacity requested (no stall).
        #[test]
        fn demand_never_overfills_and_never_stalls(
            capacity in 1u64..2_000,
            steps in prop::collection::vec((any::<bool>(), 1u64..600), 1..300),
        ) {
            let (mut buffer, initial) = InputBuffer::new(capacity);
            let mut demand = Demand::default();
            demand.grant(initial);
            for (send, size) in steps {
                if send {
                    let batch = size.min(demand.outstanding());
                    if batch > 0 && demand.try_take(batch) {
                        prop_assert!(buffer.arrived(batch).is_ok());
                    }
                } else {
                    let take = size.min(buffer.buffered());
                    if let Some(grant) = buffer.drained(take) {
                        demand.grant(grant);
                    }
                }
                prop_assert!(buffer.buffered() <= capacity);
                prop_assert_eq!(demand.outstanding(), buffer.requested());
                prop_assert!(buffer.buffered() + buffer.requested() <= capacity);
            }
            let rest = buffer.buffered();
            if let Some(grant) = buffer.drained(rest) {
                demand.grant(grant);
            }
            prop_assert_eq!(demand.outstanding(), buffer.requested());
            prop_assert!(demand.outstanding() * 2 >= capacity, "an empty buffer has demand out");
        }
    }
}
