//! The Kafka sink actor (`/pipelines/<p>/sinks/<k>`): writes each record to its output topic
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
use std::time::Duration;

use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use streamvisor_supervision::{ActorPath, Failure, StopReason, Worker, WorkerContext};

use crate::flow::inlet::{Inlet, Inlets, StageMessage};
use crate::metrics::SinkMetrics;
use crate::pipeline::acks::AckRouter;
use crate::record::Batch;
use crate::sink::produce::{origin_headers, producer_config, with_index};
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

/// The recipe of a Kafka sink.
#[derive(Clone, Debug)]
pub struct KafkaSinkRecipe {
    /// Where it writes.
    pub settings: KafkaSinkSettings,
    /// Records it can hold.
    pub capacity: u64,
    /// The pipeline's inlets.
    pub inlets: Inlets,
    /// Where acks go.
    pub acks: AckRouter,
    /// The sink's metrics.
    pub metrics: SinkMetrics,
}

/// A batch waiting for its delivery reports.
struct InFlight {
    batch: Batch,
    remaining: AtomicUsize,
    failed: AtomicBool,
    sent_at: std::time::Instant,
}

/// Acknowledges batches from the producer's delivery reports.
struct Deliveries {
    acks: AckRouter,
    inlet: Arc<Inlet>,
    metrics: SinkMetrics,
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
            if let Some(source) = self.acks.source(batch.topic()) {
                source.send(SourceInput::Rewind {
                    partition: batch.partition(),
                });
            }
        } else {
            self.acks.ack(batch);
            self.metrics.records_out.increment(batch.len() as u64);
            self.metrics
                .write_seconds
                .record(in_flight.sent_at.elapsed().as_secs_f64());
        }
        self.inlet.grant(batch.len() as u64);
    }
}

/// A batch partly handed to the producer.
struct Sending {
    in_flight: Arc<InFlight>,
    /// Records handed over so far.
    sent: usize,
}

/// A Kafka sink actor.
pub struct KafkaSinkWorker {
    recipe: KafkaSinkRecipe,
    producer: Option<ThreadedProducer<Deliveries>>,
    path: Option<ActorPath>,
    inlet: Option<Arc<Inlet>>,
    queue: VecDeque<Sending>,
    retry_scheduled: bool,
}

impl KafkaSinkWorker {
    /// A fresh sink from its recipe (its producer is made when it starts).
    pub fn new(recipe: KafkaSinkRecipe) -> Self {
        KafkaSinkWorker {
            recipe,
            producer: None,
            path: None,
            inlet: None,
            queue: VecDeque::new(),
            retry_scheduled: false,
        }
    }

    /// Hands queued records to the producer until its queue is full.
    fn send_queued(&mut self, ctx: &mut WorkerContext<'_, Self>) -> Result<(), Failure> {
        let Some(producer) = self.producer.as_ref() else {
            return Ok(());
        };
        let topic = self.recipe.settings.topic.as_str();
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
                        if !self.retry_scheduled {
                            self.retry_scheduled = true;
                            ctx.send_later(StageMessage::Retry, Duration::from_millis(10));
                        }
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

impl Worker for KafkaSinkWorker {
    type Message = StageMessage;

    fn started(&mut self, ctx: &mut WorkerContext<'_, Self>) -> Result<(), Failure> {
        let inlet = self
            .recipe
            .inlets
            .open(ctx.path().clone(), ctx.myself(), self.recipe.capacity);
        let settings = &self.recipe.settings;
        let producer = producer_config(&settings.brokers, &settings.properties)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .create_with_context(Deliveries {
                acks: self.recipe.acks.clone(),
                inlet: Arc::clone(&inlet),
                metrics: self.recipe.metrics.clone(),
            })
            .map_err(|error| Failure::new(format!("Kafka sink producer: {error}")))?;
        self.producer = Some(producer);
        self.inlet = Some(inlet);
        self.path = Some(ctx.path().clone());
        Ok(())
    }

    fn handle(
        &mut self,
        message: StageMessage,
        ctx: &mut WorkerContext<'_, Self>,
    ) -> Result<(), Failure> {
        match message {
            // Nothing to send (only offsets it covers): no delivery report would acknowledge it.
            StageMessage::Batch(batch) if batch.is_empty() => self.recipe.acks.ack(&batch),
            StageMessage::Batch(batch) => self.queue.push_back(Sending {
                in_flight: Arc::new(InFlight {
                    remaining: AtomicUsize::new(batch.len()),
                    failed: AtomicBool::new(false),
                    sent_at: std::time::Instant::now(),
                    batch,
                }),
                sent: 0,
            }),
            StageMessage::Retry => self.retry_scheduled = false,
            StageMessage::Wake | StageMessage::Tick | StageMessage::Completed(_) => {}
        }
        self.send_queued(ctx)
    }

    fn stopped(&mut self, _reason: &StopReason) {
        if let (Some(path), Some(inlet)) = (&self.path, &self.inlet) {
            self.recipe.inlets.withdraw(path, inlet);
        }
        if let Some(producer) = self.producer.take() {
            flush_elsewhere(producer);
        }
    }
}

impl Drop for KafkaSinkWorker {
    fn drop(&mut self) {
        // After a panic `stopped` does not run: the producer still must not end on the arbiter.
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
