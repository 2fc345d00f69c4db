//! [`PushSource`]: where records pushed from outside enter (REST requests, socket connections;
//! the transports live in the root crate): an idempotent Kafka producer writing into the ingest
//! topic, under an in-flight budget. DESIGN.md: ingest lands in Kafka first, so every record a
//! pipeline processes is replayable; ingest depends only on its own producer.
//!
//! A caller reserves room for its records first: [`PushSource::try_reserve`] answers at once
//! (REST: a full budget is a 429), [`PushSource::reserve`] waits (a socket stops reading, so
//! its sender feels TCP backpressure). [`Reservation::send`] then hands the records to the
//! producer and resolves once the broker acknowledged every one of them; the budget comes back
//! as deliveries complete, even when the caller stopped waiting.

mod probe;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use thiserror::Error;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::metrics::IngestMetrics;
use crate::sink::produce::{producer_config, ProduceError};
use crate::source::backlog::Backlog;
use probe::BrokerProbe;

/// How long the broker may take to acknowledge a record pushed by a client that waits for the
/// answer (REST); past it the request fails (503).
pub const CLIENT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a push held back looks again.
const HELD_BACK_POLL: Duration = Duration::from_millis(10);

/// A push source's settings.
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// The ingest source's name (metrics, logs).
    pub name: String,
    /// The brokers.
    pub brokers: String,
    /// librdkafka properties passed through (the pipeline's and the source's own).
    pub properties: BTreeMap<String, String>,
    /// The topic written.
    pub topic: String,
    /// Records handed to the producer and not yet acknowledged, at most.
    pub max_in_flight: usize,
    /// How long the producer tries to deliver a record before failing it (`message.timeout.ms`
    /// unless the properties set it); zero: it keeps trying while the process lives (a socket
    /// has nobody to tell about a failure).
    pub delivery_timeout: Duration,
    /// On the embedded broker, when a pipeline of the process reads the topic: its backlog,
    /// which records wait for while it is full (see [`Backlog`]).
    pub backlog: Option<Arc<Backlog>>,
}

/// The push source could not start.
#[derive(Debug, Error)]
pub enum PushStartError {
    /// librdkafka refused the producer settings.
    #[error("ingest `{source_name}`: producer settings refused: {error}")]
    Producer {
        /// The source.
        source_name: String,
        /// librdkafka's error.
        error: KafkaError,
    },
    /// A budget of zero could never accept a record.
    #[error("ingest `{0}`: max_in_flight must be greater than zero")]
    ZeroBudget(String),
}

/// Why records were not taken; nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PushRefused {
    /// The in-flight budget is full now: try again shortly.
    #[error("the producer's in-flight budget is full: try again shortly")]
    Busy,
    /// More records than the whole budget: they could never be taken at once.
    #[error("{records} records exceed the in-flight budget of {max} records: send fewer at once")]
    TooMany {
        /// Records asked for.
        records: usize,
        /// The budget.
        max: usize,
    },
    /// The broker does not answer.
    #[error("the broker is away: {0}")]
    BrokerAway(String),
}

/// Why records sent were not all acknowledged. Some may have been written: a retry may
/// duplicate them.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PushFailed {
    /// The broker did not acknowledge in time, or is away.
    #[error("the broker did not acknowledge every record: {0}")]
    NotAcknowledged(String),
}

/// A record the producer or the broker refused for what it is (too large, invalid, keyless on
/// a compacted topic): sending it again will not help. The others went on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRefused {
    /// The record's index in what was sent.
    pub index: usize,
    /// The producer's or the broker's reason.
    pub why: String,
}

/// What the broker acknowledged of what was sent, and the records refused one by one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pushed {
    /// Records the broker acknowledged.
    pub accepted: usize,
    /// Records refused for what they are, by index.
    pub refused: Vec<RecordRefused>,
}

struct Shared {
    producer: FutureProducer,
    topic: String,
    budget: Arc<Semaphore>,
    max_in_flight: usize,
    probe: BrokerProbe,
    metrics: IngestMetrics,
    backlog: Option<Arc<Backlog>>,
}

/// A running push source; clones share it.
#[derive(Clone)]
pub struct PushSource {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PushSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushSource")
            .field("topic", &self.shared.topic)
            .field("max_in_flight", &self.shared.max_in_flight)
            .field("available", &self.shared.budget.available_permits())
            .finish()
    }
}

