use std::sync::Arc;

use super::*;

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("streamvisor-rolling-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn batch(partition: i32, first: i64, count: i64, timestamp_ms: i64) -> Batch {
    let mut batch = Batch::new(Arc::from("t"), partition, 1, count as usize);
    for offset in first..first + count {
        let value = format!("{{\"seq\":{offset}}}");
        batch.push(offset, Some(timestamp_ms), Some(b"k"), value.as_bytes());
    }
    batch
}

/// Every file under `dir` with `extension`, sorted by name.
fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("list").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == extension) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn utc_dates() {
    let date = |ms: i64| utc_date(ms.div_euclid(MS_PER_DAY));
    assert_eq!(date(0), "1970-01-01");
    assert_eq!(date(1_764_230_400_000), "2025-11-27");
    assert_eq!(date(951_782_400_000), "2000-02-29");
    assert_eq!(date(-86_400_000), "1969-12-31");
}

#[test]
fn files_roll_over_by_size_and_keep_every_record_in_order() {
    let dir = temp_dir("size");
    let mut sink = RollingFiles::open(RollingSettings {
        path: dir.join("events.jsonl"),
        format: FileFormat::JsonLines,
        layout: FileLayout::Single,
        max_bytes: Some(4_000),
        max_age: None,
    })
    .expect("open");
    for round in 0..10 {
        sink.write_batches(&[&batch(0, round * 100, 100, 0)])
            .expect("write");
    }
    let written = files(&dir, "jsonl");
    assert!(written.len() >= 5, "rolled over: {written:?}");
    let mut offsets = Vec::new();
    for file in &written {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        assert!(name.starts_with("events-"), "{name}");
        for line in std::fs::read_to_string(file).expect("read").lines() {
            let record: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            offsets.push(record["offset"].as_i64().expect("offset"));
        }
    }
    offsets.sort_unstable();
    assert_eq!(offsets, (0..1000).collect::<Vec<i64>>());
}

#[test]
fn the_date_partition_layout_puts_records_in_hive_folders() {
    let dir = temp_dir("layout");
    let mut sink = RollingFiles::open(RollingSettings {
        path: dir.clone(),
        format: FileFormat::JsonLines,
        layout: FileLayout::DatePartition,
        max_bytes: None,
        max_age: None,
    })
    .expect("open");
    let day = 86_400_000;
    sink.write_batches(&[
        &batch(0, 0, 3, 1_764_230_400_000),
        &batch(1, 0, 2, 1_764_230_400_000 + day),
    ])
    .expect("write");
    let count = |folder: &str| -> usize {
        files(&dir.join(folder), "jsonl")
            .iter()
            .map(|file| std::fs::read_to_string(file).expect("read").lines().count())
            .sum()
    };
    assert_eq!(count("date=2025-11-27/partition=0"), 3);
    assert_eq!(count("date=2025-11-28/partition=1"), 2);
    assert_eq!(files(&dir, "jsonl").len(), 2);
    // Buffers follow the files written to: a day that passed gives its buffer back.
    assert_eq!(sink.buffers.len(), 2);
    sink.write_batches(&[&batch(1, 2, 1, 1_764_230_400_000 + day)])
        .expect("write");
    sink.write_batches(&[&batch(1, 3, 1, 1_764_230_400_000 + day)])
        .expect("write");
    assert_eq!(
        sink.buffers.len(),
        1,
        "only the file still written to keeps a buffer"
    );
}

