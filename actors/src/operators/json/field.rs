//! A field's value as a key (for `key_by`: its bytes) or as a number (for the aggregates).

use std::io::Write;

use serde_json::Value;

use super::path::FieldPath;

/// Writes the key of `value` at `path` into `key` (cleared first), reusing its allocation:
/// a string gives its UTF-8 bytes, a number its JSON text as parsed (`7`, `-3`, `1.5`; so `1`
/// and `1.0` are different keys). Returns false, `key` left empty, when the field is missing
/// or holds anything else (null, a boolean, an array, an object).
pub fn write_key(value: &Value, path: &FieldPath, key: &mut Vec<u8>) -> bool {
    key.clear();
    match path.get(value) {
        Some(Value::String(text)) => {
            key.extend_from_slice(text.as_bytes());
            true
        }
        Some(Value::Number(number)) => write!(key, "{number}").is_ok(),
        _ => false,
    }
}

/// The number at `path` in `value`, as an `f64` (integers beyond 2^53 lose precision);
/// `None` when the field is missing or not a JSON number (a string of digits is not one).
pub(crate) fn number_of(value: &Value, path: &FieldPath) -> Option<f64> {
    path.get(value)?.as_f64()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    /// The key of `value` at `path`, as [`write_key`] writes it, in a new buffer.
    fn key_of(value: &Value, path: &FieldPath) -> Option<Vec<u8>> {
        let mut key = Vec::new();
        write_key(value, path, &mut key).then_some(key)
    }

    use super::*;

    fn path(path: &str) -> FieldPath {
        FieldPath::parse(path).expect("a valid path")
    }

    fn record() -> Value {
        json!({
            "user": "ana",
            "shard": 7,
            "delta": -3,
            "ratio": 1.5,
            "whole": 1.0,
            "flag": true,
            "none": null,
            "tags": ["x"],
            "meta": { "region": "eu" },
            "digits": "42"
        })
    }

    #[test]
    fn strings_and_numbers_give_keys() {
        let record = record();
        let key = |field| key_of(&record, &path(field));
        assert_eq!(key("user"), Some(b"ana".to_vec()));
        assert_eq!(key("meta.region"), Some(b"eu".to_vec()));
        assert_eq!(key("shard"), Some(b"7".to_vec()));
        assert_eq!(key("delta"), Some(b"-3".to_vec()));
        assert_eq!(key("ratio"), Some(b"1.5".to_vec()));
        assert_eq!(key("whole"), Some(b"1.0".to_vec()));
        assert_eq!(key("digits"), Some(b"42".to_vec()));
    }

    #[test]
    fn other_values_give_no_key() {
        let record = record();
        for field in ["flag", "none", "tags", "meta", "absent"] {
            assert_eq!(key_of(&record, &path(field)), None, "{field}");
        }
    }

    #[test]
    fn a_reused_buffer_is_cleared() {
        let record = record();
        let mut key = b"left over".to_vec();
        assert!(write_key(&record, &path("shard"), &mut key));
        assert_eq!(key, b"7");
        assert!(!write_key(&record, &path("flag"), &mut key));
        assert!(key.is_empty());
    }

    #[test]
    fn numbers() {
        let record = record();
        let number = |field| number_of(&record, &path(field));
        assert_eq!(number("shard"), Some(7.0));
        assert_eq!(number("delta"), Some(-3.0));
        assert_eq!(number("ratio"), Some(1.5));
        assert_eq!(number("digits"), None);
        assert_eq!(number("flag"), None);
        assert_eq!(number("absent"), None);
    }
}
