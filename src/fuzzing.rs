//! Entry points for the fuzz targets of `fuzz/` (the `fuzzing` feature): the ingest's record
//! decoding, a socket connection's framing and the body of `POST /api/actors/kill`, run on
//! fuzzer bytes with the checks their documentation promises. Nothing here is for production
//! use.
//!
//! - [`ingest_json`], [`ingest_msgpack`]: records decoded as the ingest decodes them (REST
//!   bodies and socket records) and landed in either topic format;
//! - [`socket`]: a connection's bytes cut into records (NDJSON or length-prefixed MessagePack);
//! - [`kill_body`]: the kill route's body, then its path as the registry kills it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::FutureExt;
use streamvisor_actors::{FieldPath, Format};
use streamvisor_supervision::{Registry, SupervisionError};
use tokio::io::{AsyncRead, BufReader, ReadBuf};

use crate::config::{Framing, ValueFormat, DEFAULT_MAX_RECORD};
use crate::http::KillRequest;
use crate::ingest::records::{BodyFormat, Encoded, RecordEncoder};
use crate::ingest::socket::{complete_record_buffered, next_record, Frame};

/// Decodes `bytes` as the ingest decodes JSON: a socket's NDJSON record
/// (`RecordEncoder::json`) and a REST body, a JSON array or NDJSON (`RecordEncoder::body`).
/// Checks that a record the ingest takes is one a JSON source takes too, and that every record
/// landed passes the check of a source of its topic's format.
pub fn ingest_json(bytes: &[u8]) {
    for (encoder, format) in encoders() {
        let mut out = Encoded::default();
        if encoder.json(bytes, &mut out).is_ok() {
            assert!(
                Format::Json.check(bytes).is_ok(),
                "the ingest took a JSON record that a JSON source refuses"
            );
        }
        let _ = encoder.body(BodyFormat::JsonArray, bytes, &mut out);
        let _ = encoder.body(BodyFormat::Ndjson, bytes, &mut out);
        check_landed(&out, format);
    }
}

/// Decodes `bytes` as the ingest decodes MessagePack: a socket's frame
/// (`RecordEncoder::msgpack`) and a REST body of an array (`RecordEncoder::body`). Checks that a
/// record the ingest takes is one a MessagePack source takes too, and that every record landed
/// passes the check of a source of its topic's format.
pub fn ingest_msgpack(bytes: &[u8]) {
    for (encoder, format) in encoders() {
        let mut out = Encoded::default();
        if encoder.msgpack(bytes, &mut out).is_ok() {
            assert!(
                Format::Msgpack.check(bytes).is_ok(),
                "the ingest took a MessagePack record that a MessagePack source refuses"
            );
        }
        let _ = encoder.body(BodyFormat::MsgpackArray, bytes, &mut out);
        check_landed(&out, format);
    }
}

/// Reads a client's bytes as a socket connection does (`next_record`) and checks that:
///
/// - the records, and how the stream ends, are those `socket.rs` documents for `framing`;
/// - when the stream's client goes silent instead of closing, a record that
///   `complete_record_buffered` says is buffered whole is read without waiting (a connection
///   reads those on into its batch without the idle timeout);
/// - each record goes through the ingest's decoding as [`ingest_json`] or [`ingest_msgpack`].
///
/// `input` is the read buffer's size (byte 0: 1 to 255 bytes, or the connection's 64 KiB at
/// 255), the record limit (byte 1: 1 to 2,033 bytes in steps of 8, or the default `max_record`
/// at 255), then the bytes the client sent.
pub fn socket(framing: Framing, input: &[u8]) {
    let [buffer, limit, stream @ ..] = input else {
        return;
    };
    let buffer = match buffer {
        255 => 64 * 1024,
        size => 1 + usize::from(*size),
    };
    let limit = match limit {
        255 => DEFAULT_MAX_RECORD,
        steps => 1 + 8 * usize::from(*steps),
    };
    let read = read_to_end(stream, framing, buffer, limit);
    let documented = match framing {
        Framing::Ndjson => ndjson_reads(stream, limit),
        Framing::Msgpack => msgpack_reads(stream, limit),
    };
    for (index, (read, documented)) in read.iter().zip(&documented).enumerate() {
        assert_eq!(
            read, documented,
            "{framing:?} read {index} (read buffer {buffer}, limit {limit})"
        );
    }
    assert_eq!(
        read.len(),
        documented.len(),
        "{framing:?} reads (read buffer {buffer}, limit {limit})"
    );
    read_from_silent_client(stream, framing, buffer, limit);
    for record in read.iter().filter_map(Read::record) {
        match framing {
            Framing::Ndjson => ingest_json(record),
            Framing::Msgpack => ingest_msgpack(record),
        }
    }
}

/// Reads `body` as `POST /api/actors/kill` does (`KillRequest::parse`), then kills its path in
/// an empty registry as the runtime does (`Registry::kill`): checks that nothing is killed, the
/// root is refused as the root and an unknown path is named as written.
pub fn kill_body(body: &[u8]) {
    let Ok((path, mode)) = KillRequest::parse(body) else {
        return;
    };
    match Registry::default().kill(&path, mode) {
        Err(SupervisionError::KillRoot) => assert_eq!(path, "/", "refused as the root"),
        Err(SupervisionError::UnknownPath(named)) => {
            assert_eq!(named, path, "an unknown path is named as written");
        }
        Err(SupervisionError::InvalidPath { .. }) => {}
        other => panic!("killing {path:?} in an empty registry gave {other:?}"),
    }
}

