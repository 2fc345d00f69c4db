//! Sending records in the open transaction: origin headers as in the at-least-once sink, a tag
//! per record for its delivery report ([`SentLog`]), a full queue waited out, and a record the
//! producer refuses at once for what it is kept aside (the transaction then aborts, see
//! [`super::refusals`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::message::Headers;
use rdkafka::producer::{BaseRecord, Producer};

use super::refusals::{self, RecordId, Reported, SentLog};
use super::{TxnProducer, CALL_TIMEOUT};
use crate::record::Batch;
use crate::sink::produce::{origin_headers, with_index, ProduceError};

/// What the open transaction sent, and what the producer refused.
#[derive(Debug, Default)]
pub(super) struct Sends {
    /// The records sent in the open transaction, by tag.
    pub sent: SentLog,
    /// Records refused (at once, or alone as the delivery reports named them), to go to the
    /// dead letters before the next transaction.
    pub refused: Vec<(RecordId, String)>,
    /// Records refused in a message set with others: each goes alone in the next transaction.
    pub suspects: Vec<RecordId>,
}

/// Waits until everything sent has its delivery report served, or a refusal is reported (with
/// `reported`: the transaction must abort then, and waiting on would only wait for its records
/// to time out), or [`CALL_TIMEOUT`] passes (an error).
pub(super) fn wait_delivered(
    producer: &TxnProducer,
    reported: Option<&Reported>,
) -> Result<(), KafkaError> {
    // Sends what lingers now.
    let _ = producer.flush(Duration::ZERO);
    let deadline = Instant::now() + CALL_TIMEOUT;
    loop {
        let refused = || {
            reported.is_some_and(|reported| {
                reported
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .iter()
                    .any(|(_, refusal)| refusal.is_some())
            })
        };
        if producer.in_flight_count() == 0 || refused() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return producer.flush(Duration::ZERO);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl Sends {
    /// Sends the records of `batch` to `topic`, waiting while the producer's queue is full (as
    /// long as `alive`).
    pub(super) fn send(
        &mut self,
        producer: &TxnProducer,
        reported: &Reported,
        topic: &str,
        alive: &AtomicBool,
        batch: &Batch,
    ) -> Result<(), KafkaError> {
        let partition = batch.partition().to_string();
        for record in batch.iter() {
            let id = RecordId {
                partition: batch.partition(),
                incarnation: batch.incarnation(),
                offset: record.offset,
                index: record.index,
            };
            // A suspect goes in a message set of its own: what is queued leaves first, and it
            // leaves before anything else is queued.
            let alone = !self.suspects.is_empty() && self.suspects.contains(&id);
            if alone {
                wait_delivered(producer, Some(reported))?;
            }
            let mut digits = itoa::Buffer::new();
            let offset = digits.format(record.offset);
            let headers = with_index(
                origin_headers(batch.topic(), &partition, offset, 1),
                record.index,
            );
            let bytes = refusals::alone_batch_bytes(
                record.key.map(<[u8]>::len),
                record.value.len(),
                headers
                    .iter()
                    .map(|header| (header.key.len(), header.value.map_or(0, <[u8]>::len))),
            );
            let mut message: BaseRecord<'_, [u8], [u8], usize> =
                BaseRecord::with_opaque_to(topic, self.sent.tag(id, alone, bytes))
                    .payload(record.value)
                    .headers(headers);
            if let Some(key) = record.key {
                message = message.key(key);
            }
            if let Some(timestamp) = record.timestamp_ms {
                message = message.timestamp(timestamp);
            }
            loop {
                match producer.send(message) {
                    Ok(()) => break,
                    Err((error, returned)) => match ProduceError::of(error.rdkafka_error_code()) {
                        ProduceError::QueueFull if alive.load(Ordering::Acquire) => {
                            message = returned;
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        ProduceError::RecordLevel => {
                            self.refused.push((id, error.to_string()));
                            break;
                        }
                        _ => return Err(error),
                    },
                }
            }
            if alone {
                wait_delivered(producer, Some(reported))?;
            }
        }
        Ok(())
    }
}
