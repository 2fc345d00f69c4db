//! The source's state for one assigned partition, owned by the polling thread: records polled
//! from Kafka gather in a bounded read-ahead (pending records, at most a batch or what the cap of
//! unacknowledged records leaves room for); batches leave only within the demand granted
//! downstream and under the cap. When the read-ahead is full and there is no demand, or the cap
//! is reached, the partition is paused, and resumed (from exactly the next offset) when there is
//! room. (Pausing at the first moment of zero demand instead would make every gap in demand
//! cost a seek and a fetch round trip: with small batches, a hundredfold slowdown.) Bytes count
//! too: a batch leaves only while the partition's bytes in flight are under its cap and the
//! runtime's under its budget, and takes a lease on its own (see [`crate::flow::memory`]); a
//! batch closes at a small share of them. Acks feed the offset tracker; a rewind (the partition's subtree failed) bumps the incarnation and seeks
//! back to the committed offset.
//!
//! The flow never touches Kafka: it answers with [`FlowAction`]s that the polling thread carries
//! out (pause, resume with a seek), so that its rules are tested without a broker.

use std::sync::Arc;

use crate::flow::memory::PartitionMemory;
use crate::flow::Demand;
use crate::offsets::{AckOutcome, OffsetTracker};
use crate::record::{Batch, MAX_BATCH_BYTES};

/// How long after a resume a partition still counts as held back while its refetch brings no
/// record on (see [`PartitionFlow::is_held_back`]).
pub(crate) const RESUME_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a partition whose resume failed stays paused before the next attempt.
pub(crate) const RESUME_RETRY_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

/// What the polling thread must do for this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlowAction {
    /// Stop fetching (the read-ahead is full with no demand, the unacked cap is reached, or a
    /// record had to be dropped).
    Pause,
    /// Seek to this offset, then fetch again.
    Resume {
        /// The next offset to read.
        from: i64,
    },
}

/// What became of a polled record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Polled {
    /// Added to the pending batch.
    Accepted,
    /// Dropped: fetched before a pause or a seek; it will be fetched again.
    Dropped,
}

/// One assigned partition, as its polling thread sees it.
#[derive(Debug)]
pub(crate) struct PartitionFlow {
    topic: Arc<str>,
    partition: i32,
    tracker: OffsetTracker,
    demand: Demand,
    batch_size: usize,
    max_unacked: usize,
    pending: Batch,
    /// The next offset expected from the broker (after `pending`).
    expected: i64,
    /// The consumer is paused for this partition (as last told by [`FlowAction`]).
    paused: bool,
    /// A new record had to be dropped: fetch again from `expected` before going on.
    must_seek: bool,
    /// Its bytes in flight, against its cap and the runtime's budget.
    memory: PartitionMemory,
    /// The pending batch's bytes, at most (a share of the memory limits, below
    /// [`MAX_BATCH_BYTES`]).
    max_batch_bytes: usize,
    /// A record did not fit the pending batch's bytes: it leaves as it is, not yet whole.
    bytes_full: bool,
    /// A skip over records the broker deleted, waiting for the read-ahead to be dispatched.
    skip_after_pending: Option<i64>,
    /// Everything below it was counted lost already.
    lost_through: i64,
    /// After a failed resume (its seek failed), no new attempt before this.
    resume_not_before: Option<std::time::Instant>,
    /// Since when the oldest unacknowledged record has waited (the head of the in-flight
    /// records: set when records go out with none in flight, and when the acked prefix moves).
    head_since: Option<std::time::Instant>,
    /// Records of the current incarnation that window stages hold in open windows (they wait
    /// for their windows to close, not for a sink: a drain does not wait for them).
    held_in_windows: usize,
    /// Whether it was held back when the polling thread last published it.
    published_held_back: bool,
    /// When it last resumed, until records flow again.
    resumed_at: Option<std::time::Instant>,
}

impl PartitionFlow {
    /// A partition starting at `committed`, dispatching batches of `batch_size`, with at most
    /// `max_unacked` records unacknowledged.
    #[cfg(test)]
    pub(crate) fn new(
        topic: Arc<str>,
        partition: i32,
        committed: i64,
        batch_size: usize,
        max_unacked: usize,
    ) -> Self {
        Self::with_incarnation(topic, partition, committed, batch_size, max_unacked, 1)
    }

