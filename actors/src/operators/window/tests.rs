use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// One window, from insert to release (the module's walk-through).
#[test]
fn a_tumbling_window_emits_at_the_watermark_and_releases_its_offsets() {
    let mut windows = KeyedWindows::new(WindowSettings {
        kind: WindowKind::Tumbling {
            size: Duration::from_secs(10),
        },
        out_of_orderness: Duration::from_secs(1),
        allowed_lateness: Duration::ZERO,
        idle_timeout: Some(Duration::from_secs(30)),
    })
    .expect("valid settings");
    let now = Instant::now();
    assert_eq!(
        windows.insert(b"sensor-1", 2_000, 20.5, 100, now),
        Insert::Accepted
    );
    assert_eq!(
        windows.insert(b"sensor-1", 12_000, 21.0, 101, now),
        Insert::Accepted
    );
    // Watermark 11 000: [0, 10 000) emits, and offset 100 may be acknowledged.
    let emitted = windows.advance(now);
    assert_eq!((emitted[0].start_ms, emitted[0].end_ms), (0, 10_000));
    assert_eq!(
        (emitted[0].aggregate.sum, &emitted[0].released[..]),
        (20.5, &[100][..])
    );
    assert_eq!(windows.held(), 1);
}

/// A window the idle timeout closed while the windows held the partition's cap is told from
/// one closed by event time: a record for the first is `ClosedAtCap`, for the second `Late`.
#[test]
fn a_window_closed_at_the_cap_is_told_from_a_late_one() {
    for at_cap in [true, false] {
        let mut windows = KeyedWindows::new(WindowSettings {
            kind: WindowKind::Tumbling {
                size: Duration::from_secs(10),
            },
            out_of_orderness: Duration::ZERO,
            allowed_lateness: Duration::ZERO,
            idle_timeout: Some(Duration::from_secs(1)),
        })
        .expect("valid settings");
        let start = Instant::now();
        assert_eq!(windows.insert(b"s", 1_000, 1.0, 0, start), Insert::Accepted);
        windows.at_cap(at_cap);
        // Ten quiet seconds: the watermark goes to 11 000 and closes [0, 10 000).
        let closed = windows.advance(start + Duration::from_secs(10));
        assert_eq!(closed.len(), 1);
        windows.at_cap(false);
        let later = start + Duration::from_secs(11);
        assert_eq!(windows.insert(b"s", 2_000, 1.0, 1, later), Insert::Late);
        let expected = if at_cap {
            Lateness::ClosedAtCap
        } else {
            Lateness::Late
        };
        assert_eq!(windows.lateness(2_000), expected, "at cap: {at_cap}");
        // A window passed by event time is late either way.
        assert_eq!(
            windows.insert(b"s", 25_000, 1.0, 2, later),
            Insert::Accepted
        );
        assert_eq!(windows.advance(later).len(), 0);
        assert_eq!(windows.insert(b"s", 15_000, 1.0, 3, later), Insert::Late);
        assert_eq!(windows.lateness(15_000), Lateness::Late);
    }
}

fn settings(kind: WindowKind) -> WindowSettings {
    WindowSettings {
        kind,
        out_of_orderness: Duration::ZERO,
        allowed_lateness: Duration::ZERO,
        idle_timeout: None,
    }
}

fn tumbling(size: u64) -> WindowSettings {
    settings(WindowKind::Tumbling { size: ms(size) })
}

fn windows(settings: WindowSettings) -> KeyedWindows {
    match KeyedWindows::new(settings) {
        Ok(windows) => windows,
        Err(error) => panic!("valid settings refused: {error}"),
    }
}

fn aggregate(values: &[f64]) -> Aggregate {
    let mut aggregate = Aggregate::EMPTY;
    values.iter().for_each(|&value| aggregate.add(value));
    aggregate
}