impl PushSource {
    /// Starts the producer and its broker probe (a blocking call: it asks the broker once).
    pub fn start(settings: PushSettings) -> Result<Self, PushStartError> {
        if settings.max_in_flight == 0 {
            return Err(PushStartError::ZeroBudget(settings.name));
        }
        let mut config = producer_config(&settings.brokers, &settings.properties);
        config.set("enable.idempotence", "true").set("acks", "all");
        if !settings.properties.contains_key("message.timeout.ms") {
            config.set(
                "message.timeout.ms",
                settings.delivery_timeout.as_millis().to_string(),
            );
        }
        // The budget, not librdkafka's queue, is what refuses records (by count, and by size
        // up to 1 GiB unless the properties say otherwise).
        let queue = settings.max_in_flight.max(100_000);
        config.set("queue.buffering.max.messages", queue.to_string());
        if !settings
            .properties
            .contains_key("queue.buffering.max.kbytes")
        {
            config.set("queue.buffering.max.kbytes", "1048576");
        }
        let producer: FutureProducer =
            config.create().map_err(|error| PushStartError::Producer {
                source_name: settings.name.clone(),
                error,
            })?;
        let probe = BrokerProbe::start(&settings.name, producer.clone(), &settings.topic);
        Ok(PushSource {
            shared: Arc::new(Shared {
                producer,
                topic: settings.topic,
                budget: Arc::new(Semaphore::new(settings.max_in_flight)),
                max_in_flight: settings.max_in_flight,
                probe,
                metrics: IngestMetrics::new(&settings.name),
                backlog: settings.backlog,
            }),
        })
    }

    /// The topic written.
    pub fn topic(&self) -> &str {
        &self.shared.topic
    }

    /// The in-flight budget, in records.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight
    }

    /// Records that may be reserved now.
    pub fn available(&self) -> usize {
        self.shared.budget.available_permits()
    }

    /// This source's metric handles.
    pub fn metrics(&self) -> &IngestMetrics {
        &self.shared.metrics
    }

    /// Waits (at most `timeout`, blocking) until the broker acknowledged every record handed
    /// over (at shutdown: nothing in flight is purged unsent).
    pub fn flush(&self, timeout: Duration) -> Result<(), String> {
        use rdkafka::producer::Producer;
        self.shared
            .producer
            .flush(timeout)
            .map_err(|error| format!("ingest to {}: {error}", self.shared.topic))
    }

    /// `Ok` while the broker answers; else what the last probe saw.
    pub fn broker_status(&self) -> Result<(), String> {
        self.shared.probe.status()
    }

    fn check(&self, records: usize) -> Result<u32, PushRefused> {
        self.broker_status().map_err(PushRefused::BrokerAway)?;
        if records > self.shared.max_in_flight {
            return Err(PushRefused::TooMany {
                records,
                max: self.shared.max_in_flight,
            });
        }
        u32::try_from(records).map_err(|_| PushRefused::TooMany {
            records,
            max: self.shared.max_in_flight,
        })
    }

    /// Whether records must wait: the pipeline reading the topic on the embedded broker is too
    /// far behind (see [`Backlog`]).
    pub fn held_back(&self) -> bool {
        self.shared
            .backlog
            .as_ref()
            .is_some_and(|backlog| backlog.is_full())
    }

    /// Room for `records` now, or why not.
    pub fn try_reserve(&self, records: usize) -> Result<Reservation, PushRefused> {
        let count = self.check(records)?;
        if self.held_back() {
            return Err(PushRefused::Busy);
        }
        let permit = Arc::clone(&self.shared.budget)
            .try_acquire_many_owned(count)
            .map_err(|_| PushRefused::Busy)?;
        Ok(self.reservation(permit))
    }

    /// Room for `records`, waiting for the budget while it is full.
    pub async fn reserve(&self, records: usize) -> Result<Reservation, PushRefused> {
        let count = self.check(records)?;
        while self.held_back() {
            tokio::time::sleep(HELD_BACK_POLL).await;
        }
        let permit = Arc::clone(&self.shared.budget)
            .acquire_many_owned(count)
            .await
            .map_err(|_| PushRefused::BrokerAway("the push source stopped".to_owned()))?;
        Ok(self.reservation(permit))
    }

    fn reservation(&self, permit: OwnedSemaphorePermit) -> Reservation {
        Reservation {
            source: self.clone(),
            permit,
        }
    }
}

/// Room for some records in the in-flight budget.
#[derive(Debug)]
pub struct Reservation {
    source: PushSource,
    permit: OwnedSemaphorePermit,
}

/// A record to push: its Kafka key and value.
pub type PushRecord<'a> = (Option<&'a [u8]>, &'a [u8]);