    /// Like [`PartitionFlow::new`], starting at `incarnation` (a partition assigned again).
    pub(crate) fn with_incarnation(
        topic: Arc<str>,
        partition: i32,
        committed: i64,
        batch_size: usize,
        max_unacked: usize,
        incarnation: u64,
    ) -> Self {
        let batch_size = batch_size.max(1);
        PartitionFlow {
            pending: Batch::new(
                Arc::clone(&topic),
                partition,
                incarnation.max(1),
                batch_size,
            ),
            topic,
            partition,
            tracker: OffsetTracker::with_incarnation(committed, incarnation),
            demand: Demand::default(),
            batch_size,
            max_unacked: max_unacked.max(batch_size),
            expected: committed,
            paused: false,
            must_seek: false,
            memory: PartitionMemory::unlimited(),
            max_batch_bytes: MAX_BATCH_BYTES,
            bytes_full: false,
            skip_after_pending: None,
            lost_through: i64::MIN,
            head_since: None,
            resume_not_before: None,
            held_in_windows: 0,
            published_held_back: false,
            resumed_at: None,
        }
    }

    /// Counts its bytes in flight in `memory` (none are counted otherwise), and closes batches
    /// at a small share of its limits.
    pub(crate) fn with_memory(mut self, memory: PartitionMemory) -> Self {
        self.max_batch_bytes = memory.batch_bytes(MAX_BATCH_BYTES);
        self.memory = memory;
        self
    }

    /// Records dispatched from now on need `acks` acknowledgements: one per path from the
    /// source to a sink.
    pub(crate) fn set_required_acks(&mut self, acks: u32) {
        self.tracker.set_required_acks(acks);
    }

    /// Window stages of `incarnation` hold `records` of this partition in open windows.
    pub(crate) fn held_in_windows(&mut self, incarnation: u64, records: usize) {
        if incarnation == self.tracker.incarnation() {
            self.held_in_windows = records;
        }
    }

    /// Records dispatched and not acknowledged that a drain waits for: all but those held in
    /// open windows (replayed from the committed offset by the partition's next reader).
    pub(crate) fn draining(&self) -> usize {
        self.unacked().saturating_sub(self.held_in_windows)
    }

