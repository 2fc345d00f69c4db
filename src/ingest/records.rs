//! Records cut out of what clients send (a JSON array, NDJSON, a MessagePack array, or one
//! socket frame), each re-encoded in the topic's format with its key taken from a JSON field,
//! all into one buffer per request or batch.

use std::ops::Range;

use serde::Deserialize;
use serde_json::Value;
use streamvisor_actors::FieldPath;
use streamvisor_actors::PushRecord;
use streamvisor_actors::MAX_MSGPACK_DEPTH;
use thiserror::Error;

use crate::config::ValueFormat;

/// A body or a record that cannot be taken; the message names where.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    /// The whole body does not parse.
    #[error("{0}")]
    Body(String),
    /// One record is wrong.
    #[error("record {index}: {why}")]
    Record {
        /// Its index (0-based) in the request, or its line (1-based) in NDJSON.
        index: usize,
        /// What is wrong.
        why: String,
    },
}

/// How a body's records are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json`: an array of records.
    JsonArray,
    /// `application/x-ndjson`: a record per line.
    Ndjson,
    /// `application/msgpack`: an array of records.
    MsgpackArray,
}

impl BodyFormat {
    /// The format of a `Content-Type` (parameters such as `charset` ignored).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        match essence.to_ascii_lowercase().as_str() {
            "application/json" => Some(BodyFormat::JsonArray),
            "application/x-ndjson" => Some(BodyFormat::Ndjson),
            "application/msgpack" | "application/x-msgpack" => Some(BodyFormat::MsgpackArray),
            _ => None,
        }
    }
}

/// Records ready for the producer: keys and values in one buffer.
#[derive(Debug, Default)]
pub struct Encoded {
    data: Vec<u8>,
    spans: Vec<(Option<Range<usize>>, Range<usize>)>,
}

impl Encoded {
    /// How many records.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Forgets the records, keeping the buffers.
    pub fn clear(&mut self) {
        self.data.clear();
        self.spans.clear();
    }

    /// The records, as the push source takes them.
    pub fn records(&self) -> impl Iterator<Item = PushRecord<'_>> + '_ {
        self.spans.iter().map(|(key, value)| {
            (
                key.clone().map(|key| &self.data[key]),
                &self.data[value.clone()],
            )
        })
    }
}

/// Encodes records for one ingest source: its key field and the topic's format.
#[derive(Debug, Clone)]
pub struct RecordEncoder {
    key: Option<FieldPath>,
    format: ValueFormat,
}

impl RecordEncoder {
    /// An encoder taking keys from the field path `key` (`card.id`).
    pub fn new(key: Option<FieldPath>, format: ValueFormat) -> Self {
        RecordEncoder { key, format }
    }

    /// Parses a request body and appends its records to `out`.
    pub fn body(
        &self,
        format: BodyFormat,
        body: &[u8],
        out: &mut Encoded,
    ) -> Result<(), RecordError> {
        match format {
            BodyFormat::JsonArray => {
                let records: Vec<Value> = serde_json::from_slice(body).map_err(|error| {
                    RecordError::Body(format!("expected a JSON array of records: {error}"))
                })?;
                self.all(records, out)
            }
            BodyFormat::MsgpackArray => {
                let mut decoder = rmp_serde::Deserializer::new(body);
                decoder.set_max_depth(MAX_MSGPACK_DEPTH);
                let records = Vec::<Value>::deserialize(&mut decoder).map_err(|error| {
                    RecordError::Body(format!("expected a MessagePack array of records: {error}"))
                })?;
                self.all(records, out)
            }
            BodyFormat::Ndjson => {
                for (line, text) in body.split(|byte| *byte == b'\n').enumerate() {
                    if text.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    self.json(text, out).map_err(|why| RecordError::Record {
                        index: line + 1,
                        why: format!("(line {}) {why}", line + 1),
                    })?;
                }
                Ok(())
            }
        }
    }

    fn all(&self, records: Vec<Value>, out: &mut Encoded) -> Result<(), RecordError> {
        for (index, record) in records.iter().enumerate() {
            self.value(record, out)
                .map_err(|why| RecordError::Record { index, why })?;
        }
        Ok(())
    }

    /// Appends one JSON record (an NDJSON line); the error says what is wrong with it.
    pub fn json(&self, text: &[u8], out: &mut Encoded) -> Result<(), String> {
        let record: Value =
            serde_json::from_slice(text).map_err(|error| format!("not JSON: {error}"))?;
        self.value(&record, out)
    }

    /// Appends one MessagePack record (a socket frame).
    pub fn msgpack(&self, frame: &[u8], out: &mut Encoded) -> Result<(), String> {
        let mut decoder = rmp_serde::Deserializer::new(frame);
        decoder.set_max_depth(MAX_MSGPACK_DEPTH);
        let record = Value::deserialize(&mut decoder)
            .map_err(|error| format!("not MessagePack: {error}"))?;
        self.value(&record, out)
    }

