//! The source's `format`: whether a record's payload decodes (JSON, MessagePack with a nesting
//! limit, or any bytes). A record that does not goes to the dead letters.

use serde::de::IgnoredAny;
use serde::Deserialize;

/// MessagePack nesting deeper than this is refused (a bomb of nested arrays is not a record).
pub const MAX_MSGPACK_DEPTH: usize = 128;

/// A source's record format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// UTF-8 JSON.
    Json,
    /// MessagePack.
    Msgpack,
    /// Anything.
    Bytes,
}

impl Format {
    /// Parses `"json"`, `"msgpack"` or `"bytes"`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "json" => Some(Format::Json),
            "msgpack" => Some(Format::Msgpack),
            "bytes" => Some(Format::Bytes),
            _ => None,
        }
    }

    /// `Err` with the decoder's message when `payload` is not a record in this format.
    pub fn check(self, payload: &[u8]) -> Result<(), String> {
        match self {
            Format::Bytes => Ok(()),
            // UTF-8 first: serde_json skips over a string's bytes without checking them.
            Format::Json => std::str::from_utf8(payload)
                .map_err(|error| format!("not JSON: not UTF-8: {error}"))
                .and_then(|text| {
                    serde_json::from_str::<IgnoredAny>(text)
                        .map(drop)
                        .map_err(|error| format!("not JSON: {error}"))
                }),
            Format::Msgpack => {
                let mut decoder = rmp_serde::Deserializer::new(payload);
                decoder.set_max_depth(MAX_MSGPACK_DEPTH);
                IgnoredAny::deserialize(&mut decoder)
                    .map(drop)
                    .map_err(|error| format!("not MessagePack: {error}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert!(Format::Json.check(br#"{"a": [1, 2]}"#).is_ok());
        assert!(Format::Json.check(b"{\"a\": ").is_err());
        // Found by the record_json fuzz target: bytes that are no UTF-8 inside a string.
        assert!(Format::Json
            .check(b"\"\xff\"")
            .is_err_and(|error| error.contains("UTF-8")));
        assert!(Format::Bytes.check(&[0xff, 0x00]).is_ok());
        let packed = rmp_serde::to_vec(&("x", 1, [true])).expect("encodes");
        assert!(Format::Msgpack.check(&packed).is_ok());
        assert!(
            Format::Msgpack.check(&[0xc1]).is_err(),
            "0xc1 is never used in MessagePack"
        );
        let bomb = vec![0x91u8; 10_000]; // arrays of one array, 10,000 deep
        assert!(Format::Msgpack.check(&bomb).is_err());
    }
}
