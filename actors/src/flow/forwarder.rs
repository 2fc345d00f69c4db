//! [`Forwarder`]: an actor's outgoing queue to the next actor's [`Inlet`]: sends in order within
//! credit and keeps what could not go. Without credit it waits for the next grant (the receiver
//! wakes it: no polling); with the next actor gone (restarting) it retries on a timer.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use streamvisor_supervision::ActorPath;

use crate::flow::inlet::{Inlet, Inlets, SendRefused, Waker};
use crate::record::Batch;

/// How soon a send is tried again when the next actor is gone (restarting).
pub(crate) const RETRY_AFTER: Duration = Duration::from_millis(20);

/// What the batches still queued after a pump wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// Nothing is queued.
    No,
    /// The next actor has no credit: its next grant wakes the owner.
    ForCredit,
    /// The next actor is gone (restarting): retry after [`RETRY_AFTER`].
    ForActor,
}

/// The outgoing side of a stage actor.
pub(crate) struct Forwarder {
    target: ActorPath,
    inlets: Inlets,
    waker: Waker,
    cached: Option<Arc<Inlet>>,
    /// Batches waiting, each with the input credit it gives back once sent.
    queue: VecDeque<(Batch, u64)>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("target", &self.target)
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl Forwarder {
    /// A forwarder to the actor at `target`; `waker` wakes its owner when credit comes back.
    pub(crate) fn new(target: ActorPath, inlets: Inlets, waker: Waker) -> Self {
        Forwarder {
            target,
            inlets,
            waker,
            cached: None,
            queue: VecDeque::new(),
        }
    }

    /// Batches waiting to be sent.
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Queues a batch that gives back `credit` once sent (an operator's output, whose size is
    /// not its input's).
    pub(crate) fn push_with_credit(&mut self, batch: Batch, credit: u64) {
        self.queue.push_back((batch, credit));
    }

    /// Sends what credit allows, in order; returns the credit of the batches sent and what
    /// the rest waits for.
    pub(crate) fn pump(&mut self) -> (Vec<usize>, Waiting) {
        let mut sent = Vec::new();
        while let Some((batch, credit)) = self.queue.pop_front() {
            match self
                .inlets
                .send(&self.target, &mut self.cached, batch, &self.waker)
            {
                Ok(()) => sent.push(credit as usize),
                Err(SendRefused::NoCredit(batch)) => {
                    self.queue.push_front((batch, credit));
                    return (sent, Waiting::ForCredit);
                }
                Err(SendRefused::Gone(batch)) => {
                    self.queue.push_front((batch, credit));
                    return (sent, Waiting::ForActor);
                }
            }
        }
        (sent, Waiting::No)
    }

    /// Drops queued batches of incarnations before `incarnation` (they will be replayed);
    /// returns the credit of each batch dropped.
    pub(crate) fn drop_older_than(&mut self, incarnation: u64) -> Vec<u64> {
        let mut dropped = Vec::new();
        self.queue.retain(|(batch, credit)| {
            let keep = batch.incarnation() >= incarnation;
            if !keep {
                dropped.push(*credit);
            }
            keep
        });
        dropped
    }
}
