//! [`MapAsync`]: the bookkeeping of asynchronous calls with bounded parallelism, their results
//! handed on in the order the calls started (Akka Streams' `mapAsync`) or as they complete
//! (`mapAsyncUnordered`). Running the calls is the caller's business: it asks for a [`Ticket`]
//! before starting one, and hands the ticket back with the call's result.
//!
//! In order, a result that completes before an earlier call's is held until that one completes.
//! A held result keeps its call's slot (as in Akka, where the buffer holds a finished element
//! until it can be pushed): at most `parallelism` calls are in flight or held, so one slow call
//! cannot make finished results pile up behind it. Unordered, a result leaves at once and frees
//! its slot.
//!
//! A failed or cancelled call still completes its ticket: make the result type a `Result`.

use std::collections::VecDeque;

use super::error::OperatorError;

/// The right to run one call, handed back to [`MapAsync::complete`] with its result. Neither
/// `Clone` nor `Copy`: each call completes once.
#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "a started call must be completed, or its slot is never freed"]
pub(crate) struct Ticket {
    seq: u64,
}

impl Ticket {
    /// The call's number, counted from 0 in the order calls started.
    #[cfg(test)]
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }
}

/// Calls in flight, and in order the results held back, for results of type `T`.
#[derive(Debug, Clone)]
pub(crate) struct MapAsync<T> {
    parallelism: usize,
    ordered: bool,
    next_seq: u64,
    /// Ordered: one slot per call from the oldest not yet handed on, `None` while in flight.
    slots: VecDeque<Option<T>>,
    /// Ordered: the `seq` of the front slot.
    front_seq: u64,
    /// Unordered: calls in flight.
    unordered_in_flight: usize,
}

impl<T> MapAsync<T> {
    /// At most `parallelism` calls at once, results in the order the calls started when
    /// `ordered`, else as they complete. A zero `parallelism` is [`OperatorError::Zero`].
    pub(crate) fn new(parallelism: usize, ordered: bool) -> Result<Self, OperatorError> {
        if parallelism == 0 {
            return Err(OperatorError::Zero {
                operator: "map_async",
                setting: "parallelism",
            });
        }
        Ok(MapAsync {
            parallelism,
            ordered,
            next_seq: 0,
            slots: VecDeque::with_capacity(if ordered { parallelism } else { 0 }),
            front_seq: 0,
            unordered_in_flight: 0,
        })
    }

    /// A ticket to start a call, or `None` while every slot is taken (calls in flight, and in
    /// order, results held).
    pub(crate) fn try_start(&mut self) -> Option<Ticket> {
        if self.occupied() >= self.parallelism {
            return None;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.ordered {
            self.slots.push_back(None);
        } else {
            self.unordered_in_flight += 1;
        }
        Some(Ticket { seq })
    }

    /// Completes the call of `ticket` with `result`; returns the results now ready to go
    /// downstream, oldest first: unordered, just `result`; in order, the completed results up
    /// to the oldest call still in flight (none while that is the oldest).
    ///
    /// A ticket from another `MapAsync` is a caller's bug. In order it is caught: a panic in
    /// debug builds; in release builds its result is handed on at once, never lost.
    pub(crate) fn complete(&mut self, ticket: Ticket, result: T) -> Vec<T> {
        if !self.ordered {
            self.unordered_in_flight = self.unordered_in_flight.saturating_sub(1);
            return vec![result];
        }
        let slot = self.pending_slot(ticket.seq);
        debug_assert!(
            slot.is_some(),
            "map_async: ticket {} not in flight",
            ticket.seq
        );
        match slot {
            Some(slot) => *slot = Some(result),
            None => return vec![result],
        }
        self.ready()
    }

    /// Calls started and not yet completed.
    pub(crate) fn in_flight(&self) -> usize {
        if self.ordered {
            self.slots.iter().filter(|slot| slot.is_none()).count()
        } else {
            self.unordered_in_flight
        }
    }

    /// Results completed and held back for an earlier call (always 0 unordered).
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.slots.iter().filter(|slot| slot.is_some()).count()
    }

    /// Whether no call is in flight and no result held.
    #[cfg(test)]
    pub(crate) fn is_idle(&self) -> bool {
        self.occupied() == 0
    }

    /// Slots taken: calls in flight and results held.
    fn occupied(&self) -> usize {
        if self.ordered {
            self.slots.len()
        } else {
            self.unordered_in_flight
        }
    }

