use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

#[test]
fn out_of_order_acks_commit_the_contiguous_prefix_only() {
    let mut tracker = OffsetTracker::new(100);
    for offset in 100..105 {
        assert!(tracker.dispatched(offset));
    }
    assert_eq!(tracker.ack(1, 102), AckOutcome::Accepted);
    assert_eq!(tracker.take_commit(), None);
    assert_eq!(tracker.ack(1, 100), AckOutcome::Accepted);
    assert_eq!(tracker.take_commit(), Some(101));
    assert_eq!(tracker.ack(1, 101), AckOutcome::Accepted);
    assert_eq!(tracker.take_commit(), Some(103));
    assert_eq!(tracker.unacked(), 2);
    assert_eq!(tracker.ack(1, 101), AckOutcome::Unknown, "double ack");
}

#[test]
fn gaps_in_offsets_are_fine() {
    let mut tracker = OffsetTracker::new(0);
    for offset in [0, 1, 5, 9] {
        assert!(tracker.dispatched(offset));
    }
    assert!(!tracker.dispatched(9), "offsets must increase");
    for offset in [9, 0, 5, 1] {
        assert_eq!(tracker.ack(1, offset), AckOutcome::Accepted);
    }
    assert_eq!(tracker.take_commit(), Some(10));
}

#[test]
fn rewind_ignores_late_acks_and_seeks_to_the_prefix() {
    let mut tracker = OffsetTracker::new(0);
    for offset in 0..10 {
        tracker.dispatched(offset);
    }
    tracker.ack(1, 0);
    tracker.ack(1, 1);
    tracker.ack(1, 5);
    assert_eq!(tracker.rewind(), 2);
    assert_eq!(tracker.incarnation(), 2);
    assert_eq!(tracker.unacked(), 0);
    assert_eq!(tracker.ack(1, 2), AckOutcome::Stale);
    assert_eq!(tracker.next_offset(), 2);
    assert!(tracker.dispatched(2));
    assert_eq!(tracker.ack(2, 2), AckOutcome::Accepted);
    assert_eq!(tracker.take_commit(), Some(3));
}

/// One step of a random history.
#[derive(Debug, Clone)]
enum Step {
    /// Dispatch the next record, `gap` offsets after the previous one.
    Dispatch { gap: u8 },
    /// Ack the in-flight record at this index (modulo), from this incarnation offset
    /// (0 = current, 1 = the previous one).
    Ack { pick: usize, stale: bool },
    /// Take the commit.
    Commit,
    /// Rewind (a failure in the partition's subtree).
    Rewind,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..3).prop_map(|gap| Step::Dispatch { gap }),
        4 => (any::<usize>(), prop::bool::weighted(0.1)).prop_map(|(pick, stale)| Step::Ack { pick, stale }),
        1 => Just(Step::Commit),
        1 => Just(Step::Rewind),
    ]
}

