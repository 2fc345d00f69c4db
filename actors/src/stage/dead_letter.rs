//! A stage's dead letters: the records its operator refused go to the dead-letter topic and are
//! acknowledged on delivery. A full producer queue is waited out in place (the failure-or-retry
//! rule): what it did not take waits, in order, and is sent again on the stage's retry timer;
//! the partition cannot commit past those records meanwhile, so nothing is lost and the actor
//! does not fail.

use streamvisor_supervision::Failure;

use super::core::{Rejected, StageCore};
use crate::pipeline::dead_letters::{DeadLetterOrigin, DeadLetters};
use crate::record::Batch;

/// What a send of one batch's dead letters came to.
enum Sent {
    /// Every one was taken.
    All,
    /// The queue was full from the one at this place in the list on.
    QueueFullFrom(usize),
}

impl StageCore {
    /// Sends the records of `batch` in [`StageCore::rejected`] to the dead letters; those a full
    /// producer queue does not take wait for [`StageCore::retry_dead_letters`].
    pub(super) fn dead_letter(&mut self, batch: &Batch) -> Result<(), Failure> {
        if self.rejected.is_empty() {
            return Ok(());
        }
        let rejected = std::mem::take(&mut self.rejected);
        let sent = if self.waiting_dead_letters.is_empty() {
            self.send_dead_letters(batch, &rejected)?
        } else {
            Sent::QueueFullFrom(0) // behind those already waiting
        };
        if let Sent::QueueFullFrom(first) = sent {
            self.waiting_dead_letters
                .push_back((batch.clone(), rejected[first..].to_vec()));
        }
        self.rejected = rejected;
        Ok(())
    }

    /// True while dead letters wait for room in the producer's queue.
    pub(super) fn dead_letters_wait(&self) -> bool {
        !self.waiting_dead_letters.is_empty()
    }

    /// Sends the dead letters that waited, in order, as far as the queue takes them (those of
    /// an older incarnation are dropped: their partition rewound and reads them again).
    pub(super) fn retry_dead_letters(&mut self) -> Result<(), Failure> {
        while let Some((batch, rejected)) = self.waiting_dead_letters.pop_front() {
            if batch.incarnation() < self.incarnation {
                continue;
            }
            if let Sent::QueueFullFrom(first) = self.send_dead_letters(&batch, &rejected)? {
                let rest = rejected[first..].to_vec();
                self.waiting_dead_letters.push_front((batch, rest));
                return Ok(());
            }
        }
        Ok(())
    }

    /// Sends the records of `batch` listed in `rejected` (in batch order), stopping at a full
    /// queue.
    fn send_dead_letters(&self, batch: &Batch, rejected: &[Rejected]) -> Result<Sent, Failure> {
        let Some(source) = self.recipe.acks.source(batch.topic()) else {
            return Ok(Sent::All); // the source stopped: replayed by the partition's next reader
        };
        let producer: DeadLetters = self
            .recipe
            .dead_letters
            .producer()
            .map_err(|error| Failure::new(format!("dead-letter producer: {error}")))?;
        let mut next = 0;
        for (index, record) in batch.iter().enumerate() {
            let Some(refused) = rejected.get(next).filter(|refused| refused.index == index) else {
                continue;
            };
            tracing::debug!(partition = batch.partition(), offset = record.offset, why = %refused.why, "record to the dead letters");
            let origin =
                DeadLetterOrigin::of(&source, batch, record.offset, self.recipe.paths_to_sinks);
            match producer.send(
                batch.topic(),
                &record,
                origin,
                refused.reason,
                &refused.why,
                &self.actor,
            ) {
                Ok(()) => {}
                Err(None) => {
                    tracing::warn!(
                        partition = batch.partition(),
                        offset = record.offset,
                        "dead letter waits for the producer's queue"
                    );
                    return Ok(Sent::QueueFullFrom(next));
                }
                Err(Some(why)) => return Err(Failure::new(why)),
            }
            if let Some(metrics) = &self.metrics {
                metrics.dead_letters.sent(refused.reason);
            }
            next += 1;
        }
        Ok(Sent::All)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::flow::outputs::FanOut;
    use crate::pipeline::acks::AckRouter;
    use crate::pipeline::dead_letters::DeadLetterTarget;
    use crate::source::kafka::source_channel;
    use crate::stage::{Operation, StageRecipe};

    /// A stage core whose dead letters go to a producer that holds one message at most and
    /// reaches no broker: its queue is full from the second dead letter on.
    fn core_with_a_full_queue() -> (StageCore, crate::source::kafka::SourceInputs) {
        let (handle, inputs) = source_channel();
        let acks = AckRouter::default();
        acks.register(Arc::from("t"), handle);
        let properties =
            BTreeMap::from([("queue.buffering.max.messages".to_owned(), "1".to_owned())]);
        let recipe = StageRecipe {
            operation: Operation::Passthrough,
            next: Vec::new(),
            fan_out: FanOut::Broadcast,
            paths_to_sinks: 1,
            capacity: 16,
            unacked_cap: (100, 10),
            inlets: Default::default(),
            acks,
            dead_letters: DeadLetterTarget::new("127.0.0.1:1", &properties, "t.dead-letters"),
            user_code: Default::default(),
        };
        (StageCore::new(recipe), inputs)
    }

    #[test]
    fn a_full_dead_letter_queue_is_waited_out_in_order_not_failed() {
        let (mut core, _inputs) = core_with_a_full_queue();
        let mut batch = Batch::new(Arc::from("t"), 0, 1, 3);
        for offset in 0..3 {
            batch.push(offset, None, None, b"not json");
        }
        core.incarnation = 1;
        core.rejected = vec![
            Rejected::refused(0, "bad".to_owned()),
            Rejected::refused(2, "bad".to_owned()),
        ];
        core.dead_letter(&batch)
            .expect("a full queue does not fail the stage");
        assert!(core.dead_letters_wait());
        let waiting: Vec<usize> = core.waiting_dead_letters[0]
            .1
            .iter()
            .map(|rejected| rejected.index)
            .collect();
        assert_eq!(waiting, [2], "the first went, the second waits");
        // Still full: it keeps waiting, and a later batch's dead letters queue behind it.
        core.retry_dead_letters().expect("no failure");
        core.rejected = vec![Rejected::refused(1, "bad".to_owned())];
        core.dead_letter(&batch).expect("no failure");
        assert_eq!(core.waiting_dead_letters.len(), 2);
        // A rewind drops what an older incarnation left waiting.
        core.incarnation = 2;
        core.retry_dead_letters().expect("no failure");
        assert!(!core.dead_letters_wait());
    }
}
