//! The socket listener of an ingest source: NDJSON lines or length-prefixed MessagePack
//! records on TCP connections, in batches into the push source. A batch is read only once the
//! push source has room for the one before it, so while the producer's in-flight budget is
//! full (or the broker is away) the listener stops reading: senders feel TCP backpressure and
//! memory stays bounded by the budget.
//!
//! There is no answer on the connection: a record that is not valid JSON (or MessagePack) is
//! logged and counted (`streamvisor_ingest_requests_total{reason="bad_request"}`) and skipped;
//! an NDJSON line over `max_record` is skipped to its end; a MessagePack frame over it ends the
//! connection (the stream cannot be resynchronised). At most `max_connections` are served at
//! once (a new one past the cap is closed at once), and one silent for `idle_timeout` is closed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use streamvisor_actors::metrics::IngestOutcome;
use streamvisor_actors::PushRefused;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::records::Encoded;
use super::IngestPoint;
use crate::config::Framing;

/// Records gathered into one batch, at most.
const BATCH: usize = 1024;
/// How long to wait before asking again while the broker is away.
const AWAY_PAUSE: Duration = Duration::from_millis(500);

/// Serves `listener` for `point` until the task is dropped; its connections stop reading once
/// `stopping` holds (a shutdown: what they read is handed on first).
pub async fn serve(
    name: String,
    listener: TcpListener,
    point: IngestPoint,
    stopping: Arc<AtomicBool>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Ok(slot) = Arc::clone(&point.slots).try_acquire_owned() else {
                    // At the cap: closed at once, so that the served ones keep their room.
                    point.source.metrics().request(IngestOutcome::Busy);
                    tracing::debug!(ingest = %name, %peer, "socket ingest at its connection cap: closed");
                    drop(stream);
                    continue;
                };
                tracing::debug!(ingest = %name, %peer, "socket ingest connection");
                let point = point.clone();
                let name = name.clone();
                let stopping = Arc::clone(&stopping);
                tokio::spawn(async move {
                    if let Err(why) = connection(stream, &point, &stopping).await {
                        tracing::warn!(ingest = %name, %peer, %why, "socket ingest connection ended");
                    }
                    drop(slot);
                });
            }
            Err(error) => {
                tracing::warn!(ingest = %name, %error, "socket ingest could not accept");
                tokio::time::sleep(AWAY_PAUSE).await;
            }
        }
    }
}

/// Reads one connection to its end (or until `stopping`).
async fn connection(
    stream: TcpStream,
    point: &IngestPoint,
    stopping: &AtomicBool,
) -> Result<(), String> {
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let framing = point.config.framing.unwrap_or_default();
    let limit = point.config.record_limit();
    let idle = point.config.idle_deadline();
    // A batch never asks for more than the whole budget.
    let batch_limit = BATCH.min(point.config.max_in_flight).max(1);
    let mut batch = Encoded::default();
    let mut record = Vec::new();
    // Records of this connection handed on so far (a refused one is named by its place).
    let mut handed: u64 = 0;
    loop {
        if stopping.load(Ordering::Acquire) {
            return Ok(());
        }
        batch.clear();
        // One record (waiting for it), then those already buffered.
        let mut open = true;
        while batch.len() < batch_limit {
            if !batch.is_empty() && !complete_record_buffered(&reader, framing) {
                break;
            }
            // Only the batch's first record is waited for: that wait is the idle timeout's.
            let read = next_record(&mut reader, framing, limit, &mut record);
            let next = if batch.is_empty() {
                match tokio::time::timeout(idle, read).await {
                    Ok(next) => next,
                    Err(_) => {
                        tracing::debug!(
                            topic = point.source.topic(),
                            ?idle,
                            "socket ingest connection idle: closed"
                        );
                        return Ok(());
                    }
                }
            } else {
                read.await
            };
            let next = match next {
                Ok(next) => next,
                Err(why) => {
                    // What was read before goes on first.
                    if !batch.is_empty() {
                        push(point, &batch, handed).await;
                    }
                    return Err(why);
                }
            };
            match next {
                Frame::End => {
                    open = false;
                    break;
                }
                Frame::TooLong => {
                    point.source.metrics().request(IngestOutcome::TooLarge);
                    point.source.metrics().refused.increment(1);
                    tracing::warn!(
                        topic = point.source.topic(),
                        limit,
                        "socket record over max_record: skipped"
                    );
                }
                Frame::Record => {
                    let added = match framing {
                        Framing::Ndjson => point.encoder.json(&record, &mut batch),
                        Framing::Msgpack => point.encoder.msgpack(&record, &mut batch),
                    };
                    if let Err(why) = added {
                        point.source.metrics().request(IngestOutcome::BadRequest);
                        tracing::warn!(topic = point.source.topic(), %why, "socket record skipped");
                    }
                }
            }
        }
        if !batch.is_empty() {
            push(point, &batch, handed).await;
            handed += batch.len() as u64;
        }
        if !open {
            return Ok(());
        }
    }
}