    /// A record polled from the broker. A record that cannot be taken (fetched before a pause
    /// took effect, or with the read-ahead full) is dropped and fetched again: the partition
    /// pauses and resumes from the first offset not taken, so no offset is ever skipped.
    pub(crate) fn polled(
        &mut self,
        offset: i64,
        timestamp_ms: Option<i64>,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Polled {
        if offset < self.expected {
            return Polled::Dropped; // fetched before a seek: already taken, or fetched again later
        }
        if self.paused || self.must_seek || self.read_ahead_full() {
            self.must_seek = true;
            return Polled::Dropped;
        }
        let bytes = key.map_or(0, <[u8]>::len) + value.len();
        if !self.pending.is_empty() && self.pending.data_len() + bytes > self.max_batch_bytes {
            // The batch is closed: it leaves as it is, and this record starts the next one.
            self.bytes_full = true;
            self.must_seek = true;
            return Polled::Dropped;
        }
        self.pending.push(offset, timestamp_ms, key, value);
        self.expected = offset + 1;
        Polled::Accepted
    }

    /// Caps the pending batch's bytes lower than [`MAX_BATCH_BYTES`] (tests of the cap).
    #[cfg(test)]
    pub(crate) fn cap_batch_bytes(&mut self, bytes: usize) {
        self.max_batch_bytes = bytes;
    }

    /// The broker could not serve the partition's position (librdkafka resets nothing: the
    /// runtime decides). Given the partition's log now spans `low..high`: a position below
    /// `low` was deleted before it was read, and the flow goes on from `low` (what it skipped
    /// is [`Reposition::Lost`]); a position past `high` (a log truncated or recreated) goes on
    /// from `high`. The source then fetches from [`PartitionFlow::next_offset`].
    pub(crate) fn reposition(&mut self, low: i64, high: i64, reset: OffsetReset) -> Reposition {
        let from = self.expected;
        if from < low {
            let to = match reset {
                OffsetReset::Earliest => low,
                OffsetReset::Latest => high.max(low),
            };
            self.skip_to(to);
            self.expected = to;
            // A range already counted (a rewind went back below it) is not lost twice.
            let first_lost = from.max(self.lost_through);
            self.lost_through = self.lost_through.max(to);
            if first_lost >= to {
                return Reposition::InRange;
            }
            Reposition::Lost {
                from: first_lost,
                to,
            }
        } else if from > high {
            self.skip_to(high);
            self.expected = high;
            Reposition::PastEnd { from, to: high }
        } else {
            Reposition::InRange
        }
    }

    /// The offset tracker passes over what lies before `to` and was never read, once the
    /// records read before it (pending in the read-ahead) are dispatched: a skip never jumps
    /// over a record still to be handed on.
    fn skip_to(&mut self, to: i64) {
        if self.pending.is_empty() {
            self.tracker.skip_to(to);
        } else {
            self.skip_after_pending = Some(self.skip_after_pending.map_or(to, |at| at.max(to)));
        }
    }

    /// Records read and not yet handed on (the read-ahead).
    #[cfg(test)]
    pub(crate) fn read_ahead(&self) -> usize {
        self.pending.len()
    }

    /// Whether the read-ahead is full: the pending records hold a batch and, with the
    /// unacknowledged ones, reach the cap. Pending plus unacked records stay within
    /// `max_unacked + batch_size`.
    fn read_ahead_full(&self) -> bool {
        let pending = self.pending.len();
        pending >= self.batch_size && pending + self.tracker.unacked() >= self.max_unacked
    }

    /// The next batch that may leave now, if a whole batch is pending (or `flush`: the broker had
    /// nothing more): at most a batch, and as many as the demand granted and the unacked cap
    /// allow (Reactive Streams: never more than requested, but whatever was requested). Its
    /// offsets count as dispatched. Call it until it answers `None`.
    pub(crate) fn take_batch(&mut self, flush: bool) -> Option<Batch> {
        let len = self.pending.len();
        if len == 0 || (len < self.batch_size && !flush && !self.bytes_full) {
            return None;
        }
        let room = self.max_unacked.saturating_sub(self.tracker.unacked());
        let demand = usize::try_from(self.demand.outstanding()).unwrap_or(usize::MAX);
        let count = len.min(room).min(demand).min(self.batch_size);
        if count == 0 || self.memory.is_full() || !self.demand.try_take(count as u64) {
            return None;
        }
        // Records flow again after a resume: the refetch is over.
        self.resumed_at = None;
        self.bytes_full = false;
        let mut batch = if count == len {
            // Room for as many bytes as this one holds: no regrowth while the next fills.
            let fresh = Batch::with_capacity(
                Arc::clone(&self.topic),
                self.partition,
                self.tracker.incarnation(),
                self.batch_size,
                self.pending.data_len(),
            );
            std::mem::replace(&mut self.pending, fresh)
        } else {
            self.pending.split_front(count)
        };
        if self.tracker.unacked() == 0 {
            self.head_since = Some(std::time::Instant::now());
        }
        for offset in batch.offsets() {
            let tracked = self.tracker.dispatched(offset);
            debug_assert!(
                tracked,
                "offset {offset} dispatched below the tracker's next offset"
            );
        }
        if self.pending.is_empty() {
            if let Some(to) = self.skip_after_pending.take() {
                self.tracker.skip_to(to);
            }
        }
        batch.hold(self.memory.lease(batch.record_bytes()));
        Some(batch)
    }

    /// Whether the partition must pause (no demand with the read-ahead full, the unacked cap
    /// reached, or a record had to be dropped) or may resume (seeking to the first offset not
    /// taken). Call it after each poll and each grant or ack, and carry out what it says.
    pub(crate) fn action(&mut self) -> Option<FlowAction> {
        let starved = self.tracker.unacked() >= self.max_unacked
            || self.memory.is_full()
            || (self.demand.outstanding() == 0 && self.read_ahead_full());
        if !self.paused && (starved || self.must_seek) {
            self.paused = true;
            return Some(FlowAction::Pause);
        }
        let waiting = self
            .resume_not_before
            .is_some_and(|at| std::time::Instant::now() < at);
        let room = self.room_to_resume();
        let room_to_resume = self.pending.len() + self.tracker.unacked() + room <= self.max_unacked;
        if self.paused && room_to_resume && !waiting && !self.memory.is_full() {
            self.paused = false;
            self.must_seek = false;
            self.resumed_at = Some(std::time::Instant::now());
            return Some(FlowAction::Resume {
                from: self.expected,
            });
        }
        None
    }

    /// Demand granted by the partition's first actor, in `incarnation`.
    pub(crate) fn grant(&mut self, incarnation: u64, records: u64) {
        if incarnation == self.tracker.incarnation() {
            self.demand.grant(records);
        }
    }

    /// Acknowledges offsets read by `incarnation`; stale acks are ignored.
    #[cfg(test)]
    pub(crate) fn ack(
        &mut self,
        incarnation: u64,
        offsets: impl IntoIterator<Item = i64>,
    ) -> usize {
        self.ack_paths(incarnation, offsets, 1)
    }

    /// Like [`PartitionFlow::ack`], each ack standing for `paths` paths to a sink.
    pub(crate) fn ack_paths(
        &mut self,
        incarnation: u64,
        offsets: impl IntoIterator<Item = i64>,
        paths: u32,
    ) -> usize {
        let before = self.tracker.position();
        let accepted = offsets
            .into_iter()
            .filter(|offset| {
                self.tracker.ack_paths(incarnation, *offset, paths) == AckOutcome::Accepted
            })
            .count();
        if self.tracker.unacked() == 0 {
            self.head_since = None;
        } else if self.tracker.position() != before {
            self.head_since = Some(std::time::Instant::now());
        }
        accepted
    }

    /// Records read by `incarnation` need more acks (a flat_map made several of each, or a
    /// split by key sends the offsets a batch covers with several parts); stale ones are
    /// ignored.
    pub(crate) fn expect_more(&mut self, incarnation: u64, offsets: Vec<(i64, u32)>) {
        for (offset, more) in offsets {
            if self.tracker.expect_more(incarnation, offset, more) == AckOutcome::Unknown {
                // Told before any piece could be acknowledged: this is a bug, not a race.
                tracing::warn!(
                    partition = self.partition,
                    offset,
                    "more acks were expected for a record no longer in flight (a flat_map's pieces, or a split's parts)"
                );
            }
        }
    }

    /// Where the acknowledged prefix of `incarnation` would end with `acks` acknowledged too
    /// (see [`OffsetTracker::position_if_acked`]).
    pub(crate) fn position_if_acked(&self, incarnation: u64, acks: &mut [i64]) -> Option<i64> {
        self.tracker.position_if_acked(incarnation, acks)
    }

    /// How long the oldest unacknowledged record has waited (zero when none is in flight).
    pub(crate) fn oldest_unacked_age(&self) -> std::time::Duration {
        self.head_since
            .map(|since| since.elapsed())
            .unwrap_or_default()
    }

    /// The rewind rule: forgets what is in flight and pending, bumps the incarnation, drops the
    /// demand of the failed actors, and returns where to seek. The partition pauses, resumes
    /// from there, and reads ahead until the restarted actors grant demand.
    #[cfg(test)]
    pub(crate) fn rewind(&mut self) -> i64 {
        self.rewind_past(i64::MIN)
    }

    /// Like [`PartitionFlow::rewind`], never back before `at_least` (see
    /// [`crate::offsets::OffsetTracker::rewind_past`]).
    pub(crate) fn rewind_past(&mut self, at_least: i64) -> i64 {
        let from = self.tracker.rewind_past(at_least);
        self.skip_after_pending = None;
        self.head_since = None;
        self.held_in_windows = 0;
        self.resumed_at = None;
        self.demand.reset();
        self.pending = Batch::new(
            Arc::clone(&self.topic),
            self.partition,
            self.tracker.incarnation(),
            self.batch_size,
        );
        self.expected = from;
        // Resuming seeks to `from`: the consumer may be running, so pause it first.
        self.must_seek = true;
        from
    }

    /// A resume could not be carried out (the seek failed): stay paused, and try again from
    /// [`PartitionFlow::action`] after [`RESUME_RETRY_AFTER`].
    pub(crate) fn resume_failed(&mut self) {
        self.resumed_at = None;
        self.paused = true;
        self.must_seek = true;
        self.resume_not_before = Some(std::time::Instant::now() + RESUME_RETRY_AFTER);
    }

    /// The next offset to hand on: everything before it was read (dispatched or pending).
    pub(crate) fn next_offset(&self) -> i64 {
        self.expected
    }

    /// The committable position (the offset after the acknowledged prefix).
    pub(crate) fn position(&self) -> i64 {
        self.tracker.position()
    }

    /// The offset to commit, when it moved.
    pub(crate) fn take_commit(&mut self) -> Option<i64> {
        self.tracker.take_commit()
    }

    /// Acknowledged records not yet committed.
    pub(crate) fn uncommitted(&self) -> i64 {
        self.tracker.uncommitted()
    }

    /// The current incarnation.
    pub(crate) fn incarnation(&self) -> u64 {
        self.tracker.incarnation()
    }

    /// Records dispatched and not yet acknowledged.
    pub(crate) fn unacked(&self) -> usize {
        self.tracker.unacked()
    }

    /// True while paused.
    pub(crate) fn is_paused(&self) -> bool {
        self.paused
    }

    /// How many more records a paused partition needs room for before it resumes: half the
    /// cap (at least a batch). Resuming at the first free slot would pause again a few records
    /// later, and every pause drops what the client prefetched (a seek and a refetch per cycle
    /// under backpressure). Records held in open windows wait for time, not for the sink: the
    /// half is of the rest.
    fn room_to_resume(&self) -> usize {
        room_to_resume(self.held_in_windows, self.max_unacked, self.batch_size)
    }

    /// True while the partition waits for what is downstream (see
    /// [`crate::source::kafka::HeldBack`]): paused, and able to resume once the records on
    /// their way to the sinks are acknowledged. A partition whose open windows alone hold so
    /// many records that it could not resume even then waits for its windows to close, which
    /// takes time, not for anything downstream: it is not held back, so that the windows'
    /// idle timeout runs and closes them.
    pub(crate) fn is_held_back(&self) -> bool {
        let paused_for_downstream = self.paused
            && !windows_fill_the_cap(self.held_in_windows, self.max_unacked, self.batch_size);
        // Resumed, but the refetch after the seek has not brought a record on yet (for at most
        // RESUME_GRACE: a partition with nothing more to read is idle).
        let refetching = self
            .resumed_at
            .is_some_and(|at| at.elapsed() < RESUME_GRACE);
        paused_for_downstream || refetching
    }

    /// Whether the partition became held back (`Some(true)`) or free (`Some(false)`) since the
    /// last call; `None` when nothing changed. The polling thread publishes the changes.
    pub(crate) fn held_back_change(&mut self) -> Option<bool> {
        let held = self.is_held_back();
        (held != std::mem::replace(&mut self.published_held_back, held)).then_some(held)
    }

    /// Outstanding demand, in records.
    pub(crate) fn demand(&self) -> u64 {
        self.demand.outstanding()
    }
}

/// Where a partition without a usable position goes on from: the log's start (`earliest`, the
/// default) or its end (`latest`), as `auto.offset.reset` says in the pipeline's properties
/// (librdkafka itself is told `error`: the runtime decides, and counts what it skips).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum OffsetReset {
    /// The log's start.
    #[default]
    Earliest,
    /// The log's end.
    Latest,
}

