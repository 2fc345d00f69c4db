//! Dead letters: a record that cannot be decoded goes to the dead-letter topic (default
//! `<pipeline>.dead-letters`) with the headers of DESIGN.md, and is acknowledged once the broker
//! has it (idempotent producer, acks=all); the partition goes on. A dead letter the broker refuses
//! rewinds its partition (it will be tried again).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rdkafka::message::Header;
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use crate::record::{Batch, RecordRef};
use crate::sink::produce::{origin_headers, producer_config, with_index};
use crate::source::kafka::{SourceHandle, SourceInput};

/// Why a record went to the dead letters: the `reason` label of `streamvisor_dead_letters_total`
/// and the `streamvisor.reason` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeadLetterReason {
    /// The source could not decode it (not JSON, MessagePack too deep, ...).
    Undecodable,
    /// A stage refused it: a field missing, a function's error, a function panicking on it past
    /// its budget.
    Refused,
    /// Every window it falls in closed by event time before it came.
    Late,
    /// Its window closed before its time: the windows held the partition's cap of
    /// unacknowledged records, and the idle timeout closed them to let the partition go on.
    WindowClosedAtCap,
    /// The sink's target refused it (a row PostgreSQL will not take).
    RefusedBySink,
}

impl DeadLetterReason {
    /// Every reason, in the order of [`DeadLetterReason::index`].
    pub const ALL: [DeadLetterReason; 5] = [
        DeadLetterReason::Undecodable,
        DeadLetterReason::Refused,
        DeadLetterReason::Late,
        DeadLetterReason::WindowClosedAtCap,
        DeadLetterReason::RefusedBySink,
    ];

    /// The label and header value.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::Undecodable => "undecodable",
            DeadLetterReason::Refused => "refused",
            DeadLetterReason::Late => "late",
            DeadLetterReason::WindowClosedAtCap => "window_closed_at_cap",
            DeadLetterReason::RefusedBySink => "refused_by_sink",
        }
    }

    /// Its place in [`DeadLetterReason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Where a dead letter came from, carried to its delivery report.
#[derive(Debug)]
pub struct DeadLetterOrigin {
    /// The source to acknowledge to.
    pub source: SourceHandle,
    /// Its partition.
    pub partition: i32,
    /// The incarnation that read it.
    pub incarnation: u64,
    /// Its offset.
    pub offset: i64,
    /// The paths to a sink its delivery acknowledges (every path after the actor that sent it).
    pub paths: u32,
}

impl DeadLetterOrigin {
    /// The origin of the record at `offset` of `batch`, read by `source`, whose delivery
    /// acknowledges `paths` paths to a sink.
    pub(crate) fn of(source: &SourceHandle, batch: &Batch, offset: i64, paths: u32) -> Self {
        DeadLetterOrigin {
            source: source.clone(),
            partition: batch.partition(),
            incarnation: batch.incarnation(),
            offset,
            paths,
        }
    }
}

/// Acknowledges dead letters when the broker has them.
pub(crate) struct DeadLetterContext {
    /// The pipeline's name (a metric label).
    pipeline: Arc<str>,
}

/// The `streamvisor.origin.topic` header of a dead letter.
fn origin_topic(message: &impl rdkafka::message::Message) -> Option<String> {
    use rdkafka::message::Headers;
    message
        .headers()?
        .iter()
        .find(|header| header.key == "streamvisor.origin.topic")
        .and_then(|header| header.value)
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

impl ClientContext for DeadLetterContext {}

impl ProducerContext for DeadLetterContext {
    type DeliveryOpaque = Box<DeadLetterOrigin>;

    fn delivery(&self, result: &DeliveryResult<'_>, origin: Box<DeadLetterOrigin>) {
        use crate::sink::produce::ProduceError;
        match result {
            Ok(_) => {
                origin.source.send(SourceInput::Ack {
                    partition: origin.partition,
                    incarnation: origin.incarnation,
                    offsets: vec![origin.offset],
                    paths: origin.paths,
                });
            }
            // The dead-letter topic refuses it for what it is (a topic configured smaller than
            // the producer's limit): replaying would only be refused again. The record is lost,
            // and said so: an error naming it, `streamvisor_records_lost_total` (whose alert
            // fires), and its offset acknowledged so that the partition goes on.
            Err((error, message))
                if ProduceError::of(error.rdkafka_error_code()) == ProduceError::RecordLevel =>
            {
                let topic = origin_topic(message).unwrap_or_default();
                tracing::error!(%error, %topic, partition = origin.partition, offset = origin.offset, "the dead-letter topic refused a dead letter: the record is lost (counted in streamvisor_records_lost_total)");
                crate::metrics::lost::dead_letter_refused(&self.pipeline, topic, origin.partition)
                    .increment(1);
                origin.source.send(SourceInput::Ack {
                    partition: origin.partition,
                    incarnation: origin.incarnation,
                    offsets: vec![origin.offset],
                    paths: origin.paths,
                });
            }
            Err((error, _)) => {
                tracing::error!(%error, partition = origin.partition, offset = origin.offset, "dead letter not delivered; rewinding");
                origin.source.send(SourceInput::Rewind {
                    partition: origin.partition,
                    incarnation: Some(origin.incarnation),
                });
            }
        }
    }
}

/// Where a sink's dead letters go: one producer, made on first use and shared by the sink's
/// incarnations (a producer dropped on an arbiter would block it while it closes).
#[derive(Clone)]
pub struct DeadLetterTarget {
    brokers: String,
    properties: BTreeMap<String, String>,
    topic: String,
    producer: Arc<Mutex<Option<DeadLetters>>>,
}

impl std::fmt::Debug for DeadLetterTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterTarget")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl DeadLetterTarget {
    /// A target on `brokers` (with the pipeline's pass-through properties) for `topic`.
    pub fn new(brokers: &str, properties: &BTreeMap<String, String>, topic: &str) -> Self {
        DeadLetterTarget {
            brokers: brokers.to_owned(),
            properties: properties.clone(),
            topic: topic.to_owned(),
            producer: Arc::default(),
        }
    }

    /// The shared producer, made on first use.
    pub fn producer(&self) -> Result<DeadLetters, rdkafka::error::KafkaError> {
        let mut producer = self
            .producer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(existing) = producer.as_ref() {
            return Ok(existing.clone());
        }
        let made = DeadLetters::new(&self.brokers, &self.properties, &self.topic)?;
        *producer = Some(made.clone());
        Ok(made)
    }
}

