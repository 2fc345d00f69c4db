//! [`Forwarder`]: an actor's outgoing queue to the next actor's [`Inlet`]: sends in order within
//! credit, keeps what could not go, and retries on a short timer.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use streamvisor_supervision::ActorPath;

use crate::pipeline::inlet::{Inlet, Inlets, SendRefused};
use crate::record::Batch;

/// How soon a blocked send is tried again.
pub const RETRY_AFTER: Duration = Duration::from_millis(2);

/// The outgoing side of a stage actor.
#[derive(Debug)]
pub struct Forwarder {
    target: ActorPath,
    inlets: Inlets,
    cached: Option<Arc<Inlet>>,
    queue: VecDeque<Batch>,
    /// A retry timer is pending.
    pub retry_scheduled: bool,
}

impl Forwarder {
    /// A forwarder to the actor at `target`.
    pub fn new(target: ActorPath, inlets: Inlets) -> Self {
        Forwarder {
            target,
            inlets,
            cached: None,
            queue: VecDeque::new(),
            retry_scheduled: false,
        }
    }

    /// Queues a batch behind those waiting.
    pub fn push(&mut self, batch: Batch) {
        self.queue.push_back(batch);
    }

    /// Sends what credit allows, in order; returns the sizes of the batches sent and whether
    /// some are still waiting (then schedule a retry).
    pub fn pump(&mut self) -> (Vec<usize>, bool) {
        let mut sent = Vec::new();
        while let Some(batch) = self.queue.pop_front() {
            let records = batch.len();
            match self.inlets.send(&self.target, &mut self.cached, batch) {
                Ok(()) => sent.push(records),
                Err(SendRefused::NoCredit(batch) | SendRefused::Gone(batch)) => {
                    self.queue.push_front(batch);
                    break;
                }
            }
        }
        (sent, !self.queue.is_empty())
    }

    /// Drops queued batches of incarnations before `incarnation` (they will be replayed).
    pub fn drop_older_than(&mut self, incarnation: u64) -> usize {
        let before: usize = self.queue.iter().map(Batch::len).sum();
        self.queue
            .retain(|batch| batch.incarnation() >= incarnation);
        before - self.queue.iter().map(Batch::len).sum::<usize>()
    }
}