impl OffsetReset {
    /// The policy `auto.offset.reset` names (librdkafka's spellings); `earliest` otherwise.
    pub(crate) fn named(value: Option<&str>) -> Self {
        match value {
            Some("latest" | "largest" | "end") => OffsetReset::Latest,
            _ => OffsetReset::Earliest,
        }
    }
}

/// Where a partition whose position the broker could not serve goes on from (see
/// [`PartitionFlow::reposition`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reposition {
    /// The records `from..to` were deleted before they were read: lost, counted, and skipped.
    Lost {
        /// The first offset lost.
        from: i64,
        /// The log's start now: the flow goes on from here.
        to: i64,
    },
    /// The position was past the log's end: the flow goes on from the end.
    PastEnd {
        /// The position.
        from: i64,
        /// The log's end.
        to: i64,
    },
    /// The position is in the log: fetched again.
    InRange,
}

/// The room a paused partition needs before it resumes, with `held` records in open windows:
/// half of what the windows leave of the cap, at least a batch.
fn room_to_resume(held: usize, max_unacked: usize, batch_size: usize) -> usize {
    (max_unacked.saturating_sub(held) / 2).max(batch_size)
}

/// True when open windows holding `held` records leave a paused partition no room to resume
/// under its cap: it waits for its windows to close (by their idle timeout), not for anything
/// downstream. A window stage calls a close made then a close at the cap.
pub(crate) fn windows_fill_the_cap(held: usize, max_unacked: usize, batch_size: usize) -> bool {
    held + room_to_resume(held, max_unacked, batch_size) > max_unacked
}

#[cfg(test)]
mod tests;
