//! The JSON Lines encoding of the file sink (DESIGN.md, "File sink lines"): one record a line,
//! `{"topic","partition","offset","key","value","timestamp_ms"}`, `"index"` added for records
//! that fan out. The value is the payload as JSON when it is JSON (written compactly, so a line
//! stays a line), else a UTF-8 string, else `{"base64": "..."}`. Encoding appends to a caller's
//! buffer: no allocation per record.

use base64::Engine as _;

use crate::record::RecordRef;
use crate::source::decode::Format;

/// Appends one line (with its `\n`) for `record` of `topic`/`partition` to `out`.
pub fn encode_line(
    out: &mut Vec<u8>,
    topic: &str,
    partition: i32,
    record: &RecordRef<'_>,
    index: Option<u32>,
) {
    out.extend_from_slice(b"{\"topic\":");
    write_json_string(out, topic);
    out.extend_from_slice(b",\"partition\":");
    write_integer(out, i64::from(partition));
    out.extend_from_slice(b",\"offset\":");
    write_integer(out, record.offset);
    if let Some(index) = index {
        out.extend_from_slice(b",\"index\":");
        write_integer(out, i64::from(index));
    }
    out.extend_from_slice(b",\"key\":");
    match record.key {
        // A key is a string: bytes that are not UTF-8 are replaced (U+FFFD), as documented.
        Some(key) => write_json_string(out, &String::from_utf8_lossy(key)),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"value\":");
    write_value(out, record.value);
    out.extend_from_slice(b",\"timestamp_ms\":");
    match record.timestamp_ms {
        Some(ms) => write_integer(out, ms),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}\n");
}

/// The payload as JSON when it parses as JSON, else a string, else base64.
pub(crate) fn write_value(out: &mut Vec<u8>, payload: &[u8]) {
    if !payload.is_empty() && Format::Json.check(payload).is_ok() {
        write_compact_json(out, payload);
    } else if let Ok(text) = std::str::from_utf8(payload) {
        write_json_string(out, text);
    } else {
        out.extend_from_slice(b"{\"base64\":\"");
        append_base64(out, payload);
        out.extend_from_slice(b"\"}");
    }
}

/// Copies valid JSON without the whitespace outside strings (a pretty-printed payload would
/// otherwise span lines).
fn write_compact_json(out: &mut Vec<u8>, json: &[u8]) {
    let mut in_string = false;
    let mut escaped = false;
    for &byte in json {
        if in_string {
            out.push(byte);
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else if byte == b'"' {
            in_string = true;
            out.push(byte);
        } else if !matches!(byte, b' ' | b'\n' | b'\r' | b'\t') {
            out.push(byte);
        }
    }
}

fn write_json_string(out: &mut Vec<u8>, text: &str) {
    // serde_json's writer escapes exactly as JSON needs; writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

fn write_integer(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Appends the standard base64 of `input` to `out`.
fn append_base64(out: &mut Vec<u8>, input: &[u8]) {
    let engine = &base64::engine::general_purpose::STANDARD;
    let start = out.len();
    out.resize(
        start + base64::encoded_len(input.len(), true).unwrap_or(0),
        0,
    );
    let written = engine.encode_slice(input, &mut out[start..]).unwrap_or(0);
    out.truncate(start + written);
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn line(record: RecordRef<'_>, index: Option<u32>) -> Value {
        let mut out = Vec::new();
        encode_line(&mut out, "events", 3, &record, index);
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1, "one line");
        assert_eq!(out.last(), Some(&b'\n'));
        serde_json::from_slice(&out).expect("the line is JSON")
    }

    fn record<'a>(key: Option<&'a [u8]>, value: &'a [u8]) -> RecordRef<'a> {
        RecordRef {
            offset: 42,
            timestamp_ms: Some(1_700_000_000_000),
            key,
            value,
            index: None,
        }
    }

    #[test]
    fn json_payloads_stay_json_on_one_line() {
        let pretty = b"{\n  \"amount\": 12.5,\n  \"note\": \"a b\\n\\\"c\\\"\"\n}";
        assert_eq!(
            line(record(Some(b"k1"), pretty), None),
            json!({"topic": "events", "partition": 3, "offset": 42, "key": "k1",
                   "value": {"amount": 12.5, "note": "a b\n\"c\""}, "timestamp_ms": 1_700_000_000_000i64})
        );
    }

    #[test]
    fn text_and_binary_payloads() {
        let text = line(record(None, b"not json {"), Some(2));
        assert_eq!(text["value"], json!("not json {"));
        assert_eq!(text["key"], Value::Null);
        assert_eq!(text["index"], json!(2));
        let binary = line(record(None, &[0xff, 0x00, 0xfe]), None);
        assert_eq!(binary["value"], json!({"base64": "/wD+"}));
        // Found by the record_json fuzz target: a JSON string holding bytes that are no
        // UTF-8 is no JSON, and the line stays UTF-8.
        let torn = line(record(None, b"\"\xff\""), None);
        assert_eq!(torn["value"], json!({"base64": "Iv8i"}));
        let empty = line(record(None, b""), None);
        assert_eq!(empty["value"], json!(""));
        let bare = line(record(None, b"17"), None);
        assert_eq!(bare["value"], json!(17));
    }
}
