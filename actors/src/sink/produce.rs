//! What every producer of a pipeline shares (dead letters, the Kafka sinks): its client
//! settings, and the headers that say where a record came from.

use std::collections::BTreeMap;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::ClientConfig;

/// A producer's settings: `brokers` and the pipeline's pass-through `properties`, less the
/// consumer-only ones (which would only draw warnings).
pub(crate) fn producer_config(
    brokers: &str,
    properties: &BTreeMap<String, String>,
) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (key, value) in properties {
        if !key.starts_with("session.")
            && !key.starts_with("heartbeat.")
            && !key.starts_with("group.")
            && !key.starts_with("max.poll.")
        {
            config.set(key, value);
        }
    }
    config.set("bootstrap.servers", brokers);
    config
}

/// `streamvisor.origin.topic`, `.partition` and `.offset` (DESIGN.md's dead-letter headers,
/// also carried by the Kafka sinks' records); `extra` room for more.
///
/// A piece of a flat_map's output adds `streamvisor.origin.index` with [`with_index`].
pub fn origin_headers(topic: &str, partition: &str, offset: &str, extra: usize) -> OwnedHeaders {
    OwnedHeaders::new_with_capacity(3 + extra)
        .insert(Header {
            key: "streamvisor.origin.topic",
            value: Some(topic),
        })
        .insert(Header {
            key: "streamvisor.origin.partition",
            value: Some(partition),
        })
        .insert(Header {
            key: "streamvisor.origin.offset",
            value: Some(offset),
        })
}

/// Adds `streamvisor.origin.index` for a piece of a flat_map's output (none: unchanged).
pub(crate) fn with_index(headers: OwnedHeaders, index: Option<u32>) -> OwnedHeaders {
    match index {
        Some(index) => {
            let mut digits = itoa::Buffer::new();
            headers.insert(Header {
                key: "streamvisor.origin.index",
                value: Some(digits.format(index)),
            })
        }
        None => headers,
    }
}

/// What a producer's error means for the record it is about (one classification for every
/// sink and dead-letter path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProduceError {
    /// The record itself is refused, and always will be (too large, invalid, a null key on a
    /// compacted topic, a timestamp out of the topic's range): it goes to the dead letters.
    RecordLevel,
    /// An innocent record of a message set the broker refused for another record's sake
    /// (`_INVALID_DIFFERENT_RECORD`): it is sent again.
    Resend,
    /// The producer's queue is full: wait and send again.
    QueueFull,
    /// Anything else (a timeout past `delivery.timeout.ms`, an authorization error, ...).
    Other,
}

impl ProduceError {
    /// The class of `code`.
    pub(crate) fn of(code: Option<rdkafka::types::RDKafkaErrorCode>) -> Self {
        use rdkafka::types::RDKafkaErrorCode as Code;
        match code {
            Some(
                Code::MessageSizeTooLarge
                | Code::InvalidMessageSize
                | Code::InvalidMessage
                | Code::InvalidRecord
                | Code::InvalidTimestamp
                | Code::MessageBatchTooLarge
                | Code::BadMessage,
            ) => ProduceError::RecordLevel,
            Some(Code::InvalidDifferentRecord) => ProduceError::Resend,
            Some(Code::QueueFull) => ProduceError::QueueFull,
            _ => ProduceError::Other,
        }
    }
}
