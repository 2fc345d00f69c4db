//! The load generator: writes `{"key": "k<i % 1000>", "seq": i}` records (keyed by `key`) into a
//! topic, at a rate or as fast as the broker takes them, on a thread of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

use crate::config::GeneratorConfig;

/// A running generator.
pub struct Generator {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Generator {
    /// Starts writing `load` into `topic`.
    pub fn start(brokers: &str, topic: &str, load: &GeneratorConfig) -> Result<Self, String> {
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .create()
            .map_err(|error| format!("generator: {error}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (topic, records, rate) = (topic.to_owned(), load.records, load.rate_per_second);
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("generator".to_owned())
            .spawn(move || generate(&producer, &topic, records, rate, &stopping))
            .map_err(|error| format!("generator thread: {error}"))?;
        Ok(Generator {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops it; returns how many records it wrote.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Release);
        self.thread
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or(0)
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn generate(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    records: u64,
    rate: Option<u64>,
    stop: &AtomicBool,
) -> u64 {
    let began = Instant::now();
    let mut key = String::new();
    let mut value = String::new();
    let mut sent = 0;
    while sent < records && !stop.load(Ordering::Acquire) {
        if let Some(rate) = rate.filter(|rate| *rate > 0) {
            let due = began + Duration::from_secs_f64(sent as f64 / rate as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep((due - now).min(Duration::from_millis(100)));
                continue;
            }
        }
        key.clear();
        value.clear();
        use std::fmt::Write as _;
        let _ = write!(key, "k{}", sent % 1000);
        let _ = write!(value, "{{\"key\":\"{key}\",\"seq\":{sent}}}");
        match producer.send(BaseRecord::to(topic).key(&key).payload(&value)) {
            Ok(()) => sent += 1,
            Err(_) => std::thread::sleep(Duration::from_millis(5)), // queue full: let it drain
        }
    }
    if let Err(error) = producer.flush(Duration::from_secs(30)) {
        tracing::warn!(%error, "generator: not every record was delivered");
    }
    tracing::info!(records = sent, "generator done");
    sent
}
