#![no_main]
//! JSON records: a Kafka source's format check (`Format::Json`), the ingest's JSON decoding
//! (`streamvisor::fuzzing::ingest_json`), and the file sink's line (`encode_line`), which copies
//! a payload that is JSON into the line as JSON.

use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;
use streamvisor::actors::{encode_line, Format, RecordRef};

fuzz_target!(|data: &[u8]| {
    if Format::Json.check(data).is_ok() {
        assert!(
            std::str::from_utf8(data).is_ok(),
            "`Format::Json` (UTF-8 JSON) took bytes that are not UTF-8"
        );
    }
    streamvisor::fuzzing::ingest_json(data);

    let record = RecordRef {
        offset: 0,
        timestamp_ms: None,
        key: Some(data),
        value: data,
        index: None,
    };
    let mut line = Vec::new();
    encode_line(&mut line, "topic", 0, &record, None);
    assert_eq!(
        line.iter().position(|byte| *byte == b'\n'),
        Some(line.len() - 1),
        "a JSON Lines line is one line"
    );
    let text = std::str::from_utf8(&line).expect("a JSON Lines line is UTF-8");
    serde_json::from_str::<IgnoredAny>(text).expect("a JSON Lines line is JSON");
});
