//! `streamvisor produce`: writes records into a topic with the idempotent producer and waits for
//! every delivery report. `--count N` writes `{"key": "k<i % 1000>", "seq": i}` round-robin over
//! the partitions; without it, each stdin line is a JSON object, keyed by its `key` field when it
//! has one. The topic is created with `--partitions` when it is missing.

use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientConfig;
use thiserror::Error;

/// How long a full producer queue may stay full before `produce` gives up.
const QUEUE_FULL_LIMIT: Duration = Duration::from_secs(60);
/// How long the final flush may take.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(120);

/// `produce` failed.
#[derive(Debug, Error)]
pub(crate) enum ProduceError {
    /// The topic could not be made or the producer could not start.
    #[error("{0}")]
    Setup(String),
    /// A stdin line is not a JSON object (the lines before it were written).
    #[error("stdin line {line}: {why} (the {delivered} records before it were delivered)")]
    BadLine {
        /// Its number (from 1).
        line: usize,
        /// What is wrong.
        why: String,
        /// Records delivered before it.
        delivered: u64,
    },
    /// Reading stdin failed (the lines before were written).
    #[error("reading stdin: {source} (the {delivered} records before were delivered)")]
    Stdin {
        /// The cause.
        #[source]
        source: std::io::Error,
        /// Records delivered before it.
        delivered: u64,
    },
    /// The producer refused a record for a reason a wait does not cure.
    #[error("record {index}: {error} ({delivered} records before it were delivered)")]
    Refused {
        /// The record's number (from 0).
        index: u64,
        /// The producer's error.
        error: String,
        /// Records delivered before it.
        delivered: u64,
    },
    /// Records were not delivered.
    #[error("{failed} of {sent} records were not delivered (first error: {first_error})")]
    Undelivered {
        /// Records sent.
        sent: u64,
        /// Records whose delivery failed or never reported.
        failed: u64,
        /// The first delivery error seen.
        first_error: String,
    },
}

/// What to write.
pub(crate) enum Input {
    /// `count` generated records, round-robin over `partitions`.
    Count {
        /// How many.
        count: u64,
    },
    /// NDJSON objects from stdin.
    Stdin,
}

/// Counts delivery reports.
#[derive(Default)]
struct Reports {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert_with(|| error.to_string());
                }
            }
        }
    }
}

/// Writes `input` into `topic` (made with `partitions` when missing); returns the records
/// delivered.
pub(crate) async fn produce(
    brokers: &str,
    topic: &str,
    partitions: i32,
    input: Input,
) -> Result<u64, ProduceError> {
    streamvisor::runtime::ensure_topic(brokers, &Default::default(), topic, partitions)
        .await
        .map_err(|error| ProduceError::Setup(error.to_string()))?;
    let brokers = brokers.to_owned();
    let topic = topic.to_owned();
    // The producer blocks (queue full, flush): off the async executor.
    tokio::task::spawn_blocking(move || write_all(&brokers, &topic, partitions, input))
        .await
        .map_err(|error| ProduceError::Setup(format!("the producer thread failed: {error}")))?
}

fn write_all(
    brokers: &str,
    topic: &str,
    partitions: i32,
    input: Input,
) -> Result<u64, ProduceError> {
    let producer: ThreadedProducer<Reports> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create_with_context(Reports::default())
        .map_err(|error| ProduceError::Setup(format!("producer for {brokers}: {error}")))?;
    let mut sent = 0u64;
    // Whatever stops the input early, what was sent is flushed first and counted in the error.
    let stopped = match input {
        Input::Count { count } => write_count(&producer, topic, partitions, count, &mut sent),
        Input::Stdin => write_stdin(&producer, topic, &mut sent),
    };
    let flushed = producer.flush(FLUSH_TIMEOUT);
    let reports = producer.context();
    let delivered = reports.delivered.load(Ordering::Relaxed);
    if let Err(stop) = stopped {
        return Err(stop.with_delivered(delivered));
    }
    if flushed.is_err() || delivered != sent {
        let first_error = reports
            .first_error
            .lock()
            .ok()
            .and_then(|first| first.clone())
            .or_else(|| flushed.err().map(|error| error.to_string()))
            .unwrap_or_else(|| "no delivery report".to_owned());
        return Err(ProduceError::Undelivered {
            sent,
            failed: sent - delivered,
            first_error,
        });
    }
    Ok(delivered)
}

