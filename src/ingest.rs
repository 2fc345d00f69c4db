//! Ingest: records pushed in over REST (`POST /api/ingest/<name>`, served by [`crate::http`])
//! and TCP sockets ([`socket`]), landing in a Kafka topic through the actors' push source
//! (DESIGN.md: ingest lands in Kafka first, and depends only on its own producer).
//!
//! A REST request is answered 202 once the broker acknowledged every record but those refused
//! one by one for what they are (listed by index in the answer); after another error some
//! records may have been written, so a retry may duplicate them: pipelines that must not count
//! twice dedupe on a field of the record. A socket skips, counts and logs a refused record and
//! goes on with the others.
//! A socket has nobody to answer: its producer keeps trying while the broker is away (no
//! delivery timeout) and the listener stops reading meanwhile; records are lost only if the
//! process dies with them in flight.

pub mod records;
pub mod socket;

use std::collections::BTreeMap;
use std::sync::Arc;

use streamvisor_actors::{PushSettings, PushSource, CLIENT_DELIVERY_TIMEOUT};

use crate::config::{IngestConfig, IngestKind};
use records::RecordEncoder;

/// One running ingest source.
#[derive(Debug, Clone)]
pub struct IngestPoint {
    /// Its settings.
    pub config: IngestConfig,
    /// Its producer.
    pub source: PushSource,
    /// How its records are encoded.
    pub encoder: RecordEncoder,
    /// Requests (REST) or connections (socket) served now: at most the configured cap.
    pub slots: Arc<tokio::sync::Semaphore>,
}

/// The running ingest sources, by name; clones share them.
#[derive(Debug, Clone, Default)]
pub struct Ingests {
    points: Arc<BTreeMap<String, IngestPoint>>,
}

impl Ingests {
    /// Starts a producer for each ingest of `configs` (a blocking call: each asks its broker
    /// once). `properties` are the pipeline's `[kafka.properties]`.
    pub fn start(
        configs: &BTreeMap<String, IngestConfig>,
        brokers: &str,
        properties: &BTreeMap<String, String>,
        backlog: Option<(String, Arc<streamvisor_actors::Backlog>)>,
    ) -> Result<Self, String> {
        let mut points = BTreeMap::new();
        for (name, config) in configs {
            let mut all = properties.clone();
            all.extend(config.properties.clone());
            if config.kind == IngestKind::Socket && all.remove("message.timeout.ms").is_some() {
                tracing::warn!(ingest = %name, "message.timeout.ms ignored: a socket ingest has nobody to tell about a failure, so it keeps trying");
            }
            let source = PushSource::start(PushSettings {
                name: name.clone(),
                brokers: brokers.to_owned(),
                properties: all,
                topic: config.topic.clone(),
                max_in_flight: config.max_in_flight,
                delivery_timeout: match config.kind {
                    IngestKind::Http => CLIENT_DELIVERY_TIMEOUT,
                    IngestKind::Socket => std::time::Duration::ZERO,
                },
                backlog: backlog
                    .as_ref()
                    .filter(|(topic, _)| *topic == config.topic)
                    .map(|(_, backlog)| Arc::clone(backlog)),
            })
            .map_err(|error| error.to_string())?;
            let encoder = RecordEncoder::new(config.key.clone(), config.format);
            points.insert(
                name.clone(),
                IngestPoint {
                    slots: Arc::new(tokio::sync::Semaphore::new(match config.kind {
                        IngestKind::Http => config.request_limit(),
                        IngestKind::Socket => config.connection_limit(),
                    })),
                    config: config.clone(),
                    source,
                    encoder,
                },
            );
        }
        Ok(Ingests {
            points: Arc::new(points),
        })
    }

    /// The REST ingest called `name`.
    pub fn http(&self, name: &str) -> Option<&IngestPoint> {
        self.points
            .get(name)
            .filter(|point| point.config.kind == IngestKind::Http)
    }

    /// Every ingest, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &IngestPoint)> {
        self.points.iter()
    }

    /// Waits (at most `timeout` each, blocking) until every ingest's records handed to its
    /// producer are acknowledged; what could not be is logged.
    pub fn flush(&self, timeout: std::time::Duration) {
        for (name, point) in self.points.iter() {
            if let Err(why) = point.source.flush(timeout) {
                tracing::error!(ingest = %name, %why, "ingest records still in flight at shutdown");
            }
        }
    }

    /// Why an ingest cannot take records now (its broker is away), by name.
    pub fn unready(&self) -> Vec<String> {
        self.points
            .iter()
            .filter_map(|(name, point)| {
                point
                    .source
                    .broker_status()
                    .err()
                    .map(|why| format!("ingest {name}: {why}"))
            })
            .collect()
    }
}