/// Hands a batch to the push source, waiting (not reading) while it has no room; its first
/// record is the connection's `first_record`th handed on (counted from 0), which names a
/// record refused one by one in the log.
async fn push(point: &IngestPoint, batch: &Encoded, first_record: u64) {
    let reservation = loop {
        match point.source.reserve(batch.len()).await {
            Ok(reservation) => break reservation,
            Err(PushRefused::BrokerAway(why)) => {
                tracing::debug!(%why, "socket ingest waits for its broker");
                tokio::time::sleep(AWAY_PAUSE).await;
            }
            Err(refused) => {
                // Busy cannot come from a waiting reserve, nor TooMany from a batch within the
                // budget: wait and ask again.
                tracing::debug!(%refused, "socket ingest waits");
                tokio::time::sleep(AWAY_PAUSE).await;
            }
        }
    };
    let pending = reservation.send(batch.records());
    let metrics = point.source.metrics().clone();
    tokio::spawn(async move {
        match pending.acknowledged().await {
            Ok(pushed) if pushed.refused.is_empty() => metrics.request(IngestOutcome::Accepted),
            Ok(pushed) => {
                metrics.request(IngestOutcome::PartlyRefused);
                metrics.refused.increment(pushed.refused.len() as u64);
                for refused in &pushed.refused {
                    tracing::error!(
                        record = first_record + refused.index as u64,
                        why = %refused.why,
                        "socket ingest: a record was refused for what it is; the others went on"
                    );
                }
            }
            Err(why) => {
                metrics.request(IngestOutcome::Failed);
                tracing::error!(%why, "socket ingest records not acknowledged by the broker");
            }
        }
    });
}

pub(crate) enum Frame {
    Record,
    TooLong,
    End,
}

/// Whether a whole record is in the read buffer (so reading it will not wait).
pub(crate) fn complete_record_buffered<R: tokio::io::AsyncRead>(
    reader: &BufReader<R>,
    framing: Framing,
) -> bool {
    let buffered = reader.buffer();
    match framing {
        Framing::Ndjson => {
            // A blank line is no record (reading skips it): a record ends at a newline.
            let mut lines = buffered.split(|byte| *byte == b'\n');
            lines.next_back(); // the line not ended yet
            lines.any(|line| !line.iter().all(u8::is_ascii_whitespace))
        }
        Framing::Msgpack => {
            buffered.len() >= 4
                && buffered.len() - 4
                    >= u32::from_be_bytes([buffered[0], buffered[1], buffered[2], buffered[3]])
                        as usize
        }
    }
}

/// Reads the next record into `record`.
pub(crate) async fn next_record<R>(
    reader: &mut BufReader<R>,
    framing: Framing,
    limit: usize,
    record: &mut Vec<u8>,
) -> Result<Frame, String>
where
    R: tokio::io::AsyncRead + Unpin,
{
    record.clear();
    match framing {
        Framing::Ndjson => loop {
            let available = reader.fill_buf().await.map_err(|e| e.to_string())?;
            if available.is_empty() {
                // Too long first: a record cut at the limit may hold only blanks so far.
                return Ok(if record.len() > limit {
                    Frame::TooLong
                } else if record.iter().all(u8::is_ascii_whitespace) {
                    Frame::End
                } else {
                    Frame::Record
                });
            }
            let (line, ends) = match available.iter().position(|byte| *byte == b'\n') {
                Some(at) => (&available[..at], Some(at + 1)),
                None => (available, None),
            };
            if record.len() <= limit {
                let room = (limit + 1 - record.len()).min(line.len());
                record.extend_from_slice(&line[..room]);
            }
            let consumed = ends.unwrap_or(available.len());
            reader.consume(consumed);
            if ends.is_some() {
                if record.len() > limit {
                    return Ok(Frame::TooLong);
                }
                if record.iter().all(u8::is_ascii_whitespace) {
                    record.clear();
                    continue; // a blank line
                }
                return Ok(Frame::Record);
            }
        },
        Framing::Msgpack => {
            let mut length = [0u8; 4];
            match reader.read_exact(&mut length).await {
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Ok(Frame::End)
                }
                Err(error) => return Err(error.to_string()),
            }
            let length = u32::from_be_bytes(length) as usize;
            if length > limit {
                return Err(format!(
                    "a MessagePack frame of {length} bytes is over max_record ({limit})"
                ));
            }
            record.resize(length, 0);
            reader
                .read_exact(record)
                .await
                .map_err(|error| format!("a frame cut short: {error}"))?;
            Ok(Frame::Record)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::FutureExt;
    use tokio::io::AsyncWriteExt;

    use super::*;

    /// Found by the socket_ndjson fuzz target: a blank line after a record counted as a whole
    /// record buffered, so the connection read on and the record waited for the client's next
    /// bytes (for ever, with a quiet client).
    #[tokio::test]
    async fn a_blank_line_is_no_record_buffered() {
        let (mut client, server) = tokio::io::duplex(1024);
        client.write_all(b"{\"a\":1}\n\n").await.expect("sent");
        let mut reader = BufReader::new(server);
        let mut record = Vec::new();
        let frame = next_record(&mut reader, Framing::Ndjson, 100, &mut record).await;
        assert!(matches!(frame, Ok(Frame::Record)));
        assert_eq!(record, b"{\"a\":1}");
        assert!(
            !complete_record_buffered(&reader, Framing::Ndjson),
            "only a blank line is left"
        );
        let next = next_record(&mut reader, Framing::Ndjson, 100, &mut record);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), next)
                .await
                .is_err(),
            "reading on waits for the client"
        );
        drop(client);
    }

    /// Found by the socket_ndjson fuzz target: a last line past the limit whose first bytes are
    /// blanks ended the stream instead of being refused (and counted) as too long.
    #[test]
    fn a_long_last_line_starting_with_blanks_is_too_long() {
        let mut reader = BufReader::new(&b"   {\"a\":1}"[..]);
        let mut record = Vec::new();
        let frame = next_record(&mut reader, Framing::Ndjson, 2, &mut record).now_or_never();
        assert!(matches!(frame, Some(Ok(Frame::TooLong))));
    }
}
