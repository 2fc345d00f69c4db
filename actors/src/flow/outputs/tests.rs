use std::sync::Arc;

use super::*;

#[test]
fn partition_by_key_sends_each_key_to_one_part_and_covered_offsets_once() {
    let mut batch = Batch::new(Arc::from("t"), 0, 1, 8);
    for (offset, key) in [(0, "a"), (1, "b"), (2, "a"), (3, "c"), (4, "b"), (5, "a")] {
        batch.push(offset, None, Some(key.as_bytes()), b"{}");
    }
    batch.push(6, None, None, b"{}");
    batch.cover([40, 41]);
    let parts = split_by_key(&mut batch, 3, false);
    assert_eq!(parts.len(), 3);
    let mut seen: Vec<i64> = Vec::new();
    let mut part_of_key = std::collections::HashMap::new();
    for (index, part) in parts.iter().enumerate() {
        let Some(part) = part else { continue };
        for record in part.iter() {
            seen.push(record.offset);
            let key = record.key.map(<[u8]>::to_vec);
            assert_eq!(
                *part_of_key.entry(key.clone()).or_insert(index),
                index,
                "key {key:?} split over parts"
            );
        }
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        [0, 1, 2, 3, 4, 5, 6],
        "every record in exactly one part"
    );
    assert_eq!(
        part_of_key[&None], 0,
        "a record without a key goes to the first part"
    );
    let covered: Vec<i64> = parts
        .iter()
        .flatten()
        .flat_map(|part| part.covered().to_vec())
        .collect();
    assert_eq!(covered, [40, 41], "covered offsets go with one part only");
}

#[test]
fn settled_covered_offsets_go_with_every_part() {
    let mut batch = Batch::new(Arc::from("t"), 0, 1, 8);
    for offset in 0..16 {
        batch.push(offset, None, Some(format!("k{offset}").as_bytes()), b"{}");
    }
    batch.cover([40, 41]);
    let parts = split_by_key(&mut batch, 2, true);
    let with_records: Vec<&Batch> = parts.iter().flatten().collect();
    assert_eq!(with_records.len(), 2, "16 keys over two parts");
    for part in with_records {
        assert_eq!(part.covered(), [40, 41]);
    }
}
