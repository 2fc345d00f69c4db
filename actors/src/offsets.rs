//! Offset tracking for one partition: which dispatched records are still unacknowledged, and the
//! offset that may be committed (the end of the contiguous acknowledged prefix, never ahead of an
//! ack). Acks may come in any order; acks from an older incarnation of the partition (before a
//! rewind) are ignored.

use std::collections::VecDeque;

/// What became of an ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckOutcome {
    /// Counted.
    Accepted,
    /// From an older incarnation (before a rewind): ignored.
    Stale,
    /// For an offset that is not in flight (already acked, or never dispatched): ignored.
    Unknown,
}

/// The offset tracker of one partition.
#[derive(Debug, Clone)]
pub(crate) struct OffsetTracker {
    incarnation: u64,
    /// The next offset to read after everything acknowledged so far (Kafka's committed offset).
    position: i64,
    /// The last position handed out by [`OffsetTracker::take_commit`].
    committed: i64,
    /// Dispatched records not yet released into `position`, in offset order, with the acks
    /// each still waits for (0: acknowledged).
    in_flight: VecDeque<(i64, u32)>,
    unacked: usize,
    /// Acks a record needs: one per path from the source to a sink (a record that fans out is
    /// acknowledged when all its children are).
    required_acks: u32,
}

impl OffsetTracker {
    /// A tracker that starts reading at `committed` (the group's committed offset, or the
    /// partition's start for a new group).
    #[cfg(test)]
    pub(crate) fn new(committed: i64) -> Self {
        Self::with_incarnation(committed, 1)
    }

    /// A tracker whose first incarnation is `incarnation` (a partition assigned again continues
    /// counting, so that actors of its earlier assignment cannot pass for current ones).
    pub(crate) fn with_incarnation(committed: i64, incarnation: u64) -> Self {
        OffsetTracker {
            incarnation: incarnation.max(1),
            position: committed,
            committed,
            in_flight: VecDeque::new(),
            unacked: 0,
            required_acks: 1,
        }
    }

    /// Records dispatched from now on need `acks` acknowledgements (at least 1): one per path
    /// from the source to a sink.
    pub(crate) fn set_required_acks(&mut self, acks: u32) {
        self.required_acks = acks.max(1);
    }

    /// The current incarnation: records dispatched now carry it.
    pub(crate) fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Records dispatched and not yet acknowledged.
    pub(crate) fn unacked(&self) -> usize {
        self.unacked
    }

    /// The committable position: the offset after the contiguous acknowledged prefix.
    pub(crate) fn position(&self) -> i64 {
        self.position
    }

    /// The last position handed out for commit.
    #[cfg(test)]
    pub(crate) fn committed(&self) -> i64 {
        self.committed
    }

    /// The next offset expected from the broker (after everything dispatched).
    pub(crate) fn next_offset(&self) -> i64 {
        self.in_flight
            .back()
            .map_or(self.position, |(offset, _)| offset + 1)
    }

    /// Records that `offset` was dispatched. Offsets must increase (gaps are fine: compaction and
    /// transaction markers leave them); an offset at or below the last one is refused.
    pub(crate) fn dispatched(&mut self, offset: i64) -> bool {
        if offset < self.next_offset() {
            return false;
        }
        self.in_flight.push_back((offset, self.required_acks));
        self.unacked += 1;
        true
    }

    /// Acknowledges `offset`, dispatched in `incarnation`, for one path to a sink.
    #[cfg(test)]
    pub(crate) fn ack(&mut self, incarnation: u64, offset: i64) -> AckOutcome {
        self.ack_paths(incarnation, offset, 1)
    }

    /// Acknowledges `offset`, dispatched in `incarnation`, for `paths` paths to a sink at once
    /// (a record dropped, or sent to the dead letters, before the graph fans out).
    pub(crate) fn ack_paths(&mut self, incarnation: u64, offset: i64, paths: u32) -> AckOutcome {
        if incarnation != self.incarnation {
            return AckOutcome::Stale;
        }
        let Some(index) = self.find(offset) else {
            return AckOutcome::Unknown;
        };
        let entry = &mut self.in_flight[index];
        if entry.1 == 0 {
            return AckOutcome::Unknown;
        }
        entry.1 = entry.1.saturating_sub(paths.max(1));
        if entry.1 > 0 {
            return AckOutcome::Accepted;
        }
        self.unacked -= 1;
        while let Some((offset, 0)) = self.in_flight.front().copied() {
            self.in_flight.pop_front();
            self.position = offset + 1;
        }
        AckOutcome::Accepted
    }