/// The dead-letter producer of a pipeline.
#[derive(Clone)]
pub struct DeadLetters {
    producer: Arc<ThreadedProducer<DeadLetterContext>>,
    topic: Arc<str>,
    /// The most payload bytes a dead letter carries: what the producer's `message.max.bytes`
    /// leaves after room for the key and headers.
    max_payload: usize,
}

/// The producer's default `message.max.bytes`.
const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;
/// Room kept in a dead letter for its key, headers and the record batch's overhead.
const ENVELOPE_ROOM: usize = 16 * 1024;
/// The longest error text a dead letter carries.
const MAX_ERROR_BYTES: usize = 1024;

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl DeadLetters {
    /// A producer for `topic` on `brokers` (with the pipeline's pass-through properties).
    pub fn new(
        brokers: &str,
        properties: &BTreeMap<String, String>,
        topic: &str,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let producer = producer_config(brokers, properties)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .create_with_context(DeadLetterContext {
                // The topic is `<pipeline>.dead-letters`.
                pipeline: Arc::from(topic.strip_suffix(".dead-letters").unwrap_or(topic)),
            })?;
        let message_max_bytes = properties
            .get("message.max.bytes")
            .and_then(|value| value.parse().ok())
            .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES);
        Ok(DeadLetters {
            max_payload: message_max_bytes.saturating_sub(ENVELOPE_ROOM),
            producer: Arc::new(producer),
            topic: Arc::from(topic),
        })
    }

    /// The dead-letter topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Sends `record` of `topic` to the dead letters with its origin, `reason` and `error`. A
    /// payload too large for the producer is cut to what fits, and the dead letter says so
    /// (`streamvisor.truncated`: the payload's whole length); a key too large is dropped the same
    /// way (`streamvisor.key_truncated`).
    /// `Err(None)`: the producer's queue is full (wait and retry in place); `Err(Some(why))`: the
    /// producer refused it for good (the caller fails).
    pub fn send(
        &self,
        topic: &str,
        record: &RecordRef<'_>,
        origin: DeadLetterOrigin,
        reason: DeadLetterReason,
        error: &str,
        actor: &str,
    ) -> Result<(), Option<String>> {
        let partition = origin.partition.to_string();
        let mut digits = itoa::Buffer::new();
        let offset = digits.format(record.offset);
        let error = cut(error, MAX_ERROR_BYTES);
        let key = record.key.filter(|key| key.len() <= ENVELOPE_ROOM / 2);
        let mut lengths = itoa::Buffer::new();
        let mut key_lengths = itoa::Buffer::new();
        let truncated =
            (record.value.len() > self.max_payload).then(|| lengths.format(record.value.len()));
        let key_truncated = (key.is_none() && record.key.is_some())
            .then(|| key_lengths.format(record.key.map_or(0, <[u8]>::len)));
        let payload = &record.value[..record.value.len().min(self.max_payload)];
        let mut headers = with_index(origin_headers(topic, &partition, offset, 5), record.index)
            .insert(Header {
                key: "streamvisor.reason",
                value: Some(reason.as_str()),
            })
            .insert(Header {
                key: "streamvisor.error",
                value: Some(error),
            })
            .insert(Header {
                key: "streamvisor.actor",
                value: Some(actor),
            });
        if let Some(length) = truncated {
            headers = headers.insert(Header {
                key: "streamvisor.truncated",
                value: Some(length),
            });
        }
        if let Some(length) = key_truncated {
            headers = headers.insert(Header {
                key: "streamvisor.key_truncated",
                value: Some(length),
            });
        }
        let mut message: BaseRecord<'_, [u8], [u8], Box<DeadLetterOrigin>> =
            BaseRecord::with_opaque_to(&self.topic, Box::new(origin))
                .payload(payload)
                .headers(headers);
        if let Some(key) = key {
            message = message.key(key);
        }
        self.producer
            .send(message)
            .map_err(|(error, _)| match error.rdkafka_error_code() {
                Some(rdkafka::types::RDKafkaErrorCode::QueueFull) => None,
                _ => Some(format!("dead letter refused: {error}")),
            })
    }
}

impl DeadLetters {
    /// Sends `record` of `batch`, refused by a sink's target for `why`, to the dead letters
    /// (acknowledged to `source` when the broker has it), waiting in place (blocking the thread)
    /// while the producer's queue is full; the error when the producer refused it for good.
    pub(crate) fn send_refused_waiting(
        &self,
        source: &SourceHandle,
        batch: &Batch,
        record: &RecordRef<'_>,
        why: &str,
        actor: &str,
    ) -> Result<(), String> {
        loop {
            let origin = DeadLetterOrigin::of(source, batch, record.offset, 1);
            match self.send(
                batch.topic(),
                record,
                origin,
                DeadLetterReason::RefusedBySink,
                why,
                actor,
            ) {
                Ok(()) => return Ok(()),
                // The producer drains on its own thread.
                Err(None) => std::thread::sleep(std::time::Duration::from_millis(5)),
                Err(Some(error)) => return Err(error),
            }
        }
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