/// The emission expected for `key`'s window `[start, end)` holding `values`.
fn emission(
    key: &str,
    (start_ms, end_ms): (i64, i64),
    values: &[f64],
    update: bool,
    released: &[i64],
) -> Emission {
    Emission {
        key: key.as_bytes().to_vec(),
        start_ms,
        end_ms,
        aggregate: aggregate(values),
        update,
        released: released.to_vec(),
    }
}

/// Inserts `(key, event time, value, offset)` records at processing time `now`, all accepted.
fn accept(windows: &mut KeyedWindows, now: Instant, records: &[(&str, i64, f64, i64)]) {
    for &(key, time, value, offset) in records {
        assert_eq!(
            windows.insert(key.as_bytes(), time, value, offset, now),
            Insert::Accepted,
            "record at {time} (offset {offset}) refused"
        );
    }
}

#[test]
fn tumbling_windows_emit_in_order_when_the_watermark_reaches_their_end() {
    let mut windows = windows(tumbling(10));
    let now = Instant::now();
    accept(&mut windows, now, &[("a", 1, 1.0, 0), ("a", 5, 3.0, 1)]);
    assert_eq!(windows.advance(now), vec![]);
    assert_eq!(windows.watermark(), Some(5));
    accept(&mut windows, now, &[("a", 12, 10.0, 2)]);
    assert_eq!(
        windows.advance(now),
        vec![emission("a", (0, 10), &[1.0, 3.0], false, &[0, 1])]
    );
    assert_eq!((windows.held(), windows.open_windows()), (1, 1));
    accept(&mut windows, now, &[("a", 20, 4.0, 3)]);
    assert_eq!(
        windows.advance(now),
        vec![emission("a", (10, 20), &[10.0], false, &[2])]
    );
    assert_eq!((windows.held(), windows.open_windows()), (1, 1));
}

#[test]
fn out_of_order_records_within_out_of_orderness_join_their_window() {
    let mut windows = windows(WindowSettings {
        out_of_orderness: ms(5),
        ..tumbling(10)
    });
    let now = Instant::now();
    accept(&mut windows, now, &[("a", 3, 1.0, 0), ("a", 12, 2.0, 1)]);
    assert_eq!(windows.advance(now), vec![]);
    assert_eq!(windows.watermark(), Some(7));
    accept(&mut windows, now, &[("a", 8, 4.0, 2)]);
    assert_eq!(windows.advance(now), vec![]);
    accept(&mut windows, now, &[("a", 16, 8.0, 3)]);
    assert_eq!(
        windows.advance(now),
        vec![emission("a", (0, 10), &[1.0, 4.0], false, &[0, 2])]
    );
    assert_eq!(windows.held(), 2);
}

#[test]
fn a_late_record_within_lateness_updates_the_window_and_is_released_with_the_update() {
    let mut windows = windows(WindowSettings {
        allowed_lateness: ms(10),
        ..tumbling(10)
    });
    let now = Instant::now();
    accept(&mut windows, now, &[("a", 2, 1.0, 0), ("a", 11, 2.0, 1)]);
    assert_eq!(
        windows.advance(now),
        vec![emission("a", (0, 10), &[1.0], false, &[0])]
    );
    accept(&mut windows, now, &[("a", 5, 4.0, 2)]);
    assert_eq!(windows.held(), 2);
    assert_eq!(
        windows.advance(now),
        vec![emission("a", (0, 10), &[1.0, 4.0], true, &[2])]
    );
    assert_eq!(windows.advance(now), vec![], "nothing new to emit");
    accept(&mut windows, now, &[("a", 20, 8.0, 3)]);
    assert_eq!(
        windows.advance(now),
        vec![emission("a", (10, 20), &[2.0], false, &[1])]
    );
    // [0, 10) was purged at watermark 20; [10, 20) waits out its lateness, [20, 30) is open.
    assert_eq!((windows.held(), windows.open_windows()), (1, 2));
}

