//! The Kafka sink's delivery reports: a batch is settled when the report of its last record is
//! in. Each record that did not go through is classified once ([`ProduceError`]):
//!
//! - refused for good (too large, invalid, a null key on a compacted topic): it goes to the dead
//!   letters (acknowledged on their delivery), and the rest of its batch is settled as written;
//! - an innocent record of a refused message set: it is sent again, on its own;
//! - anything else (past `delivery.timeout.ms`, ...): its partition rewinds and replays.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rdkafka::message::{Headers, Message};
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::ClientContext;
use streamvisor_supervision::ActorRef;

use crate::pipeline::dead_letters::{DeadLetterReason, DeadLetterTarget};
use crate::record::Batch;
use crate::sink::actor::SinkMessage;
use crate::sink::produce::ProduceError;
use crate::sink::writer::Settler;
use crate::source::kafka::SourceInput;

/// What became of a record that did not go through.
#[derive(Debug)]
enum Outcome {
    /// Refused for good: to the dead letters, with why.
    Refused(String),
    /// Refused for another record's sake: sent again.
    Resend,
    /// Failed otherwise: its partition rewinds.
    Failed,
}

/// A batch waiting for its delivery reports.
pub(super) struct InFlight {
    pub(super) batch: Batch,
    remaining: AtomicUsize,
    sent_at: Instant,
    /// The records that did not go through, by position in the batch.
    outcomes: Mutex<Vec<(usize, Outcome)>>,
}

impl InFlight {
    pub(super) fn new(batch: Batch) -> Self {
        InFlight {
            remaining: AtomicUsize::new(batch.len()),
            sent_at: Instant::now(),
            outcomes: Mutex::new(Vec::new()),
            batch,
        }
    }

    /// Notes that the record at `position` did not go through for `why`.
    fn note(&self, position: usize, outcome: Outcome) {
        self.outcomes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((position, outcome));
    }

    /// One more record is done with; true for the last one.
    fn done_with_one(&self) -> bool {
        self.remaining.fetch_sub(1, Ordering::AcqRel) == 1
    }
}

/// Settles batches from the producer's delivery reports.
pub(super) struct Deliveries {
    pub(super) settler: Settler,
    pub(super) dead_letters: DeadLetterTarget,
    /// The sink's path (dead letters name it).
    pub(super) component: String,
    /// Records to send again, to the writer.
    pub(super) resend: Sender<Batch>,
    /// The sink actor, woken to send them.
    pub(super) myself: ActorRef<SinkMessage>,
    /// This producer sends one record a message set (a refusal is about that record alone).
    pub(super) singly: bool,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Arc<InFlight>;

    fn delivery(&self, result: &DeliveryResult<'_>, in_flight: Arc<InFlight>) {
        if let Err((error, message)) = result {
            let position = position_of(&in_flight.batch, message);
            // A refusal from the batching producer may be of the whole message set (a set too
            // large for the topic; INVALID_RECORD for every record of a set when the broker's
            // answer names none): its records are tried again alone first, and only a record
            // refused alone is at fault.
            let outcome = match (ProduceError::of(error.rdkafka_error_code()), position) {
                (ProduceError::RecordLevel, Some(_)) if self.singly => {
                    Outcome::Refused(error.to_string())
                }
                (ProduceError::RecordLevel | ProduceError::Resend, Some(_)) => Outcome::Resend,
                _ => {
                    tracing::error!(%error, partition = in_flight.batch.partition(), "Kafka sink: a record was not delivered; rewinding its partition");
                    Outcome::Failed
                }
            };
            in_flight.note(position.unwrap_or(usize::MAX), outcome);
        }
        if in_flight.done_with_one() {
            self.settle(&in_flight);
        }
    }
}

impl Deliveries {
    /// The record at `position` of `in_flight` was refused before it was sent (`why`); settles
    /// the batch when it was the last one outstanding.
    pub(super) fn refused_at_send(&self, in_flight: &InFlight, position: usize, why: String) {
        in_flight.note(position, Outcome::Refused(why));
        if in_flight.done_with_one() {
            self.settle(in_flight);
        }
    }

