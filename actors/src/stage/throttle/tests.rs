use std::sync::Arc;

use super::*;

/// A batch of `offsets` (each record's value its offset) read by `incarnation` (shared with the
/// grouped_within tests).
pub(in crate::stage) fn batch(incarnation: u64, offsets: std::ops::Range<i64>) -> Batch {
    let mut batch = Batch::new(Arc::from("t"), 0, incarnation, 8);
    for offset in offsets {
        batch.push(offset, None, None, format!("{offset}").as_bytes());
    }
    batch
}

/// The offsets a released batch carries.
pub(in crate::stage) fn offsets(release: &Release) -> Vec<i64> {
    release.0.offsets().collect()
}

#[test]
fn a_throttle_lets_batches_go_at_its_rate() {
    let start = Instant::now();
    let mut throttled = Throttled::new(ThrottleSettings {
        rate: 10,
        per: Duration::from_secs(1),
        burst: 10,
    })
    .expect("valid");
    throttled.push(batch(1, 0..6), 6);
    throttled.push(batch(1, 6..12), 6);
    let (out, wait) = throttled.release(start);
    assert_eq!(
        out.iter().map(offsets).collect::<Vec<_>>(),
        [(0..6).collect::<Vec<_>>()]
    );
    assert_eq!(out[0].1, 6, "its credit goes with it");
    assert_eq!(
        wait,
        Some(Duration::from_millis(200)),
        "4 tokens left, 6 needed at 10/s"
    );
    let (out, wait) = throttled.release(start + Duration::from_millis(199));
    assert!(out.is_empty());
    assert_eq!(wait, Some(Duration::from_millis(1)));
    let (out, wait) = throttled.release(start + Duration::from_millis(200));
    assert_eq!(
        out.iter().map(offsets).collect::<Vec<_>>(),
        [(6..12).collect::<Vec<_>>()]
    );
    assert_eq!(wait, None);
    assert!(Throttled::new(ThrottleSettings {
        rate: 0,
        per: Duration::from_secs(1),
        burst: 1
    })
    .is_err());
}
