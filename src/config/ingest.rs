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
//! body_timeout = "30s"          # a body slower than this is answered 408
//! max_requests = 256            # requests served at once (503 past it; health is not counted)
//!
//! [ingest.sensors]              # a TCP listener
//! kind = "socket"
//! listen = "127.0.0.1:7070"
//! framing = "ndjson"            # ndjson (default) | msgpack (4-byte big-endian length, then the record)
//! topic = "sensors"
//! max_connections = 1024        # connections at once (a new one past it is closed)
//! idle_timeout = "60s"          # a connection silent this long is closed
//! [ingest.sensors.properties]   # producer properties, added to [kafka.properties]
//! "linger.ms" = "5"
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use streamvisor_actors::FieldPath;

use super::field::{optional_duration, Invalid};

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
    /// How long a request body may take to arrive (`http`; default 30 s): a slower one is
    /// answered 408 and its connection closed.
    #[serde(default, deserialize_with = "optional_duration")]
    pub body_timeout: Option<Duration>,
    /// Requests served at once, at most (`http`; default 256): past it, 503 with
    /// `Retry-After`, so that ingest never takes the room health and admin need.
    pub max_requests: Option<usize>,
    /// Connections served at once, at most (`socket`; default 1,024): past it, a new
    /// connection is closed at once (counted as busy).
    pub max_connections: Option<usize>,
    /// How long a connection may send nothing (`socket`; default 60 s) before it is closed.
    #[serde(default, deserialize_with = "optional_duration")]
    pub idle_timeout: Option<Duration>,
    /// Producer properties, added to `[kafka.properties]`.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// The default deadline of a request body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// The default cap of ingest requests served at once.
pub(super) const DEFAULT_MAX_REQUESTS: usize = 256;
/// The default cap of socket connections served at once.
pub(super) const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// The default idle timeout of a socket connection.
pub(super) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

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
                    ("max_connections", self.max_connections.is_some()),
                    ("idle_timeout", self.idle_timeout.is_some()),
                ] {
                    if set {
                        return bad(key, "only a socket ingest (kind = \"socket\") takes it");
                    }
                }
                if self.max_body == Some(0) {
                    return bad("max_body", "must be at least 1");
                }
                if self.max_requests == Some(0) {
                    return bad("max_requests", "must be at least 1");
                }
                if self.body_timeout.is_some_and(|timeout| timeout.is_zero()) {
                    return bad("body_timeout", "must be greater than zero");
                }
                if self.max_record == Some(0) {
                    return bad("max_record", "must be at least 1");
                }
            }
            IngestKind::Socket => {
                for (key, set) in [
                    ("max_body", self.max_body.is_some()),
                    ("body_timeout", self.body_timeout.is_some()),
                    ("max_requests", self.max_requests.is_some()),
                ] {
                    if set {
                        return bad(key, "only an http ingest (kind = \"http\") takes it");
                    }
                }
                if self.max_connections == Some(0) {
                    return bad("max_connections", "must be at least 1");
                }
                if self.idle_timeout.is_some_and(|timeout| timeout.is_zero()) {
                    return bad("idle_timeout", "must be greater than zero");
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

    /// The request body deadline.
    pub fn body_deadline(&self) -> Duration {
        self.body_timeout.unwrap_or(DEFAULT_BODY_TIMEOUT)
    }

    /// Requests served at once, at most.
    pub fn request_limit(&self) -> usize {
        self.max_requests.unwrap_or(DEFAULT_MAX_REQUESTS)
    }

    /// Socket connections served at once, at most.
    pub fn connection_limit(&self) -> usize {
        self.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS)
    }

    /// How long a socket connection may be idle.
    pub fn idle_deadline(&self) -> Duration {
        self.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT)
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
