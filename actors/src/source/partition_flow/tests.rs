use std::collections::VecDeque;

use proptest::prelude::*;

use super::*;
use crate::flow::InputBuffer;

const BATCH: usize = 4;

/// The partition's broker log and consumer, as the polling thread would drive them.
struct Broker {
    position: i64,
    paused: bool,
}

/// The partition's downstream: an input buffer that acks whole batches and grants again.
struct Downstream {
    buffer: InputBuffer,
    in_flight: VecDeque<Batch>,
}

impl Downstream {
    fn new(capacity: u64, flow: &mut PartitionFlow) -> Self {
        let (buffer, initial) = InputBuffer::new(capacity);
        flow.grant(flow.incarnation(), initial);
        Downstream {
            buffer,
            in_flight: VecDeque::new(),
        }
    }
}

fn apply(flow: &mut PartitionFlow, broker: &mut Broker) {
    match flow.action() {
        Some(FlowAction::Pause) => broker.paused = true,
        Some(FlowAction::Resume { from }) => {
            broker.position = from;
            broker.paused = false;
        }
        None => {}
    }
}

#[test]
fn reads_ahead_without_demand_then_pauses_and_resumes_at_the_next_offset() {
    let mut flow = PartitionFlow::new(Arc::from("t"), 0, 0, BATCH, 8);
    assert_eq!(flow.action(), None, "no demand yet, but room to read ahead");
    for offset in 0..8 {
        assert_eq!(flow.polled(offset, None, None, b"x"), Polled::Accepted);
    }
    assert!(
        flow.take_batch(true).is_none(),
        "nothing leaves without demand"
    );
    assert_eq!(
        flow.polled(8, None, None, b"x"),
        Polled::Dropped,
        "the read-ahead is full"
    );
    assert_eq!(flow.action(), Some(FlowAction::Pause));
    flow.grant(1, 4);
    let batch = flow.take_batch(false).expect("a full batch within demand");
    assert_eq!(batch.offsets().collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert!(flow.take_batch(true).is_none(), "demand used up");
    assert_eq!(
        flow.action(),
        None,
        "no demand and the read-ahead still full"
    );
    flow.grant(1, 4);
    let batch = flow.take_batch(false).expect("the second batch");
    assert_eq!(batch.offsets().collect::<Vec<_>>(), [4, 5, 6, 7]);
    assert_eq!(flow.action(), None, "at the unacked cap");
    assert_eq!(flow.ack(1, 0..4), 4);
    assert_eq!(flow.action(), Some(FlowAction::Resume { from: 8 }));
}

#[test]
fn the_unacked_cap_pauses_until_acks_come() {
    let mut flow = PartitionFlow::new(Arc::from("t"), 0, 10, BATCH, 8);
    flow.grant(1, 1_000);
    assert_eq!(flow.action(), None);
    for offset in 10..18 {
        flow.polled(offset, None, None, b"x");
        if let Some(batch) = flow.take_batch(false) {
            assert_eq!(batch.len(), BATCH);
        }
    }
    assert_eq!(flow.unacked(), 8);
    assert_eq!(flow.action(), Some(FlowAction::Pause));
    assert_eq!(flow.ack(1, 10..14), 4);
    assert_eq!(flow.action(), Some(FlowAction::Resume { from: 18 }));
    assert_eq!(flow.take_commit(), Some(14));
}

/// A partition with a cap of 40 and every record up to it dispatched.
fn at_a_cap_of_40() -> PartitionFlow {
    let mut flow = PartitionFlow::new(Arc::from("t"), 0, 0, BATCH, 40);
    flow.grant(1, 1_000);
    for offset in 0..40 {
        flow.polled(offset, None, None, b"x");
        while flow.take_batch(false).is_some() {}
    }
    flow
}

#[test]
fn a_paused_partition_resumes_with_room_for_half_its_cap() {
    // Cap 40, batches of 4: paused at 40 unacknowledged, resumed at 20 (not at 36).
    let mut flow = at_a_cap_of_40();
    assert_eq!(flow.action(), Some(FlowAction::Pause));
    assert_eq!(flow.ack(1, 0..4), 4);
    assert_eq!(
        flow.action(),
        None,
        "36 in flight: no room for half the cap"
    );
    assert_eq!(flow.ack(1, 4..19), 15);
    assert_eq!(flow.action(), None, "21 in flight");
    assert_eq!(flow.ack(1, 19..20), 1);
    assert_eq!(flow.action(), Some(FlowAction::Resume { from: 40 }));
}

#[test]
fn records_held_in_windows_do_not_keep_a_partition_paused() {
    // 30 of 40 held in open windows (they wait for time): room for half of the other 10
    // resumes it (half of the whole cap would wait for the windows to close).
    let mut flow = at_a_cap_of_40();
    flow.held_in_windows(1, 30);
    assert_eq!(flow.action(), Some(FlowAction::Pause));
    assert_eq!(flow.ack(1, 30..34), 4);
    assert_eq!(flow.action(), None, "36 in flight: room for 4, not 5");
    assert_eq!(flow.ack(1, 34..35), 1);
    assert_eq!(flow.action(), Some(FlowAction::Resume { from: 40 }));
}

#[test]
fn a_partition_is_held_back_by_what_is_downstream_not_by_its_own_windows() {
    let mut flow = at_a_cap_of_40();
    assert_eq!(flow.held_back_change(), None, "flowing, as first published");
    assert_eq!(flow.action(), Some(FlowAction::Pause));
    assert!(
        flow.is_held_back(),
        "paused at the cap: it waits for the sinks"
    );
    assert_eq!(flow.held_back_change(), Some(true));
    assert_eq!(flow.held_back_change(), None, "published once");
    // 30 in windows: once the other 10 are acknowledged there is room (5) to resume.
    flow.held_in_windows(1, 30);
    assert!(flow.is_held_back());
    // 37 in windows: room to resume is a batch (4), and 37 + 4 > 40. Only the windows closing
    // can free it, which takes time: not held back, so that their idle timeout runs.
    flow.held_in_windows(1, 37);
    assert!(!flow.is_held_back());
    assert_eq!(flow.held_back_change(), Some(false));
    flow.held_in_windows(1, 0);
    assert_eq!(flow.ack(1, 0..20), 20);
    assert_eq!(flow.action(), Some(FlowAction::Resume { from: 40 }));
    // Resumed, but nothing refetched yet: still held back (for at most RESUME_GRACE), so that
    // the refetch after the seek does not count as idle time.
    assert!(flow.is_held_back(), "refetching");
    assert_eq!(flow.held_back_change(), Some(true));
    assert_eq!(flow.polled(40, None, None, b"x"), Polled::Accepted);
    assert!(flow.take_batch(true).is_some());
    assert!(!flow.is_held_back(), "records flow again");
    assert_eq!(flow.held_back_change(), Some(false));
}

#[test]
fn rewind_seeks_to_the_committed_prefix_and_ignores_old_acks() {
    let mut flow = PartitionFlow::new(Arc::from("t"), 0, 0, BATCH, 100);
    flow.grant(1, 8);
    for offset in 0..8 {
        flow.polled(offset, None, None, b"x");
        flow.take_batch(false);
    }
    flow.ack(1, 0..4);
    assert_eq!(flow.rewind(), 4);
    assert_eq!(flow.incarnation(), 2);
    assert_eq!(
        flow.ack(1, 4..8),
        0,
        "acks of the old incarnation are ignored"
    );
    assert_eq!(flow.demand(), 0, "the failed actors' demand is gone");
    assert_eq!(flow.action(), Some(FlowAction::Pause));
    flow.grant(1, 100);
    assert_eq!(flow.demand(), 0, "stale grants too");
    flow.grant(2, 4);
    assert_eq!(flow.action(), Some(FlowAction::Resume { from: 4 }));
    assert_eq!(
        flow.polled(3, None, None, b"x"),
        Polled::Dropped,
        "before the seek point"
    );
    assert_eq!(flow.polled(4, None, None, b"x"), Polled::Accepted);
}

#[derive(Debug, Clone)]
enum Step {
    Poll,
    /// A new record arrives although the partition is paused (prefetched before the pause).
    Prefetched,
    /// Several records in one poll, before the batch can leave.
    Burst,
    /// A record fetched before the last pause or seek shows up anyway.
    Stray,
    Flush,
    AckOldest,
    AckNewest,
    Rewind,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => Just(Step::Poll),
        1 => Just(Step::Prefetched),
        2 => Just(Step::Burst),
        1 => Just(Step::Stray),
        2 => Just(Step::Flush),
        3 => Just(Step::AckOldest),
        1 => Just(Step::AckNewest),
        1 => Just(Step::Rewind),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the interleaving of polls, stray prefetched records, acks in any order and
    /// rewinds: a batch never exceeds the demand granted, unacked records never pass the cap,
    /// each incarnation dispatches contiguous offsets from its seek point, and once the downstream
    /// keeps up again the partition makes progress.
    #[test]
    fn demand_cap_and_order_hold(
        capacity in (BATCH as u64)..40,
        max_unacked in BATCH..30,
        steps in prop::collection::vec(step(), 1..300),
    ) {
        let mut flow = PartitionFlow::new(Arc::from("t"), 0, 0, BATCH, max_unacked);
        let mut broker = Broker { position: 0, paused: false };
        let mut downstream = Downstream::new(capacity, &mut flow);
        let mut next_dispatch = 0i64;
        apply(&mut flow, &mut broker);
        for step in steps {
            match step {
                Step::Poll if !broker.paused => {
                    flow.polled(broker.position, None, None, b"v");
                    broker.position += 1;
                }
                Step::Poll => {}
                Step::Burst => {
                    for _ in 0..BATCH + 2 {
                        if !broker.paused {
                            flow.polled(broker.position, None, None, b"v");
                            broker.position += 1;
                        }
                    }
                }
                Step::Prefetched => {
                    flow.polled(broker.position, None, None, b"v");
                    broker.position += 1;
                }
                Step::Stray => {
                    let stale = broker.position.saturating_sub(1);
                    flow.polled(stale, None, None, b"v");
                }
                Step::Flush => {}
                Step::AckOldest | Step::AckNewest => {
                    let batch = if matches!(step, Step::AckOldest) {
                        downstream.in_flight.pop_front()
                    } else {
                        downstream.in_flight.pop_back()
                    };
                    if let Some(batch) = batch {
                        flow.ack(batch.incarnation(), batch.offsets());
                        if let Some(grant) = downstream.buffer.drained(batch.len() as u64) {
                            flow.grant(batch.incarnation(), grant);
                        }
                    }
                }
                Step::Rewind => {
                    let from = flow.rewind();
                    broker.position = from;
                    next_dispatch = from;
                    // The failed actors are gone with what they held; their restart grants anew.
                    downstream = Downstream::new(capacity, &mut flow);
                }
            }
            let flush = matches!(step, Step::Flush);
            if let Some(batch) = flow.take_batch(flush) {
                prop_assert!(downstream.buffer.arrived(batch.len() as u64).is_ok(), "within demand");
                let offsets: Vec<i64> = batch.offsets().collect();
                let expected: Vec<i64> = (next_dispatch..next_dispatch + offsets.len() as i64).collect();
                prop_assert_eq!(&offsets, &expected, "contiguous from the seek point");
                next_dispatch += offsets.len() as i64;
                downstream.in_flight.push_back(batch);
            }
            prop_assert!(flow.unacked() <= max_unacked.max(BATCH));
            prop_assert!(
                flow.read_ahead() + flow.unacked() <= max_unacked + BATCH,
                "the read-ahead is bounded: {} pending, {} unacked",
                flow.read_ahead(),
                flow.unacked()
            );
            apply(&mut flow, &mut broker);
        }
        // The downstream keeps up from now on: the partition must make progress.
        let before = next_dispatch;
        for _ in 0..200 {
            if !broker.paused {
                flow.polled(broker.position, None, None, b"v");
                broker.position += 1;
            }
            if let Some(batch) = flow.take_batch(true) {
                prop_assert!(downstream.buffer.arrived(batch.len() as u64).is_ok());
                next_dispatch += batch.len() as i64;
                downstream.in_flight.push_back(batch);
            }
            while let Some(batch) = downstream.in_flight.pop_front() {
                flow.ack(batch.incarnation(), batch.offsets());
                if let Some(grant) = downstream.buffer.drained(batch.len() as u64) {
                    flow.grant(batch.incarnation(), grant);
                }
            }
            apply(&mut flow, &mut broker);
        }
        prop_assert!(next_dispatch >= before + BATCH as i64, "progress: {} -> {}", before, next_dispatch);
        prop_assert_eq!(flow.unacked(), 0);
    }
}

#[test]
fn a_record_that_cannot_be_taken_is_fetched_again_never_skipped() {
    let mut flow = PartitionFlow::new(Arc::from("t"), 0, 0, BATCH, 8);
    flow.grant(1, 100);
    assert_eq!(flow.action(), None);
    for offset in 0..4 {
        assert_eq!(flow.polled(offset, None, None, b"x"), Polled::Accepted);
    }
    assert!(flow.take_batch(false).is_some());
    for offset in 4..8 {
        assert_eq!(flow.polled(offset, None, None, b"x"), Polled::Accepted);
    }
    // The read-ahead is full (4 pending, 4 unacked): offsets 8 and 9 must not be lost.
    assert_eq!(flow.polled(8, None, None, b"x"), Polled::Dropped);
    assert_eq!(flow.polled(9, None, None, b"x"), Polled::Dropped);
    assert!(flow.take_batch(false).is_some());
    assert_eq!(flow.action(), Some(FlowAction::Pause));
    assert_eq!(flow.ack(1, 0..8), 8);
    assert_eq!(flow.action(), Some(FlowAction::Resume { from: 8 }));
    assert_eq!(flow.polled(8, None, None, b"x"), Polled::Accepted);
}

/// A batch never passes its byte cap (`u32` positions): the record that would take it past
/// closes it, leaves as it is, and starts the next one (fetched again, never skipped).
#[test]
fn a_batch_closes_before_a_record_would_pass_its_byte_cap() {
    let mut flow = PartitionFlow::new(Arc::from("t"), 0, 0, BATCH, 100);
    flow.cap_batch_bytes(25);
    flow.grant(1, 100);
    for offset in 0..2 {
        assert_eq!(
            flow.polled(offset, None, None, &[b'x'; 10]),
            Polled::Accepted
        );
    }
    assert_eq!(
        flow.polled(2, None, None, &[b'x'; 10]),
        Polled::Dropped,
        "30 bytes would pass the cap of 25"
    );
    let closed = flow
        .take_batch(false)
        .expect("the closed batch leaves though not whole");
    assert_eq!(closed.offsets().collect::<Vec<_>>(), [0, 1]);
    assert!(closed.data_len() <= 25);
    assert_eq!(flow.action(), Some(FlowAction::Pause));
    assert_eq!(flow.action(), Some(FlowAction::Resume { from: 2 }));
    assert_eq!(flow.polled(2, None, None, &[b'x'; 10]), Polled::Accepted);
    assert!(
        flow.take_batch(false).is_none(),
        "not full: it waits for more"
    );
}

/// A position the broker deleted before it was read: the flow counts the range lost, goes on
/// from the log's start, and the acknowledged prefix passes over the gap.
#[test]
fn a_position_deleted_before_it_was_read_is_skipped_and_reported() {
    let mut flow = PartitionFlow::new(Arc::from("t"), 0, 0, BATCH, 100);
    flow.grant(1, 100);
    for offset in 0..4 {
        assert_eq!(flow.polled(offset, None, None, b"x"), Polled::Accepted);
    }
    let batch = flow.take_batch(false).expect("a batch");
    assert_eq!(
        flow.reposition(50, 80, OffsetReset::Earliest),
        Reposition::Lost { from: 4, to: 50 }
    );
    assert_eq!(flow.next_offset(), 50, "fetched again from the log's start");
    assert_eq!(flow.polled(50, None, None, b"x"), Polled::Accepted);
    assert_eq!(flow.ack(1, batch.offsets()), 4);
    assert_eq!(flow.take_commit(), Some(50), "past the deleted range");
    assert_eq!(
        flow.reposition(50, 80, OffsetReset::Earliest),
        Reposition::InRange
    );
    assert_eq!(
        flow.reposition(0, 20, OffsetReset::Earliest),
        Reposition::PastEnd { from: 51, to: 20 }
    );
    // `latest` skips to the log's end, and counts what it skips.
    let mut latest = PartitionFlow::new(Arc::from("t"), 0, 10, BATCH, 100);
    assert_eq!(
        latest.reposition(30, 90, OffsetReset::Latest),
        Reposition::Lost { from: 10, to: 90 }
    );
}

/// Records read before the deleted range and still in the read-ahead are dispatched and
/// tracked before the skip applies; a rewind back below the range does not count it twice.
#[test]
fn a_skip_waits_for_the_read_ahead_and_a_range_is_lost_once() {
    let mut flow = PartitionFlow::new(Arc::from("t"), 0, 0, BATCH, 100);
    for offset in 0..3 {
        assert_eq!(flow.polled(offset, None, None, b"x"), Polled::Accepted);
    }
    assert_eq!(
        flow.reposition(40, 60, OffsetReset::Earliest),
        Reposition::Lost { from: 3, to: 40 }
    );
    flow.grant(1, 100);
    let batch = flow.take_batch(true).expect("the read-ahead leaves");
    assert_eq!(
        batch.offsets().collect::<Vec<_>>(),
        [0, 1, 2],
        "tracked, not skipped"
    );
    assert_eq!(flow.take_commit(), None, "nothing acknowledged yet");
    assert_eq!(flow.ack(1, [0, 1]), 2);
    assert_eq!(
        flow.take_commit(),
        Some(2),
        "offset 2 still holds the prefix"
    );
    flow.rewind();
    assert_eq!(
        flow.reposition(40, 60, OffsetReset::Earliest),
        Reposition::InRange,
        "counted once"
    );
    assert_eq!(flow.next_offset(), 40);
}

#[test]
fn a_failed_resume_waits_before_the_next_attempt() {
    let mut flow = PartitionFlow::new(Arc::from("t"), 0, 0, BATCH, 100);
    flow.grant(1, 10);
    assert_eq!(flow.action(), None);
    flow.resume_failed();
    assert_eq!(flow.action(), None, "no new attempt right away");
    std::thread::sleep(RESUME_RETRY_AFTER + std::time::Duration::from_millis(20));
    assert_eq!(flow.action(), Some(FlowAction::Resume { from: 0 }));
}

/// Bytes in flight pause a partition though its record cap has room: at its own byte cap, or
/// at the runtime's budget that another partition spent; dropping the batches (written, or
/// absorbed into state with their acks still waiting) resumes it.
#[test]
fn bytes_in_flight_pause_at_the_cap_or_the_budget_until_batches_are_dropped() {
    use crate::flow::memory::{MemoryBudget, PartitionMemory};
    let budget = MemoryBudget::new(1_000);
    let memory = PartitionMemory::new(800, std::sync::Arc::clone(&budget));
    assert_eq!(memory.batch_bytes(usize::MAX), 31, "a 32nd of the budget");
    let mut flow = PartitionFlow::new(Arc::from("t"), 0, 0, BATCH, 1_000).with_memory(memory);
    flow.grant(1, 1_000);
    let mut broker = Broker {
        position: 0,
        paused: false,
    };
    let mut out = Vec::new();
    while !(broker.paused && budget.used() >= 800) {
        if !broker.paused
            && flow.polled(broker.position, None, None, &[b'x'; 10]) == Polled::Accepted
        {
            broker.position += 1;
        }
        out.extend(flow.take_batch(false));
        apply(&mut flow, &mut broker);
    }
    // Batches of 3 records (30 bytes, under 31) leave until 810 bytes are in flight.
    assert_eq!(
        budget.used(),
        810,
        "the first batch at or past the cap of 800"
    );
    assert!(out.iter().all(|batch| batch.len() == 3));
    assert!(flow.take_batch(true).is_none(), "nothing leaves at the cap");
    out.truncate(20);
    assert_eq!(budget.used(), 600);
    assert_eq!(
        flow.action(),
        Some(FlowAction::Resume { from: 81 }),
        "resumes below the cap, after the 81 records sent"
    );
    let from = 81;
    // Another partition spends the budget: this one pauses again, unacked records or not.
    let other = PartitionMemory::new(800, std::sync::Arc::clone(&budget)).lease(400);
    for offset in from..from + 3 {
        flow.polled(offset, None, None, &[b'x'; 10]);
    }
    assert!(flow.take_batch(true).is_none(), "the budget is spent");
    assert_eq!(flow.action(), Some(FlowAction::Pause));
    drop(other);
    assert!(matches!(flow.action(), Some(FlowAction::Resume { .. })));
    let last = flow.take_batch(true).expect("room in the budget again");
    assert_eq!(last.len(), 3);
    assert_eq!((budget.used(), budget.peak()), (630, 1_000));
    let made_of_it = last.successor(3);
    drop(last);
    assert_eq!(
        budget.used(),
        630,
        "what an operator made of a batch keeps it counted"
    );
    drop(made_of_it);
    assert_eq!(budget.used(), 600);
    assert_eq!(
        flow.unacked(),
        84,
        "no ack came: bytes alone paused and resumed it"
    );
}