impl Reservation {
    /// Hands `records` (at most as many as reserved) to the producer; the returned future
    /// resolves when the broker acknowledged all of them but those refused one by one, or with
    /// the first other failure. A record refused for what it is does not stop the others. Must
    /// be called inside a tokio runtime: the wait for the deliveries is a task of its own, which
    /// returns the budget as they complete even if the caller stops waiting.
    pub fn send<'a>(self, records: impl IntoIterator<Item = PushRecord<'a>>) -> Pending {
        let shared = Arc::clone(&self.source.shared);
        let mut deliveries: Vec<(usize, usize, DeliveryFuture)> = Vec::new();
        let mut refused = Vec::new();
        let mut failed = None;
        for (index, (key, value)) in records.into_iter().enumerate() {
            if deliveries.len() >= self.permit.num_permits() {
                refused.push(RecordRefused {
                    index,
                    why: "more records than reserved".to_owned(),
                });
                continue;
            }
            let mut record = FutureRecord::<[u8], [u8]>::to(&shared.topic).payload(value);
            if let Some(key) = key {
                record = record.key(key);
            }
            let bytes = key.map_or(0, <[u8]>::len) + value.len();
            // Counted before it goes: its report may come at once.
            if let Some(backlog) = &shared.backlog {
                backlog.sending(bytes);
            }
            let sent = shared.producer.send_result(record);
            if let (Some(backlog), Err(_)) = (&shared.backlog, &sent) {
                backlog.sent(bytes);
            }
            match sent {
                Ok(delivery) => deliveries.push((index, bytes, delivery)),
                Err((error, _)) if refused_for_what_it_is(&error) => {
                    refused.push(RecordRefused {
                        index,
                        why: error.to_string(),
                    });
                }
                Err((error, _)) => {
                    failed = Some(PushFailed::NotAcknowledged(error.to_string()));
                    break;
                }
            }
        }
        let (done, result) = oneshot::channel();
        let permit = self.permit;
        tokio::spawn(async move {
            let backlog = shared.backlog.as_deref();
            let outcome = acknowledged(deliveries, refused, failed, backlog).await;
            if let Ok(pushed) = &outcome {
                shared.metrics.records.increment(pushed.accepted as u64);
            }
            drop(permit);
            let _ = done.send(outcome);
        });
        Pending { result }
    }
}

/// Records handed to the producer, waiting for the broker's acknowledgements.
#[derive(Debug)]
pub struct Pending {
    result: oneshot::Receiver<Result<Pushed, PushFailed>>,
}

impl Pending {
    /// What the broker acknowledged and what was refused one by one, or the first failure.
    pub async fn acknowledged(self) -> Result<Pushed, PushFailed> {
        self.result
            .await
            .unwrap_or_else(|_| Err(PushFailed::NotAcknowledged("the wait was cut".into())))
    }
}

/// Waits for every delivery: the records refused for what they are join `refused`; any other
/// failure (`failed`, or the first in a delivery report) wins.
async fn acknowledged(
    deliveries: Vec<(usize, usize, DeliveryFuture)>,
    mut refused: Vec<RecordRefused>,
    mut failed: Option<PushFailed>,
    backlog: Option<&Backlog>,
) -> Result<Pushed, PushFailed> {
    let mut accepted = 0;
    for (index, bytes, delivery) in deliveries {
        let delivery = delivery.await;
        if let Some(backlog) = backlog {
            backlog.sent(bytes);
        }
        match delivery {
            Ok(Ok(delivery)) => {
                accepted += 1;
                if let Some(backlog) = backlog {
                    backlog.delivered(delivery.partition, delivery.offset, bytes);
                }
            }
            Ok(Err((error, _))) if refused_for_what_it_is(&error) => {
                refused.push(RecordRefused {
                    index,
                    why: error.to_string(),
                });
            }
            Ok(Err((error, _))) => {
                failed.get_or_insert(PushFailed::NotAcknowledged(error.to_string()));
            }
            Err(_) => {
                failed.get_or_insert(PushFailed::NotAcknowledged(
                    "the producer stopped".to_owned(),
                ));
            }
        }
    }
    refused.sort_by_key(|refused| refused.index);
    match failed {
        Some(failure) => Err(failure),
        None => Ok(Pushed { accepted, refused }),
    }
}

/// Whether the producer or the broker refused a record for what it is (one classification
/// with the sinks': [`ProduceError::RecordLevel`]). A record refused for another record's sake
/// (`_INVALID_DIFFERENT_RECORD`) is not: it fails the send as not acknowledged, so that a REST
/// client sends it again.
fn refused_for_what_it_is(error: &KafkaError) -> bool {
    ProduceError::of(error.rdkafka_error_code()) == ProduceError::RecordLevel
        || error.rdkafka_error_code() == Some(RDKafkaErrorCode::InvalidArgument)
}