/// The ingest's encoders a record is tried with: each topic format, with and without a key
/// field (`id`), with the check of a source of that format.
fn encoders() -> Vec<(RecordEncoder, Format)> {
    let key = FieldPath::parse("id").expect("a valid field path");
    [
        (ValueFormat::Json, Format::Json),
        (ValueFormat::Msgpack, Format::Msgpack),
    ]
    .into_iter()
    .flat_map(|(value, format)| {
        [
            (RecordEncoder::new(None, value), format),
            (RecordEncoder::new(Some(key.clone()), value), format),
        ]
    })
    .collect()
}

/// Checks that every record `out` holds passes `format`'s check: the ingest never lands a
/// record that the pipeline reading its topic dead-letters for its format.
fn check_landed(out: &Encoded, format: Format) {
    for (index, (_, value)) in out.records().enumerate() {
        if let Err(why) = format.check(value) {
            panic!("record {index} landed as {format:?} fails a {format:?} source's check: {why}");
        }
    }
}

/// One read of a connection, as compared with the documentation.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    Record(Vec<u8>),
    TooLong,
    End,
    /// The connection ends with an error.
    Broken,
}

impl Read {
    fn record(&self) -> Option<&[u8]> {
        match self {
            Read::Record(record) => Some(record),
            _ => None,
        }
    }
}

/// Every read of a connection that sent `stream` and closed.
fn read_to_end(stream: &[u8], framing: Framing, buffer: usize, limit: usize) -> Vec<Read> {
    let mut reader = BufReader::with_capacity(buffer, stream);
    let mut record = Vec::new();
    let mut reads = Vec::new();
    loop {
        let next = next_record(&mut reader, framing, limit, &mut record)
            .now_or_never()
            .expect("reading bytes held in memory never waits");
        let read = match next {
            Ok(Frame::Record) => Read::Record(record.clone()),
            Ok(Frame::TooLong) => Read::TooLong,
            Ok(Frame::End) => Read::End,
            Err(_) => Read::Broken,
        };
        let last = matches!(read, Read::End | Read::Broken);
        reads.push(read);
        assert!(
            reads.len() <= stream.len() + 1,
            "{framing:?}: more reads than bytes"
        );
        if last {
            return reads;
        }
    }
}

/// The reads of an NDJSON stream as `socket.rs` documents them: a record a line (without its
/// `\n`, the last one taken without it too), blank lines skipped, a line over `limit` bytes
/// skipped and counted as too long; then the end.
fn ndjson_reads(stream: &[u8], limit: usize) -> Vec<Read> {
    let mut reads: Vec<Read> = stream
        .split(|byte| *byte == b'\n')
        .filter_map(|line| {
            if line.len() > limit {
                Some(Read::TooLong)
            } else if line.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                Some(Read::Record(line.to_vec()))
            }
        })
        .collect();
    reads.push(Read::End);
    reads
}

/// The reads of a length-prefixed MessagePack stream as `socket.rs` documents them: a 4-byte
/// big-endian length, then that many bytes; a length over `limit` or a frame cut short ends
/// the connection; a stream that ends within a length ends it cleanly.
fn msgpack_reads(mut stream: &[u8], limit: usize) -> Vec<Read> {
    let mut reads = Vec::new();
    loop {
        let Some((length, rest)) = stream.split_first_chunk::<4>() else {
            reads.push(Read::End);
            return reads;
        };
        let length = u32::from_be_bytes(*length) as usize;
        if length > limit || rest.len() < length {
            reads.push(Read::Broken);
            return reads;
        }
        let (record, rest) = rest.split_at(length);
        reads.push(Read::Record(record.to_vec()));
        stream = rest;
    }
}

/// Reads what a client sent before going silent with its connection open, as a connection
/// gathers a batch: once a record is said to be buffered whole, reading it must not wait.
fn read_from_silent_client(stream: &[u8], framing: Framing, buffer: usize, limit: usize) {
    let mut reader = BufReader::with_capacity(buffer, SilentClient(stream));
    let mut record = Vec::new();
    loop {
        let buffered = complete_record_buffered(&reader, framing);
        match next_record(&mut reader, framing, limit, &mut record).now_or_never() {
            Some(Ok(Frame::Record | Frame::TooLong)) => {}
            Some(Ok(Frame::End) | Err(_)) => return,
            None => {
                assert!(
                    !buffered,
                    "{framing:?}: a record said to be buffered whole waited for the client \
                     (read buffer {buffer}, limit {limit})"
                );
                return;
            }
        }
    }
}

/// A client that sent its bytes and then stays silent with its connection open: a read past
/// them is pending (and never woken: each read is polled once).
struct SilentClient<'a>(&'a [u8]);

impl AsyncRead for SilentClient<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let unread = self.0;
        if unread.is_empty() {
            return Poll::Pending;
        }
        let (sent, rest) = unread.split_at(unread.len().min(buf.remaining()));
        buf.put_slice(sent);
        self.0 = rest;
        Poll::Ready(Ok(()))
    }
}