    /// `offset`, dispatched in `incarnation`, needs `more` acks than it did: a flat_map made
    /// several records of it, each acknowledged on every path after the flat_map. Told before
    /// any of those records can be acknowledged (the flat_map says so before it sends them on).
    pub(crate) fn expect_more(&mut self, incarnation: u64, offset: i64, more: u32) -> AckOutcome {
        if incarnation != self.incarnation {
            return AckOutcome::Stale;
        }
        match self.find(offset) {
            Some(index) if self.in_flight[index].1 > 0 => {
                let entry = &mut self.in_flight[index];
                entry.1 = entry.1.saturating_add(more);
                AckOutcome::Accepted
            }
            _ => AckOutcome::Unknown,
        }
    }

    /// Where `offset` is in flight. Offsets in flight are sorted and mostly contiguous (a gap
    /// is a record the source skipped), so its distance from the first is tried before a search.
    #[inline]
    fn find(&self, offset: i64) -> Option<usize> {
        let (first, _) = *self.in_flight.front()?;
        let guess = usize::try_from(offset.checked_sub(first)?).ok()?;
        if self
            .in_flight
            .get(guess)
            .is_some_and(|(at, _)| *at == offset)
        {
            return Some(guess);
        }
        self.in_flight
            .binary_search_by_key(&offset, |(at, _)| *at)
            .ok()
    }

    /// Where the acknowledged prefix of `incarnation` would end if `acks` (offsets, one path
    /// each, in any order, repeats counting twice) were acknowledged too: the offset an
    /// exactly-once transaction holding them may commit up to. `None` for another incarnation.
    pub(crate) fn position_if_acked(&self, incarnation: u64, acks: &mut [i64]) -> Option<i64> {
        if incarnation != self.incarnation {
            return None;
        }
        acks.sort_unstable();
        let mut acks = acks.iter().copied().peekable();
        let mut position = self.position;
        for (offset, waiting) in &self.in_flight {
            while acks.next_if(|ack| ack < offset).is_some() {}
            let mut more = 0;
            while acks.next_if_eq(offset).is_some() {
                more += 1;
            }
            if more < *waiting {
                break;
            }
            position = offset + 1;
        }
        Some(position)
    }

    /// The records before `offset` that were never dispatched are gone (the broker deleted
    /// them before they were read): the acknowledged prefix passes over them once everything
    /// dispatched before is acknowledged. Nothing is dispatched below `offset` after this.
    pub(crate) fn skip_to(&mut self, offset: i64) {
        if offset <= self.next_offset() {
            return;
        }
        if self.in_flight.is_empty() {
            self.position = offset;
        } else {
            // A marker needing no ack: the prefix moves through it after those before it.
            self.in_flight.push_back((offset - 1, 0));
        }
    }

    /// The position to commit, when it moved since the last commit.
    pub(crate) fn take_commit(&mut self) -> Option<i64> {
        if self.position > self.committed {
            self.committed = self.position;
            Some(self.position)
        } else {
            None
        }
    }

    /// Records acknowledged past the last commit (for commit-by-count).
    pub(crate) fn uncommitted(&self) -> i64 {
        self.position - self.committed
    }

    /// The rewind rule: forgets everything in flight, bumps the incarnation (so that late acks
    /// are ignored) and returns the offset to seek to (the end of the acknowledged prefix).
    pub(crate) fn rewind(&mut self) -> i64 {
        self.incarnation += 1;
        self.in_flight.clear();
        self.unacked = 0;
        self.position
    }

    /// Like [`OffsetTracker::rewind`], but never back before `at_least` (what an exactly-once
    /// sink's transactions committed: those records are written, whatever was acknowledged).
    pub(crate) fn rewind_past(&mut self, at_least: i64) -> i64 {
        self.rewind();
        self.position = self.position.max(at_least);
        self.position
    }
}

#[cfg(test)]
mod tests;