    /// Appends `record`: its key, then its value in the topic's format.
    fn value(&self, record: &Value, out: &mut Encoded) -> Result<(), String> {
        let mark = out.data.len();
        let key = match &self.key {
            None => None,
            Some(path) => {
                let start = out.data.len();
                match path.get(record) {
                    Some(Value::String(text)) => out.data.extend_from_slice(text.as_bytes()),
                    Some(Value::Number(number)) => {
                        out.data.extend_from_slice(number.to_string().as_bytes())
                    }
                    Some(_) => {
                        return Err(format!(
                            "key field `{path}` is neither a string nor a number"
                        ))
                    }
                    None => return Err(format!("key field `{path}` is missing")),
                }
                Some(start..out.data.len())
            }
        };
        let start = out.data.len();
        let written = match self.format {
            ValueFormat::Json => {
                serde_json::to_writer(&mut out.data, record).map_err(|e| e.to_string())
            }
            ValueFormat::Msgpack => {
                rmp_serde::encode::write_named(&mut out.data, record).map_err(|e| e.to_string())
            }
        };
        if let Err(why) = written {
            out.data.truncate(mark);
            return Err(format!("cannot encode: {why}"));
        }
        out.spans.push((key, start..out.data.len()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(encoded: &Encoded) -> Vec<(Option<String>, String)> {
        encoded
            .records()
            .map(|(key, value)| {
                (
                    key.map(|key| String::from_utf8_lossy(key).into_owned()),
                    String::from_utf8_lossy(value).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_json_array_gives_keyed_records() {
        let encoder = RecordEncoder::new(
            Some(FieldPath::parse("card.id").expect("path")),
            ValueFormat::Json,
        );
        let mut out = Encoded::default();
        let body = br#"[{"card": {"id": "c1"}, "amount": 5}, {"card": {"id": 42}}]"#;
        encoder
            .body(BodyFormat::JsonArray, body, &mut out)
            .expect("valid");
        assert_eq!(
            records(&out),
            [
                (
                    Some("c1".into()),
                    r#"{"amount":5,"card":{"id":"c1"}}"#.into()
                ),
                (Some("42".into()), r#"{"card":{"id":42}}"#.into()),
            ]
        );
    }

    #[test]
    fn bad_bodies_and_records_are_named() {
        let encoder = RecordEncoder::new(
            Some(FieldPath::parse("card").expect("path")),
            ValueFormat::Json,
        );
        let mut out = Encoded::default();
        let error = encoder
            .body(BodyFormat::JsonArray, b"[{\"card\": \"a\"}, ", &mut out)
            .expect_err("truncated");
        assert!(
            matches!(error, RecordError::Body(ref why) if why.starts_with("expected a JSON array")),
            "{error}"
        );
        let error = encoder
            .body(BodyFormat::JsonArray, br#"{"card": "a"}"#, &mut out)
            .expect_err("not an array");
        assert!(matches!(error, RecordError::Body(_)), "{error}");
        out.clear();
        let error = encoder
            .body(
                BodyFormat::JsonArray,
                br#"[{"card": "a"}, {"amount": 1}]"#,
                &mut out,
            )
            .expect_err("no key");
        assert_eq!(
            error,
            RecordError::Record {
                index: 1,
                why: "key field `card` is missing".into()
            }
        );
        out.clear();
        let error = encoder
            .body(
                BodyFormat::Ndjson,
                b"{\"card\": \"a\"}\n\n{\"card\": [1]}\n",
                &mut out,
            )
            .expect_err("array key");
        assert_eq!(
            error.to_string(),
            "record 3: (line 3) key field `card` is neither a string nor a number"
        );
    }

    #[test]
    fn ndjson_and_msgpack_bodies() {
        let encoder = RecordEncoder::new(None, ValueFormat::Msgpack);
        let mut out = Encoded::default();
        encoder
            .body(
                BodyFormat::Ndjson,
                b"{\"a\": 1}\r\n  \n{\"a\": 2}",
                &mut out,
            )
            .expect("valid");
        assert_eq!(out.len(), 2);
        let packed = rmp_serde::to_vec_named(&vec![serde_json::json!({"a": 3})]).expect("encodes");
        encoder
            .body(BodyFormat::MsgpackArray, &packed, &mut out)
            .expect("valid");
        let values: Vec<Value> = out
            .records()
            .map(|(key, value)| {
                assert_eq!(key, None);
                rmp_serde::from_slice(value).expect("msgpack")
            })
            .collect();
        assert_eq!(
            values,
            [
                serde_json::json!({"a": 1}),
                serde_json::json!({"a": 2}),
                serde_json::json!({"a": 3})
            ]
        );
        let bomb = vec![0x91u8; 10_000];
        assert!(encoder
            .body(BodyFormat::MsgpackArray, &bomb, &mut out)
            .is_err());
    }

    #[test]
    fn content_types() {
        assert_eq!(
            BodyFormat::from_content_type("application/json; charset=utf-8"),
            Some(BodyFormat::JsonArray)
        );
        assert_eq!(
            BodyFormat::from_content_type("application/x-ndjson"),
            Some(BodyFormat::Ndjson)
        );
        assert_eq!(
            BodyFormat::from_content_type("application/msgpack"),
            Some(BodyFormat::MsgpackArray)
        );
        assert_eq!(BodyFormat::from_content_type("text/plain"), None);
    }
}
