//! `[ingest.<name>]`: records pushed in over REST (`POST /api/ingest/<name>`) or a TCP socket,
//! written into a Kafka topic that pipelines read (DESIGN.md: ingest lands in Kafka first).
//!
//! ```toml
//! [ingest.payments]             # POST /api/ingest/payments
//! kind = "http"
//! topic = "payments"
//! key = "card.id"               # the Kafka key: this JSON field (a string or a number)
//! format = "json"               # what the topic holds: json (default) | msgpack
//! max_body = 1048576            # bytes of a request body, at most (default 1 MiB)
//! max_record = 999000           # bytes of a record (default: what the producer takes, below)
//! max_in_flight = 10000         # records sent and not yet acknowledged (429 past it)
//!
//! [ingest.sensors]              # a TCP listener
//! kind = "socket"
//! listen = "127.0.0.1:7070"
//! framing = "ndjson"            # ndjson (default) | msgpack (4-byte big-endian length, then the record)
//! topic = "sensors"
//! [ingest.sensors.properties]   # producer properties, added to [kafka.properties]
//! "linger.ms" = "5"
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use streamvisor_actors::FieldPath;

use super::field::Invalid;

/// Where ingest reads records from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IngestKind {
    /// `POST /api/ingest/<name>` on the runtime's HTTP listener.
    Http,
    /// A TCP listener of its own.
    Socket,
}

/// How records are cut out of a socket's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    /// One JSON value per line.
    #[default]
    Ndjson,
    /// A 4-byte big-endian length, then that many bytes of MessagePack.
    Msgpack,
}

/// How the topic's records are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueFormat {
    /// JSON.
    #[default]
    Json,
    /// MessagePack (maps with field names).
    Msgpack,
}

/// `[ingest.<name>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// `"http"` or `"socket"`.
    pub kind: IngestKind,
    /// The topic written (created when missing).
    pub topic: String,
    /// A JSON field path (`card.id`) whose value is the Kafka key; none: no key.
    pub key: Option<FieldPath>,
    /// How the topic's records are encoded.
    #[serde(default)]
    pub format: ValueFormat,
    /// The topic's partitions when it is created.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Records sent and not yet acknowledged, at most.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// A request body's bytes, at most (`http`).
    pub max_body: Option<usize>,
    /// The address to listen on (`socket`).
    pub listen: Option<String>,
    /// How records are framed (`socket`).
    pub framing: Option<Framing>,
    /// A record's bytes, at most (default: the producer's `message.max.bytes`, 1,000,000 unless
    /// the ingest's properties say otherwise, less 1,000 bytes for the key and headers). Over
    /// it, a record is refused alone: a REST answer lists it, a socket skips it (both count it).
    pub max_record: Option<usize>,
    /// Producer properties, added to `[kafka.properties]`.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// The default request body limit: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
/// The producer's default `message.max.bytes`.
const PRODUCER_MAX_BYTES: usize = 1_000_000;
/// Room a record leaves in a message for its key and headers.
const RECORD_ENVELOPE: usize = 1_000;
/// The default limit of a record: what the producer takes by default, less its envelope.
pub const DEFAULT_MAX_RECORD: usize = PRODUCER_MAX_BYTES - RECORD_ENVELOPE;

fn default_partitions() -> i32 {
    8
}

fn default_max_in_flight() -> usize {
    10_000
}

impl IngestConfig {
    /// Checks the fields against the kind and their ranges; `table` is `ingest.<name>`.
    pub(super) fn validate(&self, table: &str) -> Result<(), Invalid> {
        let bad = |key: &str, why: &str| Err((format!("{table}.{key}"), why.to_owned()));
        if self.topic.is_empty() {
            return bad("topic", "must not be empty");
        }
        if self.partitions < 1 {
            return bad("partitions", "must be at least 1");
        }
        if self.max_in_flight == 0 {
            return bad("max_in_flight", "must be at least 1");
        }
        match self.kind {
            IngestKind::Http => {
                for (key, set) in [
                    ("listen", self.listen.is_some()),
                    ("framing", self.framing.is_some()),
                ] {
                    if set {
                        return bad(key, "only a socket ingest (kind = \"socket\") takes it");
                    }
                }
                if self.max_body == Some(0) {
                    return bad("max_body", "must be at least 1");
                }
                if self.max_record == Some(0) {
                    return bad("max_record", "must be at least 1");
                }
            }
            IngestKind::Socket => {
                if self.max_body.is_some() {
                    return bad("max_body", "only an http ingest (kind = \"http\") takes it");
                }
                match self.listen.as_deref() {
                    None => return bad("listen", "a socket ingest needs an address to listen on"),
                    Some(address) if address.parse::<std::net::SocketAddr>().is_err() => {
                        return bad("listen", "expected host:port, such as \"127.0.0.1:7070\"")
                    }
                    Some(_) => {}
                }
                if self.max_record == Some(0) {
                    return bad("max_record", "must be at least 1");
                }
            }
        }
        Ok(())
    }

    /// The request body limit.
    pub fn body_limit(&self) -> usize {
        self.max_body.unwrap_or(DEFAULT_MAX_BODY)
    }

    /// The record limit: `max_record`, else what the producer takes (its `message.max.bytes`
    /// from the ingest's properties, else 1,000,000) less the envelope.
    pub fn record_limit(&self) -> usize {
        self.max_record.unwrap_or_else(|| {
            self.properties
                .get("message.max.bytes")
                .and_then(|bytes| bytes.parse::<usize>().ok())
                .unwrap_or(PRODUCER_MAX_BYTES)
                .saturating_sub(RECORD_ENVELOPE)
                .max(1)
        })
    }
}
