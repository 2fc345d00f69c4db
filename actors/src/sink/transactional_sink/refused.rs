//! The writer's side of refusals (see [`super::refusals`]): sorting the delivery reports'
//! refusals, taking refused records out of the batches and sending them to the dead letters.

use std::sync::PoisonError;

use super::{refusals, Writer};
use crate::pipeline::dead_letters::DeadLetterReason;
use crate::record::Batch;
use crate::source::kafka::SourceInput;

impl Writer {
    /// Whether a record of the open transaction was refused, or is a suspect (it must abort).
    pub(super) fn refusals_waiting(&mut self) -> bool {
        self.collect_reported();
        !self.sends.refused.is_empty() || !self.next_suspects.is_empty()
    }

    /// Sorts the refusals of the open transaction's delivery reports: a record sent alone is
    /// refused; one refused in a set with others is a suspect for the next transaction.
    pub(super) fn collect_reported(&mut self) {
        let reported =
            std::mem::take(&mut *self.reported.lock().unwrap_or_else(PoisonError::into_inner));
        for (tag, refusal) in reported {
            let Some((id, alone, bytes)) = self.sends.sent.record(tag) else {
                continue;
            };
            match refusal {
                Some((_, error)) if alone => self.sends.refused.push((id, error)),
                Some((true, error)) => match self.topic_limit() {
                    Some(limit) if bytes > limit => self.sends.refused.push((
                        id,
                        format!("{error}: {bytes} bytes alone, over the topic's max.message.bytes of {limit}"),
                    )),
                    Some(_) => {} // it fits alone: sent again
                    None => self.next_suspects.push(id),
                },
                Some((false, _)) => self.next_suspects.push(id),
                // Delivered alone: no suspect any more, whatever becomes of its transaction.
                None => self.sends.suspects.retain(|suspect| *suspect != id),
            }
        }
    }

    /// The output topic's `max.message.bytes`, asked of the brokers once.
    pub(super) fn topic_limit(&mut self) -> Option<usize> {
        if self.topic_limit.is_none() {
            self.topic_limit = Some(refusals::topic_limit(&self.recipe.settings));
            if let Some(None) = self.topic_limit {
                tracing::warn!(topic = %self.recipe.settings.topic, "max.message.bytes of the topic unknown: the records of a set refused for its size go again alone");
            }
        }
        self.topic_limit.flatten()
    }

    /// Takes the refused records out of the pending and held batches and sends them to the
    /// dead letters (acknowledged when the broker has them); their credit comes back. The
    /// suspects go alone in every transaction until one commits (one that failed for another
    /// reason tells nothing of them).
    pub(super) fn settle_refused(&mut self) {
        self.collect_reported();
        for suspect in std::mem::take(&mut self.next_suspects) {
            if !self.sends.suspects.contains(&suspect) {
                self.sends.suspects.push(suspect);
            }
        }
        if self.sends.refused.is_empty() {
            return;
        }
        let refused = std::mem::take(&mut self.sends.refused);
        let mut taken = refusals::take_out(&mut self.pending, &refused);
        taken.extend(refusals::take_out(&mut self.held, &refused));
        let mut settled = 0;
        for (batch, errors) in &taken {
            settled += batch.len() as u64;
            self.dead_letter(batch, errors);
        }
        self.settle_credit(settled);
    }

    /// Sends the records of `batch` to the dead letters with `errors`; a dead letter refused
    /// for good rewinds the partition instead (it replays).
    pub(super) fn dead_letter(&self, batch: &Batch, errors: &[String]) {
        let Some(source) = self.settler.acks().source(batch.topic()) else {
            return; // the source stopped: replayed by the partition's next reader
        };
        let rewind = |why: &str| {
            tracing::error!(%why, partition = batch.partition(), "exactly-once sink: a dead letter could not be sent; rewinding its partition");
            source.send(SourceInput::Rewind {
                partition: batch.partition(),
                incarnation: Some(batch.incarnation()),
            });
        };
        let producer = match self.recipe.dead_letters.producer() {
            Ok(producer) => producer,
            Err(error) => return rewind(&error.to_string()),
        };
        for (record, why) in batch.iter().zip(errors) {
            tracing::warn!(sink = %self.component, partition = batch.partition(), offset = record.offset, %why, "record refused by Kafka; sent to the dead letters, the transaction goes on without it");
            if let Err(error) =
                producer.send_refused_waiting(&source, batch, &record, why, &self.component)
            {
                return rewind(&error);
            }
            self.settler
                .metrics()
                .dead_letters
                .sent(DeadLetterReason::RefusedBySink);
        }
    }
}