#[test]
fn a_record_beyond_lateness_is_late_and_not_held() {
    let mut windows = windows(WindowSettings {
        allowed_lateness: ms(10),
        ..tumbling(10)
    });
    let now = Instant::now();
    accept(&mut windows, now, &[("a", 2, 1.0, 0)]);
    assert_eq!(windows.advance(now), vec![]);
    accept(&mut windows, now, &[("a", 25, 2.0, 1)]);
    assert_eq!(
        windows.advance(now),
        vec![emission("a", (0, 10), &[1.0], false, &[0])]
    );
    assert_eq!(windows.insert(b"a", 9, 4.0, 2, now), Insert::Late);
    assert_eq!(windows.insert(b"new key", 0, 4.0, 3, now), Insert::Late);
    assert_eq!((windows.held(), windows.open_windows()), (1, 1));
    // [10, 20) never existed but is within lateness at watermark 25: it opens and emits at once.
    accept(&mut windows, now, &[("a", 15, 8.0, 4)]);
    assert_eq!(
        windows.advance(now),
        vec![emission("a", (10, 20), &[8.0], false, &[4])]
    );
    assert_eq!(windows.held(), 1);
}

#[test]
fn sliding_windows_release_a_record_after_its_last_window() {
    let mut windows = windows(settings(WindowKind::Sliding {
        size: ms(10),
        slide: ms(5),
    }));
    let now = Instant::now();
    accept(&mut windows, now, &[("a", 7, 1.0, 0), ("a", 12, 2.0, 1)]);
    assert_eq!(
        windows.advance(now),
        vec![emission("a", (0, 10), &[1.0], false, &[])]
    );
    accept(&mut windows, now, &[("a", 16, 4.0, 2)]);
    assert_eq!(
        windows.advance(now),
        vec![emission("a", (5, 15), &[1.0, 2.0], false, &[0])]
    );
    accept(&mut windows, now, &[("a", 30, 8.0, 3)]);
    assert_eq!(
        windows.advance(now),
        vec![
            emission("a", (10, 20), &[2.0, 4.0], false, &[1]),
            emission("a", (15, 25), &[4.0], false, &[2]),
        ]
    );
    assert_eq!((windows.held(), windows.open_windows()), (1, 2));
}

#[test]
fn a_slide_that_does_not_divide_the_size_puts_records_in_two_or_three_windows() {
    let mut windows = windows(settings(WindowKind::Sliding {
        size: ms(10),
        slide: ms(4),
    }));
    let now = Instant::now();
    accept(&mut windows, now, &[("a", 2, 1.0, 0), ("a", 9, 2.0, 1)]);
    assert_eq!(windows.open_windows(), 4);
    accept(&mut windows, now, &[("a", 100, 4.0, 2)]);
    assert_eq!(
        windows.advance(now),
        vec![
            emission("a", (-4, 6), &[1.0], false, &[]),
            emission("a", (0, 10), &[1.0, 2.0], false, &[0]),
            emission("a", (4, 14), &[2.0], false, &[]),
            emission("a", (8, 18), &[2.0], false, &[1]),
        ]
    );
    assert_eq!((windows.held(), windows.open_windows()), (1, 3));
}

#[test]
fn a_record_bridging_two_sessions_merges_them() {
    let mut windows = windows(WindowSettings {
        out_of_orderness: ms(30),
        ..settings(WindowKind::Session { gap: ms(10) })
    });
    let now = Instant::now();
    accept(&mut windows, now, &[("a", 0, 1.0, 0), ("a", 18, 2.0, 1)]);
    assert_eq!(windows.open_windows(), 2);
    accept(&mut windows, now, &[("a", 8, 4.0, 2)]);
    assert_eq!((windows.held(), windows.open_windows()), (3, 1));
    accept(&mut windows, now, &[("a", 100, 8.0, 3)]);
    assert_eq!(
        windows.advance(now),
        vec![emission("a", (0, 28), &[1.0, 2.0, 4.0], false, &[0, 1, 2])]
    );
    assert_eq!((windows.held(), windows.open_windows()), (1, 1));
}

