//! The buffer stage; [`Buffered`] is its state (Akka's `buffer(size, overflowStrategy)`): it
//! takes batches ahead of downstream demand, up to `batches` of them, and gives their input
//! credit back at once, so a slow consumer does not hold up its producer until the buffer is
//! full. What happens then is its [`OverflowStrategy`]:
//!
//! - `Backpressure`: the batch waits outside the buffer and its credit is withheld (upstream
//!   stops at its credit);
//! - `DropHead` / `DropTail` / `DropNew`: the oldest, the youngest buffered, or the incoming
//!   batch is dropped, its records acknowledged as deliberately dropped;
//! - `Fail`: the stage actor fails (restarted; the partition replays from its acknowledged
//!   prefix).
//!
//! The unit is a batch (what flows between actors), not a record.

use streamvisor_supervision::{Failure, WorkerContext};

use super::core::StageCore;
use super::{StageLogic, StageWorker};
use crate::operators::buffer::{BoundedBuffer, Offered, OverflowStrategy};
use crate::operators::error::OperatorError;
use crate::record::Batch;

/// What became of a batch offered to the buffer.
#[derive(Debug)]
pub(crate) struct Offer {
    /// Input credit to give back now.
    pub credit: u64,
    /// A batch dropped by the strategy: acknowledge its records.
    pub dropped: Option<Batch>,
}

/// A buffer stage's batches.
#[derive(Debug)]
pub(crate) struct Buffered {
    buffer: BoundedBuffer<(Batch, u64)>,
    /// A batch refused under `Backpressure`, with its withheld credit.
    refused: Option<(Batch, u64)>,
}

impl Buffered {
    /// A buffer of `batches` batches with `strategy`.
    pub(crate) fn new(batches: usize, strategy: OverflowStrategy) -> Result<Self, OperatorError> {
        let buffer = BoundedBuffer::new(batches, strategy).map_err(|error| match error {
            OperatorError::Zero { operator, .. } => OperatorError::Zero {
                operator,
                setting: "batches",
            },
            other => other,
        })?;
        Ok(Buffered {
            buffer,
            refused: None,
        })
    }

    /// Drops what is held of incarnations before `incarnation` (a rewind: replayed anyway);
    /// returns the credit withheld from a dropped waiting batch (give it back). Buffered
    /// batches' credit was given back when they were taken.
    pub(crate) fn drop_older_than(&mut self, incarnation: u64) -> u64 {
        self.buffer
            .retain(|(batch, _)| batch.incarnation() >= incarnation);
        match &self.refused {
            Some((waiting, _)) if waiting.incarnation() < incarnation => {
                self.refused.take().map_or(0, |(_, credit)| credit)
            }
            _ => 0,
        }
    }

    /// Offers `batch` (its input `credit`); `Err` when the strategy is `Fail` and the buffer
    /// is full.
    pub(crate) fn offer(&mut self, batch: Batch, credit: u64) -> Result<Offer, OperatorError> {
        if self.refused.is_some() {
            // Backpressure already: nothing passes the batch that waits.
            return Ok(self.wait(batch, credit));
        }
        match self.buffer.offer((batch, credit)) {
            Offered::Accepted => Ok(Offer {
                credit,
                dropped: None,
            }),
            Offered::Dropped((dropped, _)) => Ok(Offer {
                // The incoming batch's credit: a dropped buffered batch's came back when it
                // was taken; a dropped incoming batch gives its own back now.
                credit,
                dropped: Some(dropped),
            }),
            Offered::Refused((batch, credit)) => Ok(self.wait(batch, credit)),
            Offered::Failed(_, error) => Err(error),
        }
    }

    fn wait(&mut self, batch: Batch, credit: u64) -> Offer {
        match &mut self.refused {
            // Only one batch waits: the sender had credit for both, and both are held.
            Some((waiting, waiting_credit)) if waiting.incarnation() == batch.incarnation() => {
                for record in batch.iter() {
                    waiting.push_copy(&record);
                }
                waiting.cover(batch.covered().iter().copied());
                waiting.keep_counted(&batch);
                *waiting_credit += credit;
            }
            _ => self.refused = Some((batch, credit)),
        }
        Offer {
            credit: 0,
            dropped: None,
        }
    }

    /// The next batch to send on; a batch waiting under backpressure takes the room it leaves
    /// (its withheld credit is returned: give it back).
    pub(crate) fn take_next(&mut self) -> (Option<Batch>, u64) {
        let Some((batch, _)) = self.buffer.pop() else {
            return (None, 0);
        };
        let mut credit = 0;
        if let Some((waiting, waiting_credit)) = self.refused.take() {
            // There is room now: it cannot be refused again.
            if let Offered::Accepted = self.buffer.offer((waiting, waiting_credit)) {
                credit = waiting_credit;
            }
        }
        (Some(batch), credit)
    }

    /// True when nothing is buffered.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }
}

/// The buffer stage's logic.
pub(super) struct BufferLogic {
    buffered: Buffered,
}

impl BufferLogic {
    pub(super) fn new(batches: usize, strategy: OverflowStrategy) -> Result<Self, OperatorError> {
        Ok(BufferLogic {
            buffered: Buffered::new(batches, strategy)?,
        })
    }
}

