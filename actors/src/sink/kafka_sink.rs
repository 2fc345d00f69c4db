//! The Kafka sink's writer: writes each record to its output topic
//! with the idempotent producer (acks=all, so the broker never holds a retried record twice)
//! and acknowledges a batch only when the delivery report of its last record is in; only then
//! does the credit go back. Each output record keeps its key and payload and carries its origin
//! in headers (`streamvisor.origin.topic`, `.partition`, `.offset`, and `.index` for a piece
//! of a flat_map's output).
//!
//! Delivery is at-least-once: a record the producer or the broker refuses for good (too large,
//! invalid, a null key on a compacted topic) goes to the dead letters and the rest of its batch
//! is written once; an innocent record of a refused message set is sent again; a record whose
//! delivery fails otherwise (past librdkafka's `delivery.timeout.ms`) rewinds its partition, and
//! a replay after any rewind writes the replayed records again (downstream readers dedupe on the
//! origin headers). See [`deliveries`]. A full producer
//! queue holds the rest of the batch and retries in 10 ms, on the actor, never blocking its
//! arbiter. When the actor stops, its producer is flushed (at most 10 s) on a thread of its own.

mod deliveries;

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use streamvisor_supervision::Failure;

use crate::pipeline::dead_letters::DeadLetterTarget;
use crate::record::Batch;
use crate::sink::actor::{SinkContext, SinkWriter};
use crate::sink::produce::{origin_headers, producer_config, with_index, ProduceError};
use deliveries::{Deliveries, InFlight};

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

/// A batch partly handed to a producer.
struct Sending {
    in_flight: Arc<InFlight>,
    /// Records handed over so far.
    sent: usize,
    /// Sent again one record a message set (through the singles producer).
    singly: bool,
}

/// Hands records to the idempotent producer; its delivery reports settle them.
pub struct KafkaWriter {
    settings: KafkaSinkSettings,
    dead_letters: DeadLetterTarget,
    producer: Option<ThreadedProducer<Deliveries>>,
    /// A producer of one record a message set, made on the first record sent again: a broker
    /// may refuse a whole message set for one record (its size, or INVALID_RECORD for every
    /// record when its answer names none), so each record of a refused set is tried again
    /// alone, and only one refused alone goes to the dead letters.
    singles: Option<ThreadedProducer<Deliveries>>,
    queue: VecDeque<Sending>,
    /// Where the delivery reports hand back records to be sent again.
    resend: Option<(Sender<Batch>, Receiver<Batch>)>,
}

impl KafkaWriter {
    /// A writer for `settings` whose refused records go to `dead_letters` (its producer is made
    /// when the actor starts).
    pub fn new(settings: KafkaSinkSettings, dead_letters: DeadLetterTarget) -> Self {
        KafkaWriter {
            settings,
            dead_letters,
            producer: None,
            singles: None,
            queue: VecDeque::new(),
            resend: None,
        }
    }

    /// A producer whose delivery reports settle through this sink; `singly`: one record a
    /// message set.
    fn producer(
        &self,
        sink: &SinkContext<'_, '_, Self>,
        singly: bool,
    ) -> Result<ThreadedProducer<Deliveries>, Failure> {
        let settings = &self.settings;
        let mut config = producer_config(&settings.brokers, &settings.properties);
        config.set("enable.idempotence", "true").set("acks", "all");
        if singly {
            config.set("batch.num.messages", "1");
        }
        let resend = self
            .resend
            .as_ref()
            .map(|(sender, _)| sender.clone())
            .ok_or_else(|| Failure::new("Kafka sink: no resend channel"))?;
        config
            .create_with_context(Deliveries {
                settler: sink.settler().clone(),
                dead_letters: self.dead_letters.clone(),
                component: sink.component().to_owned(),
                resend,
                myself: sink.myself(),
                singly,
            })
            .map_err(|error| Failure::new(format!("Kafka sink producer: {error}")))
    }

    /// Queues the records the delivery reports handed back to be sent again (whatever woke the
    /// actor: their wake may have found the mailbox full).
    fn take_resent(&mut self, sink: &SinkContext<'_, '_, Self>) -> Result<(), Failure> {
        let again: Vec<Batch> = self
            .resend
            .as_ref()
            .map(|(_, resent)| resent.try_iter().collect())
            .unwrap_or_default();
        if again.is_empty() {
            return Ok(());
        }
        if self.singles.is_none() {
            self.singles = Some(self.producer(sink, true)?);
        }
        for batch in again {
            self.queue.push_back(Sending {
                in_flight: Arc::new(InFlight::new(batch)),
                sent: 0,
                singly: true,
            });
        }
        Ok(())
    }

    /// Hands queued records to their producer until its queue is full.
    fn send_queued(&mut self, sink: &mut SinkContext<'_, '_, Self>) -> Result<(), Failure> {
        self.take_resent(sink)?;
        let topic = self.settings.topic.as_str();
        while let Some(sending) = self.queue.front_mut() {
            let chosen = if sending.singly {
                self.singles.as_ref()
            } else {
                self.producer.as_ref()
            };
            let Some(producer) = chosen else {
                return Ok(());
            };
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
                let position = sending.sent;
                match producer.send(message) {
                    Ok(()) => sending.sent += 1,
                    Err((error, _)) => match ProduceError::of(error.rdkafka_error_code()) {
                        ProduceError::QueueFull => {
                            sink.retry_in(Duration::from_millis(10));
                            return Ok(());
                        }
                        // Refused before it left: the record alone is at fault.
                        ProduceError::RecordLevel => {
                            sending.sent += 1;
                            producer.context().refused_at_send(
                                &sending.in_flight,
                                position,
                                error.to_string(),
                            );
                        }
                        ProduceError::Resend | ProduceError::Other => {
                            return Err(Failure::new(format!(
                                "Kafka sink could not send to {topic:?}: {error}"
                            )))
                        }
                    },
                }
            }
            self.queue.pop_front();
        }
        Ok(())
    }
}

impl SinkWriter for KafkaWriter {
    fn open(&mut self, sink: &mut SinkContext<'_, '_, Self>) -> Result<(), Failure> {
        self.resend = Some(channel());
        self.producer = Some(self.producer(sink, false)?);
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
            in_flight: Arc::new(InFlight::new(batch)),
            sent: 0,
            singly: false,
        });
        self.send_queued(sink)
    }

    fn resume(&mut self, sink: &mut SinkContext<'_, '_, Self>) -> Result<(), Failure> {
        self.send_queued(sink)
    }

    fn close(&mut self) {
        // The producer must not end on the arbiter: flushing and dropping it block.
        for producer in [self.producer.take(), self.singles.take()]
            .into_iter()
            .flatten()
        {
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