#[test]
fn message_pack_records_carry_the_json_lines_fields() {
    let dir = temp_dir("msgpack");
    let mut sink = RollingFiles::open(RollingSettings {
        path: dir.join("out.msgpack"),
        format: FileFormat::MessagePack,
        layout: FileLayout::Single,
        max_bytes: None,
        max_age: None,
    })
    .expect("open");
    let mut mixed = Batch::new(Arc::from("t"), 2, 1, 3);
    mixed.push(7, Some(5), Some(b"a"), b"{\"amount\": 12}");
    mixed.push(8, None, None, b"plain");
    mixed.push(9, None, None, &[0xff, 0x00]);
    sink.write_batches(&[&mixed]).expect("write");
    let written = files(&dir, "msgpack");
    let bytes = std::fs::read(&written[0]).expect("read");
    let mut cursor = std::io::Cursor::new(&bytes[..]);
    let mut records = Vec::new();
    while (cursor.position() as usize) < bytes.len() {
        let record: rmpv::Value = rmp_serde::from_read(&mut cursor).expect("a record");
        records.push(record);
    }
    assert_eq!(records.len(), 3);
    let field = |record: &rmpv::Value, name: &str| -> rmpv::Value {
        record
            .as_map()
            .and_then(|map| map.iter().find(|(key, _)| key.as_str() == Some(name)))
            .map(|(_, value)| value.clone())
            .unwrap_or(rmpv::Value::Nil)
    };
    assert_eq!(field(&records[0], "offset"), rmpv::Value::from(7));
    assert_eq!(field(&records[0], "key"), rmpv::Value::from("a"));
    assert_eq!(
        field(&field(&records[0], "value"), "amount"),
        rmpv::Value::from(12)
    );
    assert_eq!(field(&records[1], "value"), rmpv::Value::from("plain"));
    assert_eq!(
        field(&records[2], "value"),
        rmpv::Value::Binary(vec![0xff, 0x00])
    );
    assert_eq!(field(&records[1], "partition"), rmpv::Value::from(2));
}

#[test]
fn a_torn_message_pack_tail_is_cut_when_the_sink_opens_again() {
    let dir = temp_dir("torn");
    let settings = RollingSettings {
        path: dir.join("out.msgpack"),
        format: FileFormat::MessagePack,
        layout: FileLayout::Single,
        max_bytes: None,
        max_age: None,
    };
    let mut sink = RollingFiles::open(settings.clone()).expect("open");
    sink.write_batches(&[&batch(0, 0, 5, 0)]).expect("write");
    drop(sink);
    let file = files(&dir, "msgpack").remove(0);
    let whole = std::fs::read(&file).expect("read");
    // A crash in the middle of the next record:
    let mut torn = whole.clone();
    torn.extend_from_slice(&whole[..whole.len() / 7]);
    std::fs::write(&file, &torn).expect("tear");
    let _reopened = RollingFiles::open(settings).expect("reopen");
    assert_eq!(std::fs::read(&file).expect("read"), whole);
}

#[test]
fn files_the_sink_did_not_name_are_left_alone() {
    let dir = temp_dir("foreign");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let foreign = dir.join("notes.jsonl");
    std::fs::write(&foreign, b"{\"no newline\": true}").expect("write");
    let torn_own = dir.join("events-1764230400000-0.jsonl");
    std::fs::write(&torn_own, b"{\"a\":1}\n{\"b\"").expect("write");
    let _sink = RollingFiles::open(RollingSettings {
        path: dir.join("events.jsonl"),
        format: FileFormat::JsonLines,
        layout: FileLayout::Single,
        max_bytes: Some(1_000),
        max_age: None,
    })
    .expect("open");
    assert_eq!(
        std::fs::read(&foreign).expect("read"),
        b"{\"no newline\": true}"
    );
    assert_eq!(std::fs::read(&torn_own).expect("read"), b"{\"a\":1}\n");
}

/// Found by the file_torn_tail fuzz target: a torn line longer than 1 MiB was kept whole (the
/// repair looked at the last 1 MiB only).
#[test]
fn a_torn_line_longer_than_a_mebibyte_is_cut() {
    let dir = temp_dir("long-torn");
    std::fs::create_dir_all(&dir).expect("the folder");
    let file = dir.join("part-1-0.jsonl");
    let mut contents = b"{\"a\":1}\n".to_vec();
    contents.resize(contents.len() + (1 << 20) + 1, b'x');
    std::fs::write(&file, &contents).expect("the torn file");
    drop(
        RollingFiles::open(RollingSettings {
            path: dir.join("part.jsonl"),
            format: FileFormat::JsonLines,
            layout: FileLayout::Single,
            max_bytes: None,
            max_age: None,
        })
        .expect("open"),
    );
    assert_eq!(std::fs::read(&file).expect("read"), b"{\"a\":1}\n");
}