impl StageLogic for BufferLogic {
    fn take(
        &mut self,
        batch: Batch,
        stage: &mut StageCore,
        _ctx: &mut WorkerContext<'_, StageWorker>,
    ) -> Result<(), Failure> {
        let stale = self.buffered.drop_older_than(batch.incarnation());
        stage.grant(stale);
        let credit = batch.len() as u64;
        let offer = self
            .buffered
            .offer(batch, credit)
            .map_err(|error| Failure::new(error.to_string()))?;
        if let Some(dropped) = offer.dropped {
            stage.settled(dropped.len() + dropped.covered().len(), |s| &s.dropped);
            let paths = stage.recipe.paths_to_sinks;
            stage
                .recipe
                .acks
                .ack_some(&dropped, dropped.offsets(), paths);
        }
        stage.grant(offer.credit);
        // The outputs take one batch at a time from the buffer (in `refill`): the buffer, not
        // their queue, holds.
        Ok(())
    }

    /// Hands the idle outputs the next buffered batch; false when the outputs are still busy
    /// or nothing is buffered.
    fn refill(&mut self, stage: &mut StageCore) -> bool {
        if !stage.outputs_idle() {
            return false;
        }
        let (next, credit) = self.buffered.take_next();
        stage.grant(credit);
        match next {
            Some(batch) => {
                stage.push(batch, 0);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn batch(first: i64) -> Batch {
        let mut batch = Batch::new(Arc::from("t"), 0, 1, 2);
        batch.push(first, None, None, b"{}");
        batch.push(first + 1, None, None, b"{}");
        batch
    }

    fn firsts(buffered: &mut Buffered) -> Vec<i64> {
        std::iter::from_fn(|| buffered.take_next().0)
            .map(|batch| batch.offsets().next().unwrap_or(-1))
            .collect()
    }

    #[test]
    fn each_strategy_does_what_it_says_when_full() {
        for (strategy, kept, dropped) in [
            (OverflowStrategy::DropHead, vec![2, 4], Some(0)),
            (OverflowStrategy::DropTail, vec![0, 4], Some(2)),
            (OverflowStrategy::DropNew, vec![0, 2], Some(4)),
        ] {
            let mut buffered = Buffered::new(2, strategy).expect("valid");
            for first in [0, 2] {
                let offer = buffered.offer(batch(first), 2).expect("room");
                assert_eq!((offer.credit, offer.dropped.is_none()), (2, true));
            }
            let offer = buffered.offer(batch(4), 2).expect("a drop");
            assert_eq!(offer.credit, 2, "{strategy:?}: the incoming batch's credit");
            assert_eq!(
                offer.dropped.and_then(|b| b.offsets().next()),
                dropped,
                "{strategy:?}"
            );
            assert_eq!(firsts(&mut buffered), kept, "{strategy:?}");
        }
        let mut failing = Buffered::new(1, OverflowStrategy::Fail).expect("valid");
        failing.offer(batch(0), 2).expect("room");
        assert_eq!(
            failing.offer(batch(2), 2).expect_err("full").to_string(),
            "buffer overflow: 1 items held and the overflow strategy is Fail"
        );
    }

    #[test]
    fn a_rewind_drops_older_batches_and_returns_withheld_credit() {
        let mut buffered = Buffered::new(1, OverflowStrategy::Backpressure).expect("valid");
        buffered.offer(batch(0), 2).expect("room");
        assert_eq!(buffered.offer(batch(2), 2).expect("waits").credit, 0);
        assert_eq!(
            buffered.drop_older_than(2),
            2,
            "the waiting batch's credit comes back"
        );
        assert!(
            buffered.is_empty(),
            "the buffered batch of incarnation 1 is dropped too"
        );
        let mut newer = Batch::new(Arc::from("t"), 0, 2, 1);
        newer.push(0, None, None, b"{}");
        assert_eq!(buffered.offer(newer, 1).expect("room").credit, 1);
        assert_eq!(
            Buffered::new(0, OverflowStrategy::DropNew)
                .expect_err("zero")
                .to_string(),
            "buffer: batches must be greater than zero"
        );
    }

    #[test]
    fn backpressure_withholds_credit_until_there_is_room() {
        let mut buffered = Buffered::new(1, OverflowStrategy::Backpressure).expect("valid");
        assert_eq!(buffered.offer(batch(0), 2).expect("room").credit, 2);
        assert_eq!(buffered.offer(batch(2), 2).expect("waits").credit, 0);
        assert_eq!(buffered.offer(batch(4), 2).expect("waits").credit, 0);
        let (first, credit) = buffered.take_next();
        assert_eq!(first.and_then(|b| b.offsets().next()), Some(0));
        assert_eq!(
            credit, 4,
            "the waiting batches' credit comes back as they get room"
        );
        let (second, credit) = buffered.take_next();
        assert_eq!(
            second.map(|b| b.offsets().collect::<Vec<_>>()),
            Some(vec![2, 3, 4, 5])
        );
        assert_eq!(credit, 0);
        assert!(buffered.is_empty());
    }
}
