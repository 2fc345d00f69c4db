use super::*;
use crate::stage::throttle::tests::{batch, offsets};

#[test]
fn groups_fill_to_their_size_or_leave_when_due() {
    let start = Instant::now();
    let mut grouping = Grouping::new(4, Duration::from_millis(100)).expect("valid");
    let mut covered = batch(1, 0..3);
    covered.cover([90]);
    let (full, dropped) = grouping.push(&covered, 3, start);
    assert!(full.is_empty());
    assert_eq!(dropped, 0);
    assert_eq!(grouping.due(), Some(start + Duration::from_millis(100)));
    let (full, _) = grouping.push(&batch(1, 3..9), 6, start + Duration::from_millis(10));
    assert_eq!(
        full.iter().map(offsets).collect::<Vec<_>>(),
        [vec![0, 1, 2, 3], vec![4, 5, 6, 7]]
    );
    assert_eq!(
        full[0].0.covered(),
        [90],
        "covered offsets go with the input's last record"
    );
    assert_eq!(
        (full[0].1, full[1].1),
        (3, 0),
        "credit comes back with the group holding the input's last record"
    );
    assert_eq!(grouping.flush_due(start + Duration::from_millis(109)), None);
    let due = grouping
        .flush_due(start + Duration::from_millis(110))
        .expect("due");
    assert_eq!(offsets(&due), [8]);
    assert_eq!(due.1, 6);
    // A newer incarnation drops the older group (replayed) and gives its credit back.
    grouping.push(&batch(1, 9..10), 1, start);
    let (full, dropped) = grouping.push(&batch(2, 9..11), 2, start);
    assert!(full.is_empty());
    assert_eq!(dropped, 1);
    assert_eq!(
        grouping
            .flush_due(start + Duration::from_secs(1))
            .map(|r| offsets(&r)),
        Some(vec![9, 10])
    );
    assert!(Grouping::new(0, Duration::from_secs(1)).is_err());
}