#[test]
fn a_flat_mapped_record_is_released_after_every_piece_on_every_path() {
    let mut tracker = OffsetTracker::new(10);
    tracker.set_required_acks(2); // two paths to a sink
    for offset in 10..13 {
        assert!(tracker.dispatched(offset));
    }
    // Offset 10 became 3 pieces: 2 more pieces on each of the 2 paths.
    assert_eq!(tracker.expect_more(1, 10, 4), AckOutcome::Accepted);
    assert_eq!(tracker.expect_more(0, 11, 1), AckOutcome::Stale);
    assert_eq!(tracker.expect_more(1, 99, 1), AckOutcome::Unknown);
    for ack in 1..=5 {
        assert_eq!(tracker.ack(1, 10), AckOutcome::Accepted, "ack {ack}");
        assert_eq!(tracker.position(), 10, "not released after {ack} of 6 acks");
    }
    assert_eq!(tracker.ack_paths(1, 11, 2), AckOutcome::Accepted);
    assert_eq!(tracker.position(), 10);
    assert_eq!(tracker.ack(1, 10), AckOutcome::Accepted);
    assert_eq!(tracker.position(), 12, "10 and 11 released together");
    assert_eq!(
        tracker.ack(1, 10),
        AckOutcome::Unknown,
        "a seventh ack is too many"
    );
    assert_eq!(
        tracker.expect_more(1, 10, 1),
        AckOutcome::Unknown,
        "released already"
    );
    assert_eq!(tracker.unacked(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Over random dispatches, acks in any order (some stale), commits and rewinds: the commit
    /// never passes an unacked record, never goes back, equals the end of the acked prefix, and
    /// stale acks change nothing.
    #[test]
    fn commits_never_pass_an_unacked_record(start in 0i64..1_000, steps in prop::collection::vec(step(), 1..400)) {
        let mut tracker = OffsetTracker::new(start);
        // The model: dispatched offsets of the current incarnation, and which of them are acked.
        let mut dispatched: Vec<i64> = Vec::new();
        let mut acked: BTreeSet<i64> = BTreeSet::new();
        let mut next = start;
        let mut position = start;
        let mut last_commit = start;
        for step in steps {
            match step {
                Step::Dispatch { gap } => {
                    next += i64::from(gap);
                    prop_assert!(tracker.dispatched(next));
                    dispatched.push(next);
                    next += 1;
                }
                Step::Ack { pick, stale } => {
                    if dispatched.is_empty() {
                        continue;
                    }
                    let offset = dispatched[pick % dispatched.len()];
                    let incarnation = if stale { tracker.incarnation() - 1 } else { tracker.incarnation() };
                    let outcome = tracker.ack(incarnation, offset);
                    if stale {
                        prop_assert_eq!(outcome, AckOutcome::Stale);
                    } else if offset < position || acked.contains(&offset) {
                        prop_assert_eq!(outcome, AckOutcome::Unknown);
                    } else {
                        prop_assert_eq!(outcome, AckOutcome::Accepted);
                        acked.insert(offset);
                    }
                }
                Step::Commit => {
                    if let Some(commit) = tracker.take_commit() {
                        prop_assert!(commit > last_commit, "commits only move forward");
                        last_commit = commit;
                    }
                }
                Step::Rewind => {
                    let seek = tracker.rewind();
                    prop_assert_eq!(seek, position, "rewind seeks to the acked prefix");
                    dispatched.retain(|offset| *offset < position);
                    acked.retain(|offset| *offset < position);
                    next = position;
                }
            }
            // The model's prefix: the first unacked dispatched offset bounds the position.
            let first_unacked = dispatched.iter().copied().filter(|o| *o >= position).find(|o| !acked.contains(o));
            let last_acked_in_prefix = dispatched
                .iter()
                .copied()
                .filter(|o| *o >= position && first_unacked.is_none_or(|u| *o < u))
                .max();
            if let Some(last) = last_acked_in_prefix {
                position = last + 1;
            }
            prop_assert_eq!(tracker.position(), position);
            if let Some(unacked) = first_unacked {
                prop_assert!(tracker.position() <= unacked, "never ahead of an ack");
                prop_assert!(tracker.committed() <= unacked);
            }
            let unacked_count = dispatched.iter().filter(|o| **o >= position && !acked.contains(o)).count();
            prop_assert_eq!(tracker.unacked(), unacked_count);
        }
    }
}

#[test]
fn a_range_the_broker_deleted_is_passed_over_once_what_came_before_is_acknowledged() {
    let mut tracker = OffsetTracker::new(0);
    assert!(tracker.dispatched(0));
    assert!(tracker.dispatched(1));
    tracker.skip_to(10);
    assert!(!tracker.dispatched(5), "nothing below the skip");
    assert!(tracker.dispatched(10));
    assert_eq!(tracker.ack(1, 1), AckOutcome::Accepted);
    assert_eq!(tracker.take_commit(), None, "offset 0 still in flight");
    assert_eq!(tracker.ack(1, 0), AckOutcome::Accepted);
    assert_eq!(tracker.take_commit(), Some(10), "through the deleted range");
    assert_eq!(tracker.ack(1, 10), AckOutcome::Accepted);
    assert_eq!(tracker.take_commit(), Some(11));
    // With nothing in flight the prefix jumps at once.
    tracker.skip_to(20);
    assert_eq!(tracker.take_commit(), Some(20));
    assert_eq!(tracker.unacked(), 0);
}

/// The case: offset 5 still in flight while 6 to 99 are in a transaction: it may commit
/// up to 5; with 5 acknowledged (a dead letter delivered), up to 100.
#[test]
fn a_transaction_commits_no_further_than_the_prefix_its_records_would_close() {
    let mut tracker = OffsetTracker::new(0);
    for offset in 0..100 {
        assert!(tracker.dispatched(offset));
    }
    for offset in 0..5 {
        tracker.ack(1, offset);
    }
    let mut transaction: Vec<i64> = (6..100).rev().collect();
    assert_eq!(tracker.position_if_acked(1, &mut transaction), Some(5));
    assert_eq!(tracker.position(), 5, "asking acknowledges nothing");
    tracker.ack(1, 5);
    assert_eq!(tracker.position_if_acked(1, &mut transaction), Some(100));
    assert_eq!(
        tracker.position_if_acked(2, &mut transaction),
        None,
        "stale"
    );

    // Two paths: a record needs both acks, from one transaction or with one already in.
    let mut paths = OffsetTracker::new(0);
    paths.set_required_acks(2);
    for offset in 0..3 {
        paths.dispatched(offset);
    }
    paths.ack(1, 1);
    assert_eq!(
        paths.position_if_acked(1, &mut [0, 1, 2]),
        Some(0),
        "0 waits for a path"
    );
    assert_eq!(
        paths.position_if_acked(1, &mut [0, 0, 1, 2]),
        Some(2),
        "1 has one already"
    );
    assert_eq!(paths.position_if_acked(1, &mut [0, 0, 1, 2, 2]), Some(3));
}