#[test]
fn a_late_record_inside_an_emitted_session_updates_it_and_one_that_extends_it_changes_its_bounds() {
    let mut windows = windows(WindowSettings {
        allowed_lateness: ms(20),
        ..settings(WindowKind::Session { gap: ms(10) })
    });
    let now = Instant::now();
    accept(&mut windows, now, &[("a", 0, 1.0, 0), ("a", 5, 2.0, 1)]);
    accept(&mut windows, now, &[("b", 16, 0.0, 2)]);
    assert_eq!(
        windows.advance(now),
        vec![emission("a", (0, 15), &[1.0, 2.0], false, &[0, 1])]
    );
    accept(&mut windows, now, &[("a", 3, 4.0, 3)]);
    assert_eq!(
        windows.advance(now),
        vec![emission("a", (0, 15), &[1.0, 2.0, 4.0], true, &[3])]
    );
    accept(&mut windows, now, &[("a", 14, 8.0, 4), ("b", 40, 0.0, 5)]);
    assert_eq!(
        windows.advance(now),
        vec![
            emission("a", (0, 24), &[1.0, 2.0, 4.0, 8.0], false, &[4]),
            emission("b", (16, 26), &[0.0], false, &[2]),
        ]
    );
}

#[test]
fn the_idle_timeout_closes_windows_without_further_records() {
    let mut windows = windows(WindowSettings {
        out_of_orderness: ms(5),
        idle_timeout: Some(Duration::from_secs(1)),
        ..tumbling(10)
    });
    let start = Instant::now();
    accept(&mut windows, start, &[("a", 3, 1.0, 0)]);
    assert_eq!(windows.advance(start), vec![]);
    assert_eq!(windows.watermark(), Some(-2));
    assert_eq!(windows.advance(start + ms(999)), vec![]);
    assert_eq!(windows.watermark(), Some(-2));
    assert_eq!(
        windows.advance(start + ms(1_000)),
        vec![emission("a", (0, 10), &[1.0], false, &[0])]
    );
    assert_eq!(windows.watermark(), Some(998));
    assert_eq!((windows.held(), windows.open_windows()), (0, 0));
    // The watermark never goes back: a new arrival resets the idle time, not the watermark.
    accept(&mut windows, start + ms(1_500), &[("a", 1_200, 2.0, 1)]);
    assert_eq!(windows.advance(start + ms(1_500)), vec![]);
    assert_eq!(windows.watermark(), Some(1_195));
}

#[test]
fn time_held_back_is_not_idleness() {
    let mut windows = windows(WindowSettings {
        out_of_orderness: ms(5),
        idle_timeout: Some(Duration::from_secs(1)),
        ..tumbling(10)
    });
    let start = Instant::now();
    // Before any record there is no clock to hold.
    windows.hold_idle_clock(start);
    assert_eq!(windows.advance(start), vec![]);
    assert_eq!(windows.watermark(), None);
    accept(&mut windows, start, &[("a", 3, 1.0, 0)]);
    // Held back (backpressure) until 800 ms: the timeout counts from there, not from the record.
    windows.hold_idle_clock(start + ms(400));
    windows.hold_idle_clock(start + ms(800));
    // A hold never moves the clock back.
    windows.hold_idle_clock(start + ms(100));
    assert_eq!(windows.advance(start + ms(1_000)), vec![]);
    assert_eq!(windows.advance(start + ms(1_799)), vec![]);
    assert_eq!(windows.watermark(), Some(-2));
    // Idle for a whole second since the hold: event time runs on from the hold, not from the
    // record (it moved 1 s, not 1.8 s).
    assert_eq!(
        windows.advance(start + ms(1_800)),
        vec![emission("a", (0, 10), &[1.0], false, &[0])]
    );
    assert_eq!(windows.watermark(), Some(998));
    // Idle time counted stays counted: a later hold takes out only its own 100 ms.
    assert_eq!(windows.advance(start + ms(2_300)), vec![]);
    assert_eq!(windows.watermark(), Some(1_498));
    windows.hold_idle_clock(start + ms(2_400));
    assert_eq!(windows.advance(start + ms(2_500)), vec![]);
    assert_eq!(windows.watermark(), Some(1_598));
}

