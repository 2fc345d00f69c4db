//! A bounded buffer and its [`OverflowStrategy`]: what happens to an item offered to a full
//! buffer (Akka Streams' `buffer(size, overflowStrategy)` meanings).
//!
//! The buffer never drops an item silently: whatever does not stay in it (the incoming item, or
//! an older one pushed out) is handed back in [`Offered`], because the caller must still
//! acknowledge it (a record dropped on purpose is acknowledged, so that its partition's commits
//! move on) or hold it (a refused item waits for room).

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

use super::error::OperatorError;

/// What a full buffer does with an offered item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum OverflowStrategy {
    /// The incoming item is refused and given back ([`Offered::Refused`]): the caller waits
    /// for room and offers it again, passing the backpressure upstream. The default.
    #[default]
    Backpressure,
    /// The oldest buffered item (the head, next to leave) is dropped to make room; the
    /// incoming item is buffered.
    DropHead,
    /// The youngest buffered item (the tail, last buffered) is dropped to make room; the
    /// incoming item is buffered.
    DropTail,
    /// The incoming item is dropped; the buffer is unchanged.
    DropNew,
    /// The buffer fails ([`Offered::Failed`] with [`OperatorError::Overflow`]): the stage is
    /// meant to fail, and its unacknowledged records are replayed after the restart.
    Fail,
}

impl OverflowStrategy {
    /// Every strategy, in the order of its documentation.
    pub const ALL: [OverflowStrategy; 5] = [
        OverflowStrategy::Backpressure,
        OverflowStrategy::DropHead,
        OverflowStrategy::DropTail,
        OverflowStrategy::DropNew,
        OverflowStrategy::Fail,
    ];

    /// The strategy's name in configuration (`backpressure`, `drop_head`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            OverflowStrategy::Backpressure => "backpressure",
            OverflowStrategy::DropHead => "drop_head",
            OverflowStrategy::DropTail => "drop_tail",
            OverflowStrategy::DropNew => "drop_new",
            OverflowStrategy::Fail => "fail",
        }
    }
}

impl fmt::Display for OverflowStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OverflowStrategy {
    type Err = OperatorError;

    /// Parses a configuration name; an unknown one gives [`OperatorError::Invalid`] naming it
    /// and the valid names.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|strategy| strategy.as_str() == name)
            .ok_or_else(|| OperatorError::Invalid {
                operator: "buffer",
                why: format!(
                    "unknown overflow strategy {name:?}, expected one of \
                     backpressure, drop_head, drop_tail, drop_new, fail"
                ),
            })
    }
}

/// What became of an offered item, with any item that did not stay in the buffer.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "an item that did not stay in the buffer must be acknowledged, held or failed"]
pub(crate) enum Offered<T> {
    /// The item was buffered, and nothing left the buffer.
    Accepted,
    /// The buffer was full and this item was dropped: the incoming item ([`OverflowStrategy::DropNew`])
    /// or an older buffered one ([`OverflowStrategy::DropHead`], [`OverflowStrategy::DropTail`],
    /// in which case the incoming item was buffered).
    Dropped(T),
    /// The buffer was full and the incoming item was refused ([`OverflowStrategy::Backpressure`]);
    /// the buffer is unchanged.
    Refused(T),
    /// The buffer was full and its strategy is [`OverflowStrategy::Fail`]: the incoming item is
    /// given back with the failure; the buffer is unchanged.
    Failed(T, OperatorError),
}

impl<T> Offered<T> {
    /// The item that did not stay in the buffer, if any.
    #[cfg(test)]
    pub(crate) fn into_given_back(self) -> Option<T> {
        match self {
            Offered::Accepted => None,
            Offered::Dropped(item) | Offered::Refused(item) | Offered::Failed(item, _) => {
                Some(item)
            }
        }
    }
}

/// A first-in first-out buffer of at most `capacity` items and what it does when full.
#[derive(Debug, Clone)]
pub(crate) struct BoundedBuffer<T> {
    items: VecDeque<T>,
    capacity: usize,
    strategy: OverflowStrategy,
}