    /// The slot of call `seq`, if that call is in flight.
    fn pending_slot(&mut self, seq: u64) -> Option<&mut Option<T>> {
        let index = usize::try_from(seq.checked_sub(self.front_seq)?).ok()?;
        self.slots.get_mut(index).filter(|slot| slot.is_none())
    }

    /// Takes the completed results at the front, in order.
    fn ready(&mut self) -> Vec<T> {
        let mut ready = Vec::new();
        while let Some(result) = self.slots.front_mut().and_then(Option::take) {
            self.slots.pop_front();
            self.front_seq += 1;
            ready.push(result);
        }
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(calls: &mut MapAsync<&'static str>, n: usize) -> Vec<Ticket> {
        (0..n)
            .map(|_| calls.try_start().expect("a free slot"))
            .collect()
    }

    #[test]
    fn ordered_holds_early_results_until_the_earlier_ones() {
        let mut calls = MapAsync::new(3, true).expect("positive parallelism");
        let [a, b, c]: [Ticket; 3] = start(&mut calls, 3).try_into().expect("three tickets");
        assert_eq!((a.seq(), b.seq(), c.seq()), (0, 1, 2));
        assert_eq!(calls.complete(c, "c"), Vec::<&str>::new());
        assert_eq!(calls.complete(b, "b"), Vec::<&str>::new());
        assert_eq!((calls.in_flight(), calls.held()), (1, 2));
        assert_eq!(calls.complete(a, "a"), vec!["a", "b", "c"]);
        assert!(calls.is_idle());
    }

    #[test]
    fn ordered_releases_up_to_the_next_gap() {
        let mut calls = MapAsync::new(4, true).expect("positive parallelism");
        let [a, b, c, d]: [Ticket; 4] = start(&mut calls, 4).try_into().expect("four tickets");
        assert_eq!(calls.complete(b, "b"), Vec::<&str>::new());
        assert_eq!(calls.complete(d, "d"), Vec::<&str>::new());
        assert_eq!(calls.complete(a, "a"), vec!["a", "b"]);
        assert_eq!((calls.in_flight(), calls.held()), (1, 1));
        let e = calls.try_start().expect("two slots freed");
        assert_eq!(e.seq(), 4);
        assert_eq!(calls.complete(e, "e"), Vec::<&str>::new());
        assert_eq!(calls.complete(c, "c"), vec!["c", "d", "e"]);
    }

    #[test]
    fn unordered_hands_on_as_completed() {
        let mut calls = MapAsync::new(3, false).expect("positive parallelism");
        let [a, b, c]: [Ticket; 3] = start(&mut calls, 3).try_into().expect("three tickets");
        assert_eq!(calls.complete(c, "c"), vec!["c"]);
        assert_eq!(calls.complete(a, "a"), vec!["a"]);
        assert_eq!((calls.in_flight(), calls.held()), (1, 0));
        assert_eq!(calls.complete(b, "b"), vec!["b"]);
        assert!(calls.is_idle());
    }

    #[test]
    fn parallelism_bounds_calls_in_flight() {
        for ordered in [true, false] {
            let mut calls = MapAsync::new(2, ordered).expect("positive parallelism");
            let [a, b]: [Ticket; 2] = start(&mut calls, 2).try_into().expect("two tickets");
            assert_eq!(calls.try_start(), None);
            assert_eq!(calls.complete(a, "a"), vec!["a"]);
            let c = calls.try_start().expect("a slot freed");
            assert_eq!(calls.try_start(), None);
            assert_eq!(calls.in_flight(), 2);
            let mut out = calls.complete(c, "c");
            out.extend(calls.complete(b, "b"));
            let expected = if ordered { ["b", "c"] } else { ["c", "b"] };
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn ordered_held_results_keep_their_slots() {
        let mut calls = MapAsync::new(2, true).expect("positive parallelism");
        let [a, b]: [Ticket; 2] = start(&mut calls, 2).try_into().expect("two tickets");
        assert_eq!(calls.complete(b, "b"), Vec::<&str>::new());
        assert_eq!((calls.in_flight(), calls.held()), (1, 1));
        assert_eq!(calls.try_start(), None);
        assert_eq!(calls.complete(a, "a"), vec!["a", "b"]);
        assert_eq!(calls.try_start().map(|ticket| ticket.seq()), Some(2));
    }

    #[test]
    fn zero_parallelism_is_refused() {
        assert_eq!(
            MapAsync::<u8>::new(0, true).err(),
            Some(OperatorError::Zero {
                operator: "map_async",
                setting: "parallelism"
            })
        );
    }
}