#[test]
fn emissions_are_ordered_by_end_then_start_then_key() {
    let mut windows = windows(tumbling(10));
    let now = Instant::now();
    accept(
        &mut windows,
        now,
        &[
            ("b", 1, 1.0, 0),
            ("c", 15, 2.0, 1),
            ("a", 2, 4.0, 2),
            ("a", 12, 8.0, 3),
            ("b", 25, 0.0, 4),
        ],
    );
    assert_eq!(
        windows.advance(now),
        vec![
            emission("a", (0, 10), &[4.0], false, &[2]),
            emission("b", (0, 10), &[1.0], false, &[0]),
            emission("a", (10, 20), &[8.0], false, &[3]),
            emission("c", (10, 20), &[2.0], false, &[1]),
        ]
    );

    let mut sessions = windows_of_sessions(10);
    accept(
        &mut sessions,
        now,
        &[("z", 10, 1.0, 0), ("a", 10, 2.0, 1), ("z", 0, 4.0, 2)],
    );
    accept(&mut sessions, now, &[("m", 50, 0.0, 3)]);
    assert_eq!(
        sessions.advance(now),
        vec![
            emission("z", (0, 20), &[1.0, 4.0], false, &[0, 2]),
            emission("a", (10, 20), &[2.0], false, &[1]),
        ]
    );
}

fn windows_of_sessions(gap: u64) -> KeyedWindows {
    windows(settings(WindowKind::Session { gap: ms(gap) }))
}

#[test]
fn an_offset_inserted_twice_is_released_once_after_both() {
    let mut windows = windows(tumbling(10));
    let now = Instant::now();
    accept(&mut windows, now, &[("a", 5, 1.0, 7), ("a", 15, 2.0, 7)]);
    assert_eq!(windows.held(), 1);
    accept(&mut windows, now, &[("a", 20, 0.0, 8)]);
    assert_eq!(
        windows.advance(now),
        vec![
            emission("a", (0, 10), &[1.0], false, &[]),
            emission("a", (10, 20), &[2.0], false, &[7]),
        ]
    );
}

#[test]
fn invalid_settings_are_refused_with_their_error() {
    let zero = |setting| OperatorError::Zero {
        operator: "window",
        setting,
    };
    let sliding = |size, slide| {
        settings(WindowKind::Sliding {
            size: ms(size),
            slide: ms(slide),
        })
    };
    assert_eq!(tumbling(0).validate(), Err(zero("size")));
    assert_eq!(sliding(0, 5).validate(), Err(zero("size")));
    assert_eq!(sliding(10, 0).validate(), Err(zero("slide")));
    assert_eq!(windows_of_sessions_settings(0).validate(), Err(zero("gap")));
    assert_eq!(
        sliding(5, 10).validate(),
        Err(OperatorError::WindowShorterThanSlide {
            operator: "window",
            size: ms(5),
            slide: ms(10),
        })
    );
    let idle_zero = WindowSettings {
        idle_timeout: Some(Duration::ZERO),
        ..tumbling(10)
    };
    assert_eq!(idle_zero.validate(), Err(zero("idle_timeout")));
    assert!(matches!(
        KeyedWindows::new(settings(WindowKind::Tumbling {
            size: Duration::from_micros(1_500)
        })),
        Err(OperatorError::Invalid {
            operator: "window",
            ..
        })
    ));
    assert_eq!(sliding(10, 4).validate(), Ok(()));
    assert_eq!(sliding(10, 10).validate(), Ok(()));
}

fn windows_of_sessions_settings(gap: u64) -> WindowSettings {
    settings(WindowKind::Session { gap: ms(gap) })
}