impl<T> BoundedBuffer<T> {
    /// An empty buffer of `capacity` items; a zero capacity is [`OperatorError::Zero`].
    pub(crate) fn new(capacity: usize, strategy: OverflowStrategy) -> Result<Self, OperatorError> {
        if capacity == 0 {
            return Err(OperatorError::Zero {
                operator: "buffer",
                setting: "capacity",
            });
        }
        Ok(BoundedBuffer {
            // Room grows as items come: a large capacity costs nothing until it is used.
            items: VecDeque::with_capacity(capacity.min(64)),
            capacity,
            strategy,
        })
    }

    /// Offers `item`: buffered when there is room, else handled by the overflow strategy.
    pub(crate) fn offer(&mut self, item: T) -> Offered<T> {
        if self.items.len() < self.capacity {
            self.items.push_back(item);
            return Offered::Accepted;
        }
        self.overflow(item)
    }

    fn overflow(&mut self, item: T) -> Offered<T> {
        let dropped = match self.strategy {
            OverflowStrategy::Backpressure => return Offered::Refused(item),
            OverflowStrategy::DropNew => return Offered::Dropped(item),
            OverflowStrategy::Fail => {
                let capacity = self.capacity;
                return Offered::Failed(item, OperatorError::Overflow { capacity });
            }
            OverflowStrategy::DropHead => self.items.pop_front(),
            OverflowStrategy::DropTail => self.items.pop_back(),
        };
        self.items.push_back(item);
        // A full buffer of positive capacity always had a head and a tail to drop.
        dropped.map_or(Offered::Accepted, Offered::Dropped)
    }

    /// Takes the oldest item out.
    pub(crate) fn pop(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    /// Keeps only the items `keep` approves, in order.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.items.retain(keep);
    }

    /// The oldest item, left in place.
    #[cfg(test)]
    pub(crate) fn peek(&self) -> Option<&T> {
        self.items.front()
    }

    /// Items buffered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no item is buffered.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether the next offer overflows.
    #[cfg(test)]
    pub(crate) fn is_full(&self) -> bool {
        self.items.len() == self.capacity
    }

    /// The most items it holds.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A buffer of capacity 3 holding 1, 2, 3, then 4 offered: the outcome and what is kept.
    fn overflow_with(strategy: OverflowStrategy) -> (Offered<u32>, Vec<u32>) {
        let mut buffer = BoundedBuffer::new(3, strategy).expect("positive capacity");
        for item in 1..=3 {
            assert_eq!(buffer.offer(item), Offered::Accepted);
        }
        assert!(buffer.is_full());
        let offered = buffer.offer(4);
        let kept = std::iter::from_fn(|| buffer.pop()).collect();
        (offered, kept)
    }

    #[test]
    fn backpressure_refuses_the_incoming_item() {
        assert_eq!(
            overflow_with(OverflowStrategy::Backpressure),
            (Offered::Refused(4), vec![1, 2, 3])
        );
    }

    #[test]
    fn drop_head_drops_the_oldest() {
        assert_eq!(
            overflow_with(OverflowStrategy::DropHead),
            (Offered::Dropped(1), vec![2, 3, 4])
        );
    }

    #[test]
    fn drop_tail_drops_the_youngest_buffered() {
        assert_eq!(
            overflow_with(OverflowStrategy::DropTail),
            (Offered::Dropped(3), vec![1, 2, 4])
        );
    }

    #[test]
    fn drop_new_drops_the_incoming_item() {
        assert_eq!(
            overflow_with(OverflowStrategy::DropNew),
            (Offered::Dropped(4), vec![1, 2, 3])
        );
    }

    #[test]
    fn fail_gives_the_item_back_with_the_overflow() {
        assert_eq!(
            overflow_with(OverflowStrategy::Fail),
            (
                Offered::Failed(4, OperatorError::Overflow { capacity: 3 }),
                vec![1, 2, 3]
            )
        );
    }

