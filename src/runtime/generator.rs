//! The load generator: writes `{"key": "k<i % 1000>", "seq": i}` records (keyed by `key`) into a
//! topic, at a rate or as fast as the broker takes them, on a thread of its own. On the embedded
//! broker it holds back while the pipeline is behind (see [`Backlog`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use streamvisor_actors::Backlog;

use crate::config::GeneratorConfig;

/// A running generator.
pub struct Generator {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Generator {
    /// Starts writing `load` into `topic`, holding back while `backlog` (if any) is full.
    pub fn start(
        brokers: &str,
        topic: &str,
        load: &GeneratorConfig,
        backlog: Option<Arc<Backlog>>,
    ) -> Result<Self, String> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true");
        if backlog.is_some() {
            // What is queued is not counted until delivered: keep that small.
            config.set("queue.buffering.max.messages", QUEUED_WHEN_HELD.to_string());
        }
        let producer: ThreadedProducer<Deliveries> = config
            .create_with_context(Deliveries { backlog })
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

/// The most records queued in the producer while a backlog can hold it back.
const QUEUED_WHEN_HELD: usize = 10_000;

/// Counts deliveries in the backlog, if any.
struct Deliveries {
    backlog: Option<Arc<Backlog>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let Some(backlog) = &self.backlog else {
            return;
        };
        let (Ok(message) | Err((_, message))) = result;
        let bytes = message.key_len() + message.payload_len();
        backlog.sent(bytes);
        if result.is_ok() {
            backlog.delivered(message.partition(), message.offset(), bytes);
        }
    }
}

fn generate(
    producer: &ThreadedProducer<Deliveries>,
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
        if producer
            .context()
            .backlog
            .as_ref()
            .is_some_and(|backlog| backlog.is_full())
        {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        key.clear();
        value.clear();
        use std::fmt::Write as _;
        let _ = write!(key, "k{}", sent % 1000);
        let _ = write!(value, "{{\"key\":\"{key}\",\"seq\":{sent}}}");
        // Counted before it goes: its report may come at once.
        let backlog = producer.context().backlog.as_deref();
        if let Some(backlog) = backlog {
            backlog.sending(key.len() + value.len());
        }
        match producer.send(BaseRecord::to(topic).key(&key).payload(&value)) {
            Ok(()) => sent += 1,
            Err(_) => {
                if let Some(backlog) = backlog {
                    backlog.sent(key.len() + value.len());
                }
                std::thread::sleep(Duration::from_millis(5)); // queue full: let it drain
            }
        }
    }
    if let Err(error) = producer.flush(Duration::from_secs(30)) {
        tracing::warn!(%error, "generator: not every record was delivered");
    }
    tracing::info!(records = sent, "generator done");
    sent
}
