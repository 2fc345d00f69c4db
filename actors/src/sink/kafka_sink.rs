//! The Kafka sink's writer: writes each record to its output topic
//! with the idempotent producer (acks=all, so the broker never holds a retried record twice)
//! and acknowledges a batch only when the delivery report of its last record is in; only then
//! does the credit go back. Each output record keeps its key and payload and carries its origin
//! in headers (`streamvisor.origin.topic`, `.partition`, `.offset`, and `.index` for a piece
//! of a flat_map's output).
//!
//! Delivery is at-least-once: a record whose delivery fails for good (past librdkafka's
//! `delivery.timeout.ms`) rewinds its partition, and a replay after any rewind writes the
//! replayed records again (downstream readers dedupe on the origin headers). A full producer
//! queue holds the rest of the batch and retries in 10 ms, on the actor, never blocking its
//! arbiter. When the actor stops, its producer is flushed (at most 10 s) on a thread of its own.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use streamvisor_supervision::Failure;

use crate::record::Batch;
use crate::sink::actor::{SinkContext, SinkWriter};
use crate::sink::produce::{origin_headers, producer_config, with_index};
use crate::sink::writer::Settler;
use crate::source::kafka::SourceInput;

/// Where and how the Kafka sink writes.
#[derive(Clone, Debug)]
pub struct KafkaSinkSettings {
    /// The brokers.
    pub brokers: String,
    /// The output topic.
    pub topic: String,
    /// librdkafka producer properties (the pipeline's pass-through ones, then the sink's own:
    /// `linger.ms`, `batch.num.messages`, `compression.type`, ...).
    pub properties: BTreeMap<String, String>,
}

/// A batch waiting for its delivery reports.
struct InFlight {
    batch: Batch,
    remaining: AtomicUsize,
    failed: AtomicBool,
    sent_at: Instant,
}

/// Settles batches from the producer's delivery reports.
struct Deliveries {
    settler: Settler,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Arc<InFlight>;

    fn delivery(&self, result: &DeliveryResult<'_>, in_flight: Arc<InFlight>) {
        if let Err((error, _)) = result {
            tracing::error!(%error, partition = in_flight.batch.partition(), "Kafka sink: a record was not delivered; rewinding its partition");
            in_flight.failed.store(true, Ordering::Release);
        }
        if in_flight.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let batch = &in_flight.batch;
        if in_flight.failed.load(Ordering::Acquire) {
            if let Some(source) = self.settler.acks().source(batch.topic()) {
                source.send(SourceInput::Rewind {
                    partition: batch.partition(),
                });
            }
            self.settler.give_back(batch.len() as u64);
        } else {
            self.settler.timed(in_flight.sent_at);
            self.settler.durable([batch]);
        }
    }
}

/// A batch partly handed to the producer.
struct Sending {
    in_flight: Arc<InFlight>,
    /// Records handed over so far.
    sent: usize,
}

/// Hands records to the idempotent producer; its delivery reports settle them.
pub struct KafkaWriter {
    settings: KafkaSinkSettings,
    producer: Option<ThreadedProducer<Deliveries>>,
    queue: VecDeque<Sending>,
}

impl KafkaWriter {
    /// A writer for `settings` (its producer is made when the actor starts).
    pub fn new(settings: KafkaSinkSettings) -> Self {
        KafkaWriter {
            settings,
            producer: None,
            queue: VecDeque::new(),
        }
    }

    /// Hands queued records to the producer until its queue is full.
    fn send_queued(&mut self, sink: &mut SinkContext<'_, '_, Self>) -> Result<(), Failure> {
        let Some(producer) = self.producer.as_ref() else {
            return Ok(());
        };
        let topic = self.settings.topic.as_str();
        while let Some(sending) = self.queue.front_mut() {
            let batch = &sending.in_flight.batch;
            let partition = batch.partition().to_string();
            for record in batch.iter().skip(sending.sent) {
                let mut digits = itoa::Buffer::new();
                let offset = digits.format(record.offset);
                let headers = with_index(
                    origin_headers(batch.topic(), &partition, offset, 1),
                    record.index,
                );
                let mut message: BaseRecord<'_, [u8], [u8], Arc<InFlight>> =
                    BaseRecord::with_opaque_to(topic, Arc::clone(&sending.in_flight))
                        .payload(record.value)
                        .headers(headers);
                if let Some(key) = record.key {
                    message = message.key(key);
                }
                if let Some(timestamp) = record.timestamp_ms {
                    message = message.timestamp(timestamp);
                }
                match producer.send(message) {
                    Ok(()) => sending.sent += 1,
                    Err((error, _))
                        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) =>
                    {
                        sink.retry_in(Duration::from_millis(10));
                        return Ok(());
                    }
                    Err((error, _)) => {
                        return Err(Failure::new(format!(
                            "Kafka sink could not send to {topic:?}: {error}"
                        )))
                    }
                }
            }
            self.queue.pop_front();
        }
        Ok(())
    }
}

impl SinkWriter for KafkaWriter {
    fn open(&mut self, sink: &mut SinkContext<'_, '_, Self>) -> Result<(), Failure> {
        let settings = &self.settings;
        let producer = producer_config(&settings.brokers, &settings.properties)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .create_with_context(Deliveries {
                settler: sink.settler().clone(),
            })
            .map_err(|error| Failure::new(format!("Kafka sink producer: {error}")))?;
        self.producer = Some(producer);
        Ok(())
    }

    fn take(&mut self, batch: Batch, sink: &mut SinkContext<'_, '_, Self>) -> Result<(), Failure> {
        if batch.is_empty() {
            // Nothing to send (only offsets it covers): no delivery report would settle it.
            sink.settler().acks().ack(&batch);
            sink.settler().metrics().settled.durable(&batch, 0);
            return Ok(());
        }
        self.queue.push_back(Sending {
            in_flight: Arc::new(InFlight {
                remaining: AtomicUsize::new(batch.len()),
                failed: AtomicBool::new(false),
                sent_at: Instant::now(),
                batch,
            }),
            sent: 0,
        });
        self.send_queued(sink)
    }

    fn resume(&mut self, sink: &mut SinkContext<'_, '_, Self>) -> Result<(), Failure> {
        self.send_queued(sink)
    }

    fn close(&mut self) {
        // The producer must not end on the arbiter: flushing and dropping it block.
        if let Some(producer) = self.producer.take() {
            flush_elsewhere(producer);
        }
    }
}

/// Flushes (at most 10 s) and drops `producer` on a thread of its own: both block.
fn flush_elsewhere(producer: ThreadedProducer<Deliveries>) {
    let flushed = std::thread::Builder::new()
        .name("kafka-sink-flush".to_owned())
        .spawn(move || {
            if let Err(error) = producer.flush(Duration::from_secs(10)) {
                tracing::warn!(%error, "Kafka sink: records left unflushed at stop (they are replayed)");
            }
        });
    if let Err(error) = flushed {
        tracing::warn!(%error, "Kafka sink: could not start its flush thread");
    }
}