/// A step of the property test.
#[derive(Debug, Clone)]
enum Step {
    /// Insert a record of key `key` at `time` with a fresh offset.
    Insert { key: u8, time: i64 },
    /// Let `millis` of processing time pass, then advance.
    Advance { millis: u64 },
}

fn kind_strategy() -> impl Strategy<Value = WindowKind> {
    prop_oneof![
        (1u64..30).prop_map(|size| WindowKind::Tumbling { size: ms(size) }),
        (1u64..15, 0u64..20).prop_map(|(slide, extra)| WindowKind::Sliding {
            size: ms(slide + extra),
            slide: ms(slide),
        }),
        (1u64..20).prop_map(|gap| WindowKind::Session { gap: ms(gap) }),
    ]
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..3, -50i64..200).prop_map(|(key, time)| Step::Insert { key, time }),
        1 => (0u64..1_500).prop_map(|millis| Step::Advance { millis }),
    ]
}

/// The start of the last fixed window holding `time` (none for sessions).
fn last_start(kind: WindowKind, time: i64) -> Option<i64> {
    let slide = match kind {
        WindowKind::Tumbling { size } => size,
        WindowKind::Sliding { slide, .. } => slide,
        WindowKind::Session { .. } => return None,
    };
    let slide = i64::try_from(slide.as_millis()).ok()?;
    Some(time.div_euclid(slide) * slide)
}

/// The records accepted so far (by offset: key and event time), and the offsets released.
#[derive(Default)]
struct Ledger {
    accepted: HashMap<i64, (u8, i64)>,
    released: HashSet<i64>,
}

impl Ledger {
    /// Releases the offsets of `emissions`, checking that each was accepted, is released once,
    /// and by its own key's window that holds its time, the last of its windows if fixed.
    fn release(&mut self, kind: WindowKind, emissions: &[Emission]) -> Result<(), TestCaseError> {
        for emission in emissions {
            for offset in &emission.released {
                let Some(&(key, time)) = self.accepted.get(offset) else {
                    return Err(TestCaseError::fail(format!(
                        "{offset} released, not accepted"
                    )));
                };
                prop_assert!(self.released.insert(*offset), "{} released twice", offset);
                prop_assert_eq!(&emission.key, &vec![key]);
                prop_assert!(emission.start_ms <= time && time < emission.end_ms);
                if let Some(start) = last_start(kind, time) {
                    prop_assert_eq!(emission.start_ms, start, "{} released early", offset);
                }
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_accepted_offset_is_released_exactly_once_and_late_ones_never(
        kind in kind_strategy(),
        out_of_orderness in 0u64..20,
        allowed_lateness in 0u64..20,
        steps in proptest::collection::vec(step_strategy(), 0..80),
    ) {
        let mut windows = windows(WindowSettings {
            kind,
            out_of_orderness: ms(out_of_orderness),
            allowed_lateness: ms(allowed_lateness),
            idle_timeout: Some(Duration::from_secs(1)),
        });
        let mut now = Instant::now();
        let mut ledger = Ledger::default();
        for (offset, step) in (0i64..).zip(steps) {
            match step {
                Step::Insert { key, time } => {
                    if windows.insert(&[key], time, 1.0, offset, now) == Insert::Accepted {
                        ledger.accepted.insert(offset, (key, time));
                    }
                }
                Step::Advance { millis } => {
                    now += ms(millis);
                    ledger.release(kind, &windows.advance(now))?;
                }
            }
            prop_assert_eq!(windows.held(), ledger.accepted.len() - ledger.released.len());
        }
        ledger.release(kind, &windows.advance(now + Duration::from_secs(3_600)))?;
        let accepted: HashSet<i64> = ledger.accepted.keys().copied().collect();
        prop_assert_eq!(&ledger.released, &accepted);
        prop_assert_eq!((windows.held(), windows.open_windows()), (0, 0));
    }
}