    #[test]
    fn drop_head_twice_keeps_the_newest() {
        let mut buffer = BoundedBuffer::new(2, OverflowStrategy::DropHead).expect("capacity");
        let outcomes: Vec<_> = (1..=5).map(|item| buffer.offer(item)).collect();
        assert_eq!(
            outcomes,
            vec![
                Offered::Accepted,
                Offered::Accepted,
                Offered::Dropped(1),
                Offered::Dropped(2),
                Offered::Dropped(3)
            ]
        );
        assert_eq!(
            (buffer.pop(), buffer.pop(), buffer.pop()),
            (Some(4), Some(5), None)
        );
    }

    #[test]
    fn room_made_by_pop_accepts_again() {
        let mut buffer = BoundedBuffer::new(1, OverflowStrategy::Backpressure).expect("capacity");
        assert_eq!(buffer.offer('a'), Offered::Accepted);
        assert_eq!(buffer.offer('b'), Offered::Refused('b'));
        assert_eq!(buffer.peek(), Some(&'a'));
        assert_eq!(buffer.pop(), Some('a'));
        assert!(buffer.is_empty());
        assert_eq!(buffer.offer('b'), Offered::Accepted);
        assert_eq!((buffer.len(), buffer.capacity()), (1, 1));
    }

    #[test]
    fn zero_capacity_is_refused() {
        assert_eq!(
            BoundedBuffer::<u8>::new(0, OverflowStrategy::DropNew).err(),
            Some(OperatorError::Zero {
                operator: "buffer",
                setting: "capacity"
            })
        );
    }

    #[test]
    fn strategies_parse_from_their_names() {
        for strategy in OverflowStrategy::ALL {
            assert_eq!(strategy.as_str().parse(), Ok(strategy));
            assert_eq!(strategy.to_string(), strategy.as_str());
        }
        assert_eq!(OverflowStrategy::default(), OverflowStrategy::Backpressure);
        let error = "drop_oldest"
            .parse::<OverflowStrategy>()
            .expect_err("unknown");
        assert_eq!(
            error.to_string(),
            "buffer: unknown overflow strategy \"drop_oldest\", expected one of \
             backpressure, drop_head, drop_tail, drop_new, fail"
        );
    }

    #[test]
    fn given_back_item() {
        assert_eq!(Offered::<u8>::Accepted.into_given_back(), None);
        assert_eq!(Offered::Dropped(1).into_given_back(), Some(1));
        assert_eq!(Offered::Refused(2).into_given_back(), Some(2));
        let failed = Offered::Failed(3, OperatorError::Overflow { capacity: 1 });
        assert_eq!(failed.into_given_back(), Some(3));
    }

    fn any_strategy() -> impl Strategy<Value = OverflowStrategy> {
        prop::sample::select(OverflowStrategy::ALL.to_vec())
    }

    proptest! {
        /// Offers of distinct increasing items mixed with pops: every offered item is either
        /// popped, still buffered or given back, exactly once; the buffer never passes its
        /// capacity; and what it keeps leaves in the order it was offered.
        #[test]
        fn nothing_lost_nothing_doubled(
            capacity in 1usize..8,
            strategy in any_strategy(),
            steps in prop::collection::vec(any::<bool>(), 0..200),
        ) {
            let mut buffer = BoundedBuffer::new(capacity, strategy).expect("positive capacity");
            let (mut offered, mut popped, mut given_back) = (Vec::new(), Vec::new(), Vec::new());
            for (next, offer) in (0u32..).zip(steps) {
                if offer {
                    offered.push(next);
                    given_back.extend(buffer.offer(next).into_given_back());
                } else {
                    popped.extend(buffer.pop());
                }
                prop_assert!(buffer.len() <= capacity);
            }
            popped.extend(std::iter::from_fn(|| buffer.pop()));
            prop_assert!(popped.windows(2).all(|pair| pair[0] < pair[1]));
            let mut accounted: Vec<u32> = popped.into_iter().chain(given_back).collect();
            accounted.sort_unstable();
            prop_assert_eq!(accounted, offered);
        }
    }
}
