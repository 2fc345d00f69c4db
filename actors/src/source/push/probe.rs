//! [`BrokerProbe`]: whether a push source's broker answers, asked once at start and then every
//! second on a thread of its own (a metadata request never runs on an async worker). Ingest
//! answers 503 while it does not.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::producer::{FutureProducer, Producer};

/// How often the broker is asked.
const EVERY: Duration = Duration::from_secs(1);
/// How long one question may take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The last answer; the thread ends when the probe is dropped.
pub(super) struct BrokerProbe {
    last: Arc<Mutex<Result<(), String>>>,
    stop: Arc<AtomicBool>,
}

impl BrokerProbe {
    /// Asks once now, then keeps asking.
    pub(super) fn start(name: &str, producer: FutureProducer, topic: &str) -> Self {
        let last = Arc::new(Mutex::new(ask(&producer, topic)));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_last, thread_stop, topic) =
            (Arc::clone(&last), Arc::clone(&stop), topic.to_owned());
        let spawned = std::thread::Builder::new()
            .name(format!("ingest-probe-{name}"))
            .spawn(move || {
                while !thread_stop.load(Ordering::Acquire) {
                    std::thread::sleep(EVERY);
                    let answer = ask(&producer, &topic);
                    if let Err(why) = &answer {
                        tracing::warn!(%topic, %why, "ingest broker does not answer");
                    }
                    *thread_last.lock().unwrap_or_else(PoisonError::into_inner) = answer;
                }
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "could not start the ingest broker probe");
        }
        BrokerProbe { last, stop }
    }

    /// The last answer.
    pub(super) fn status(&self) -> Result<(), String> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for BrokerProbe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Whether the broker answers a metadata request for `topic` with the topic in it.
fn ask(producer: &FutureProducer, topic: &str) -> Result<(), String> {
    let metadata = producer
        .client()
        .fetch_metadata(Some(topic), TIMEOUT)
        .map_err(|error| format!("no metadata from the broker: {error}"))?;
    match metadata.topics().iter().find(|t| t.name() == topic) {
        Some(found) if found.error().is_none() && !found.partitions().is_empty() => Ok(()),
        Some(found) => Err(format!(
            "topic {topic}: {}",
            found
                .error()
                .map(|code| format!("{code:?}"))
                .unwrap_or_else(|| "no partitions".to_owned())
        )),
        None => Err(format!("topic {topic} is unknown to the broker")),
    }
}
