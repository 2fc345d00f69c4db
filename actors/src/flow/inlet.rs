//! [`Inlet`]: the bounded input of a stage actor, shared with whoever sends to it. Its credit is
//! the demand the actor has granted (records it can still take): a sender takes credit before it
//! sends and never sends without it; the actor gives credit back as it drains. A restarted actor
//! publishes a fresh inlet under the same path; senders notice the old one closed and look again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use dashmap::DashMap;
use streamvisor_supervision::{ActorPath, ActorRef};

use crate::record::Batch;

/// A message type that carries batches: what an inlet's actor takes (each actor kind has
/// its own: the stages', the sinks').
pub trait TakesBatches: Send + 'static {
    /// The message carrying `batch`.
    fn batch(batch: Batch) -> Self;
    /// The batch back out of a message that was not delivered.
    fn into_batch(self) -> Option<Batch>;
}

/// The actor behind an inlet, whatever its message type.
trait BatchTarget: Send + Sync + std::fmt::Debug {
    /// False once the actor has stopped.
    fn is_connected(&self) -> bool;
    /// Sends `batch` without waiting; gives it back when the mailbox is full or closed.
    fn offer(&self, batch: Batch) -> Result<(), Batch>;
}

impl<M: TakesBatches> BatchTarget for ActorRef<M> {
    fn is_connected(&self) -> bool {
        ActorRef::is_connected(self)
    }

    fn offer(&self, batch: Batch) -> Result<(), Batch> {
        self.try_send(M::batch(batch))
            .map_err(|error| error.into_inner().into_batch().expect("a batch was sent"))
    }
}

/// How a blocked sender is woken when credit comes back (it sends itself a retry).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// The input of one stage actor incarnation.
pub struct Inlet {
    actor: Box<dyn BatchTarget>,
    credit: AtomicU64,
    /// Senders that found no credit, woken at the next grant (no polling).
    waiting: Mutex<Vec<Waker>>,
}

impl std::fmt::Debug for Inlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inlet")
            .field("actor", &self.actor)
            .field("credit", &self.credit())
            .finish()
    }
}

impl Inlet {
    /// An inlet for `actor`, with `capacity` records of credit.
    pub fn new<M: TakesBatches>(actor: ActorRef<M>, capacity: u64) -> Self {
        Inlet {
            actor: Box::new(actor),
            credit: AtomicU64::new(capacity),
            waiting: Mutex::new(Vec::new()),
        }
    }

    /// Gives back credit for `records` the actor has drained, and wakes the senders waiting.
    pub fn grant(&self, records: u64) {
        self.credit.fetch_add(records, Ordering::AcqRel);
        self.wake_all();
    }

    /// Wakes every sender waiting on this inlet (credit came back, or the inlet is replaced or
    /// withdrawn and they must look again).
    fn wake_all(&self) {
        let waiting =
            std::mem::take(&mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner));
        for wake in waiting {
            wake();
        }
    }

    /// Registers `waker` for the next grant.
    fn wait(&self, waker: &Waker) {
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(waker));
    }

    /// Records that may be sent now.
    pub fn credit(&self) -> u64 {
        self.credit.load(Ordering::Acquire)
    }

    fn take(&self, records: u64) -> bool {
        self.credit
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |credit| {
                credit.checked_sub(records)
            })
            .is_ok()
    }
}

/// Why a batch was not sent; it comes back either way.
#[derive(Debug)]
pub enum SendRefused {
    /// Not enough credit: the sender's waker runs at the next grant.
    NoCredit(Batch),
    /// No live actor behind the path (restarting or gone), or its mailbox is full: try again
    /// later.
    Gone(Batch),
}

/// The inlets of one pipeline, by actor path.
#[derive(Clone, Debug, Default)]
pub struct Inlets {
    by_path: Arc<DashMap<ActorPath, Arc<Inlet>>>,
}

impl Inlets {
    /// Opens and publishes the inlet of `actor` at `path` with `capacity` records of credit
    /// (replacing an older incarnation's), and returns it.
    pub fn open<M: TakesBatches>(
        &self,
        path: ActorPath,
        actor: ActorRef<M>,
        capacity: u64,
    ) -> Arc<Inlet> {
        let inlet = Arc::new(Inlet::new(actor, capacity));
        if let Some(old) = self.by_path.insert(path, Arc::clone(&inlet)) {
            old.wake_all();
        }
        inlet
    }

    /// Removes the inlet at `path` if it is still `inlet`.
    pub fn withdraw(&self, path: &ActorPath, inlet: &Arc<Inlet>) {
        self.by_path
            .remove_if(path, |_, current| Arc::ptr_eq(current, inlet));
        inlet.wake_all();
    }

    /// Sends `batch` to the actor at `path` within its credit. `cached` keeps the inlet between
    /// calls; it is refreshed when its actor has stopped.
    pub fn send(
        &self,
        path: &ActorPath,
        cached: &mut Option<Arc<Inlet>>,
        batch: Batch,
        waker: &Waker,
    ) -> Result<(), SendRefused> {
        let live = cached
            .as_ref()
            .is_some_and(|inlet| inlet.actor.is_connected());
        if !live {
            *cached = self.by_path.get(path).map(|inlet| Arc::clone(&inlet));
        }
        let Some(inlet) = cached.as_ref().filter(|inlet| inlet.actor.is_connected()) else {
            return Err(SendRefused::Gone(batch));
        };
        let records = batch.len() as u64;
        if !inlet.take(records) {
            inlet.wait(waker);
            // A grant may have come between the failed take and the registration: look again.
            if !inlet.take(records) {
                return Err(SendRefused::NoCredit(batch));
            }
        }
        inlet.actor.offer(batch).map_err(|batch| {
            inlet.grant(records);
            // Full or closed: either way no grant will wake the sender, so it retries on its
            // timer, as for a gone actor.
            SendRefused::Gone(batch)
        })
    }
}
