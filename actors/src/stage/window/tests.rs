use super::*;
use crate::operators::window::WindowKind;

fn recipe() -> WindowRecipe {
    WindowRecipe {
        settings: WindowSettings {
            kind: WindowKind::Tumbling {
                size: Duration::from_secs(10),
            },
            out_of_orderness: Duration::ZERO,
            allowed_lateness: Duration::ZERO,
            idle_timeout: None,
        },
        key: Some(FieldPath::parse("sensor").expect("path")),
        time: Some(FieldPath::parse("ts").expect("path")),
        value: Some(FieldPath::parse("reading").expect("path")),
    }
}

fn batch(incarnation: u64, records: &[(i64, &str)]) -> Batch {
    let mut batch = Batch::new(Arc::from("sensors"), 2, incarnation, records.len());
    for (offset, value) in records {
        batch.push(*offset, Some(0), None, value.as_bytes());
    }
    batch
}

fn values(batch: &Batch) -> Vec<Value> {
    batch
        .iter()
        .map(|record| serde_json::from_slice(record.value).expect("JSON"))
        .collect()
}

#[test]
fn tumbling_windows_emit_aggregates_covering_their_records() {
    let mut windowed = Windowed::new(recipe()).expect("valid");
    let now = Instant::now();
    let mut rejected = Vec::new();
    let input = batch(
        1,
        &[
            (0, r#"{"sensor": "a", "ts": 1000, "reading": 3}"#),
            (1, r#"{"sensor": "b", "ts": 2000, "reading": 10}"#),
            (2, r#"{"sensor": "a", "ts": 9000, "reading": 5}"#),
            (3, r#"{"sensor": "a", "reading": 5}"#),
            (4, r#"{"sensor": "a", "ts": 12000, "reading": 1}"#),
        ],
    );
    windowed
        .absorb(&input, now, &mut rejected)
        .expect("absorbs");
    assert_eq!(
        rejected,
        [Rejected::refused(
            3,
            "window: time field `ts` is missing or not an integer of milliseconds".into()
        )]
    );
    let topic: Arc<str> = Arc::from("sensors");
    let chunks = windowed.emit(&topic, 2, now, 1);
    assert_eq!(chunks.len(), 2, "one emission a batch at 1 record a batch");
    let mut acked_in_chunks: Vec<i64> = chunks.iter().flat_map(Batch::ack_offsets).collect();
    acked_in_chunks.sort_unstable();
    assert_eq!(acked_in_chunks, [0, 1, 2]);
    // The same emissions in one batch (a fresh run of the same input).
    let mut whole = Windowed::new(recipe()).expect("valid");
    whole.absorb(&input, now, &mut Vec::new()).expect("absorbs");
    let mut batches = whole.emit(&topic, 2, now, 100);
    assert_eq!(batches.len(), 1);
    let out = batches.remove(0);
    assert_eq!(
        values(&out),
        [
            serde_json::json!({"key": "a", "start_ms": 0, "end_ms": 10000, "count": 2, "sum": 8.0, "min": 3.0, "max": 5.0, "mean": 4.0, "update": false}),
            serde_json::json!({"key": "b", "start_ms": 0, "end_ms": 10000, "count": 1, "sum": 10.0, "min": 10.0, "max": 10.0, "mean": 10.0, "update": false}),
        ]
    );
    assert_eq!(out.offsets().collect::<Vec<_>>(), [NO_OFFSET, NO_OFFSET]);
    assert_eq!(
        out.iter().map(|r| r.key).collect::<Vec<_>>(),
        [Some(&b"a"[..]), Some(&b"b"[..])]
    );
    let mut acked: Vec<i64> = out.ack_offsets().collect();
    acked.sort_unstable();
    assert_eq!(
        acked,
        [0, 1, 2],
        "the sources of the emitted windows, not the open one's"
    );
    assert_eq!(whole.held(), 1);

    // A record for the closed window is late; a rewind (incarnation 2) drops the state.
    rejected.clear();
    windowed
        .absorb(
            &batch(1, &[(5, r#"{"sensor": "a", "ts": 500, "reading": 1}"#)]),
            now,
            &mut rejected,
        )
        .expect("absorbs");
    assert_eq!(rejected.len(), 1);
    assert!(
        rejected[0].why.starts_with("late record"),
        "{}",
        rejected[0].why
    );
    windowed
        .absorb(
            &batch(2, &[(4, r#"{"sensor": "a", "ts": 12000, "reading": 1}"#)]),
            now,
            &mut rejected,
        )
        .expect("absorbs");
    assert_eq!(windowed.held(), 1, "only the replayed record");
    windowed
        .absorb(
            &batch(1, &[(6, r#"{"sensor": "a", "ts": 13000, "reading": 1}"#)]),
            now,
            &mut rejected,
        )
        .expect("absorbs");
    assert_eq!(
        windowed.held(),
        1,
        "an older incarnation's batch is ignored"
    );
}