    /// Every record of `in_flight` is done with: settles it.
    fn settle(&self, in_flight: &InFlight) {
        let batch = &in_flight.batch;
        let outcomes = std::mem::take(
            &mut *in_flight
                .outcomes
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        if outcomes.is_empty() {
            self.settler.timed(in_flight.sent_at);
            self.settler.durable([batch]);
            return;
        }
        if outcomes
            .iter()
            .any(|(_, outcome)| matches!(outcome, Outcome::Failed))
            || !self.dead_letter_all(batch, &outcomes)
        {
            self.rewind(batch);
            return;
        }
        let mut again = batch.successor(outcomes.len());
        for (position, record) in batch.iter().enumerate() {
            if outcomes
                .iter()
                .any(|(at, outcome)| *at == position && matches!(outcome, Outcome::Resend))
            {
                again.push_copy(&record);
            }
        }
        let elsewhere = |position: usize| outcomes.iter().any(|(at, _)| *at == position);
        let delivered: Vec<i64> = batch
            .iter()
            .enumerate()
            .filter(|(position, _)| !elsewhere(*position))
            .map(|(_, record)| record.offset)
            .filter(|offset| *offset != crate::record::NO_OFFSET)
            .collect();
        let written = delivered.len() as u64;
        self.settler
            .acks()
            .ack_some(batch, delivered.into_iter(), 1);
        let metrics = self.settler.metrics();
        metrics.records_out.increment(written);
        metrics.settled.durable(batch, outcomes.len());
        self.settler.timed(in_flight.sent_at);
        // The records sent again give their credit back when they are settled.
        self.settler.give_back((batch.len() - again.len()) as u64);
        if again.is_empty() {
            return;
        }
        let partition = again.partition();
        let records = again.len();
        match self.resend.send(again) {
            Ok(()) => {
                // Taken at the actor's next message of any kind, if this wake finds no room.
                let _ = self.myself.try_send(SinkMessage::Wake);
            }
            Err(_) => {
                // The writer is gone: its partition replays them (their credit comes back now).
                tracing::warn!(sink = %self.component, partition, records, "records to send again outlived their sink; rewinding");
                if let Some(source) = self.settler.acks().source(batch.topic()) {
                    source.send(SourceInput::Rewind {
                        partition,
                        incarnation: Some(batch.incarnation()),
                    });
                }
                self.settler.give_back(records as u64);
            }
        }
    }

    /// Sends the refused records of `batch` to the dead letters; false when one could not be
    /// sent for good (the partition rewinds instead).
    fn dead_letter_all(&self, batch: &Batch, outcomes: &[(usize, Outcome)]) -> bool {
        let Some(source) = self.settler.acks().source(batch.topic()) else {
            return false; // the source stopped: replayed by the partition's next reader
        };
        let Ok(producer) = self.dead_letters.producer() else {
            return false;
        };
        for (position, record) in batch.iter().enumerate() {
            let Some(why) = outcomes.iter().find_map(|(at, outcome)| match outcome {
                Outcome::Refused(why) if *at == position => Some(why),
                _ => None,
            }) else {
                continue;
            };
            tracing::warn!(sink = %self.component, partition = batch.partition(), offset = record.offset, %why, "record refused by Kafka; sent to the dead letters");
            // A full queue is waited out here: this holds only the sink's delivery reports back.
            if let Err(error) =
                producer.send_refused_waiting(&source, batch, &record, why, &self.component)
            {
                tracing::error!(%error, "Kafka sink: a dead letter was refused; rewinding its partition");
                return false;
            }
            self.settler
                .metrics()
                .dead_letters
                .sent(DeadLetterReason::RefusedBySink);
        }
        true
    }

    /// Rewinds `batch`'s partition (it replays) and gives its credit back.
    fn rewind(&self, batch: &Batch) {
        if let Some(source) = self.settler.acks().source(batch.topic()) {
            source.send(SourceInput::Rewind {
                partition: batch.partition(),
                incarnation: Some(batch.incarnation()),
            });
        }
        self.settler.give_back(batch.len() as u64);
    }
}

/// The position in `batch` of the record `message` was made from, by its origin headers.
fn position_of(batch: &Batch, message: &impl Message) -> Option<usize> {
    let headers = message.headers()?;
    let header = |name: &str| -> Option<i64> {
        headers
            .iter()
            .find(|header| header.key == name)
            .and_then(|header| std::str::from_utf8(header.value?).ok()?.parse().ok())
    };
    let offset = header("streamvisor.origin.offset")?;
    let index = header("streamvisor.origin.index").and_then(|index| u32::try_from(index).ok());
    batch
        .iter()
        .position(|record| record.offset == offset && record.index == index)
}
