//! [`GroupedWithin`]: groups of at most `max` items, or of what arrived within `within` of the
//! group's first item, whichever comes first (Akka Streams' `groupedWithin(n, d)`).
//!
//! The group's time starts with its first item (an empty group has no deadline, so nothing
//! empty is ever emitted) and is up at that item's arrival plus `within` ([`GroupedWithin::due`]).
//! The caller sets a timer for that instant and calls [`GroupedWithin::flush_due`] when it fires;
//! an item pushed at or after the deadline, before the timer was served, starts the next group
//! and the late group is emitted. The clock is passed in (`now`), never read.

use std::time::{Duration, Instant};

use super::error::OperatorError;

/// The group being filled, and its limits.
#[derive(Debug, Clone)]
pub struct GroupedWithin<T> {
    max: usize,
    within: Duration,
    group: Vec<T>,
    /// When the group's first item arrived; `None` while the group is empty.
    started: Option<Instant>,
}

impl<T> GroupedWithin<T> {
    /// Groups of at most `max` items, each emitted at the latest `within` after its first item
    /// arrived. A zero `max` or `within` is [`OperatorError::Zero`].
    pub fn new(max: usize, within: Duration) -> Result<Self, OperatorError> {
        let zero = |setting| OperatorError::Zero {
            operator: "grouped_within",
            setting,
        };
        if max == 0 {
            return Err(zero("max"));
        }
        if within.is_zero() {
            return Err(zero("within"));
        }
        Ok(GroupedWithin {
            max,
            within,
            group: Vec::new(),
            started: None,
        })
    }

    /// Adds `item`, arrived at `now`. Returns a group to emit: this one when `item` filled it
    /// to `max`, or the previous one when its time was up at `now` (then `item` starts a new
    /// group; with `max` at least 2 it cannot fill it, so at most one group is returned).
    pub fn push(&mut self, item: T, now: Instant) -> Option<Vec<T>> {
        let late = self.flush_due(now);
        if self.group.is_empty() {
            self.started = Some(now);
        }
        self.group.push(item);
        if self.group.len() >= self.max {
            // Never both: after a late group, this one holds a single item, and a one-item
            // limit empties each group as it is pushed, so it is never late.
            return late.or_else(|| self.take());
        }
        late
    }

    /// When the current group's time is up: its first item's arrival plus `within`. `None`
    /// when the group is empty (or its deadline lies beyond what an [`Instant`] can hold).
    pub fn due(&self) -> Option<Instant> {
        self.started?.checked_add(self.within)
    }

    /// The current group, if its time is up at `now`.
    pub fn flush_due(&mut self, now: Instant) -> Option<Vec<T>> {
        match self.due() {
            Some(due) if now >= due => self.take(),
            _ => None,
        }
    }

    /// The current group, whatever its time (at the end of the stream, or on a drain).
    pub fn flush(&mut self) -> Option<Vec<T>> {
        self.take()
    }

    /// Items in the current group.
    pub fn len(&self) -> usize {
        self.group.len()
    }

    /// Whether the current group is empty.
    pub fn is_empty(&self) -> bool {
        self.group.is_empty()
    }

    /// The most items in a group.
    pub fn max(&self) -> usize {
        self.max
    }

    /// The longest a group waits after its first item.
    pub fn within(&self) -> Duration {
        self.within
    }

    fn take(&mut self) -> Option<Vec<T>> {
        self.started = None;
        if self.group.is_empty() {
            return None;
        }
        Some(std::mem::take(&mut self.group))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn three_within_100ms() -> GroupedWithin<u32> {
        GroupedWithin::new(3, 100 * MS).expect("positive settings")
    }

    #[test]
    fn a_full_group_is_emitted_at_once() {
        let base = Instant::now();
        let mut groups = three_within_100ms();
        assert_eq!(groups.push(1, base), None);
        assert_eq!(groups.push(2, base + MS), None);
        assert_eq!(groups.push(3, base + 2 * MS), Some(vec![1, 2, 3]));
        assert_eq!((groups.due(), groups.len()), (None, 0));
        assert_eq!(groups.push(4, base + 3 * MS), None);
        assert_eq!(groups.due(), Some(base + 103 * MS));
    }

    #[test]
    fn a_group_is_due_within_of_its_first_item() {
        let base = Instant::now();
        let mut groups = three_within_100ms();
        assert_eq!(groups.due(), None);
        assert_eq!(groups.flush_due(base + 1_000 * MS), None);
        assert_eq!(groups.push(1, base + 10 * MS), None);
        assert_eq!(groups.push(2, base + 50 * MS), None);
        assert_eq!(groups.due(), Some(base + 110 * MS));
        assert_eq!(groups.flush_due(base + 109 * MS), None);
        assert_eq!(groups.flush_due(base + 110 * MS), Some(vec![1, 2]));
        assert_eq!(
            (groups.due(), groups.flush_due(base + 500 * MS)),
            (None, None)
        );
    }

    #[test]
    fn an_item_after_the_deadline_starts_the_next_group() {
        let base = Instant::now();
        let mut groups = three_within_100ms();
        assert_eq!(groups.push(1, base), None);
        assert_eq!(groups.push(2, base + 99 * MS), None);
        assert_eq!(groups.push(3, base + 100 * MS), Some(vec![1, 2]));
        assert_eq!(groups.due(), Some(base + 200 * MS));
        assert_eq!(groups.flush(), Some(vec![3]));
        assert_eq!(groups.flush(), None);
    }

    #[test]
    fn groups_of_one() {
        let base = Instant::now();
        let mut groups = GroupedWithin::new(1, MS).expect("positive settings");
        assert_eq!(groups.push('a', base), Some(vec!['a']));
        assert_eq!(groups.push('b', base + 5 * MS), Some(vec!['b']));
        assert_eq!(groups.due(), None);
    }

    #[test]
    fn zero_settings_are_refused() {
        let zero = |setting| {
            Some(OperatorError::Zero {
                operator: "grouped_within",
                setting,
            })
        };
        assert_eq!(GroupedWithin::<u8>::new(0, MS).err(), zero("max"));
        assert_eq!(
            GroupedWithin::<u8>::new(1, Duration::ZERO).err(),
            zero("within")
        );
    }
}