impl ProduceError {
    fn with_delivered(self, count: u64) -> Self {
        match self {
            ProduceError::BadLine { line, why, .. } => ProduceError::BadLine {
                line,
                why,
                delivered: count,
            },
            ProduceError::Stdin { source, .. } => ProduceError::Stdin {
                source,
                delivered: count,
            },
            ProduceError::Refused { index, error, .. } => ProduceError::Refused {
                index,
                error,
                delivered: count,
            },
            other => other,
        }
    }
}

fn write_count(
    producer: &ThreadedProducer<Reports>,
    topic: &str,
    partitions: i32,
    count: u64,
    sent: &mut u64,
) -> Result<(), ProduceError> {
    let (mut key, mut value) = (String::new(), String::new());
    for i in 0..count {
        use std::fmt::Write as _;
        key.clear();
        value.clear();
        let _ = write!(key, "k{}", i % 1000);
        let _ = write!(value, "{{\"key\":\"{key}\",\"seq\":{i}}}");
        let partition = (i % partitions.max(1) as u64) as i32;
        let record = BaseRecord::to(topic)
            .key(key.as_str())
            .payload(value.as_str())
            .partition(partition);
        send(producer, record, *sent)?;
        *sent += 1;
    }
    Ok(())
}

fn write_stdin(
    producer: &ThreadedProducer<Reports>,
    topic: &str,
    sent: &mut u64,
) -> Result<(), ProduceError> {
    let stdin = std::io::stdin();
    for (index, line) in stdin.lock().lines().enumerate() {
        let line = line.map_err(|source| ProduceError::Stdin {
            source,
            delivered: 0,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let key = record_key(&line).map_err(|why| ProduceError::BadLine {
            line: index + 1,
            why,
            delivered: 0,
        })?;
        let record = BaseRecord::to(topic).payload(line.as_str());
        match key.as_deref() {
            Some(key) => send(producer, record.key(key), *sent)?,
            None => send(producer, record, *sent)?,
        }
        *sent += 1;
    }
    Ok(())
}

/// Queues record number `index`, waiting while the producer's queue is full; any other refusal
/// (an unknown partition, a record over the size limit) is an error at once.
fn send<'a>(
    producer: &ThreadedProducer<Reports>,
    mut record: BaseRecord<'a, str, str>,
    index: u64,
) -> Result<(), ProduceError> {
    let full_since = Instant::now();
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned))
                if full_since.elapsed() < QUEUE_FULL_LIMIT =>
            {
                record = returned;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err((error, _)) => {
                return Err(ProduceError::Refused {
                    index,
                    error: error.to_string(),
                    delivered: 0,
                });
            }
        }
    }
}

/// The `key` field of a JSON object line (a string, or any other value as its JSON text).
fn record_key(line: &str) -> Result<Option<String>, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|error| format!("not JSON: {error}"))?;
    let object = value
        .as_object()
        .ok_or_else(|| "not a JSON object".to_owned())?;
    Ok(object.get("key").map(|key| match key {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::record_key;

    #[test]
    fn the_key_is_the_key_field_when_present() {
        assert_eq!(
            record_key(r#"{"key":"card-1","amount":3}"#),
            Ok(Some("card-1".to_owned()))
        );
        assert_eq!(record_key(r#"{"key":17}"#), Ok(Some("17".to_owned())));
        assert_eq!(record_key(r#"{"amount":3}"#), Ok(None));
        assert!(record_key("[1,2]")
            .expect_err("refused")
            .contains("not a JSON object"));
        assert!(record_key("{oops")
            .expect_err("refused")
            .contains("not JSON"));
    }
}
