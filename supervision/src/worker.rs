//! The [`Worker`] trait: what a supervised leaf actor implements. The supervision crate hosts it
//! in an actix actor that runs every call under `catch_unwind`, counts its mailbox and reports its
//! death to its supervisor.

mod host;

pub use host::WorkerActor;
pub(crate) use host::{start_worker, WorkerCell, WorkerStart};

use std::sync::Arc;

use actix::{AsyncContext, Context};

use crate::actor_ref::ActorRef;
use crate::path::ActorPath;
use crate::reason::{Failure, StopReason};

/// A supervised leaf actor. It is built from a recipe (a factory) at every start, never revived
/// from its old state. A handler that returns `Err` or panics fails the actor; its supervisor
/// decides what follows.
pub trait Worker: Sized + Unpin + 'static {
    /// The messages it handles (usually an enum).
    type Message: Send + 'static;

    /// Runs once when the actor starts, before any message.
    fn started(&mut self, _ctx: &mut WorkerContext<'_, Self>) -> Result<(), Failure> {
        Ok(())
    }

    /// Handles one message.
    fn handle(
        &mut self,
        message: Self::Message,
        ctx: &mut WorkerContext<'_, Self>,
    ) -> Result<(), Failure>;

    /// Runs once when the actor stops: normally, on shutdown, after a kill or an error; not after
    /// a panic, which leaves the worker's state suspect (it is dropped instead).
    fn stopped(&mut self, _reason: &StopReason) {}
}

/// Delivers a timer's message; a full mailbox re-arms the timer rather than lose it.
fn deliver_later<W: Worker>(
    me: ActorRef<W::Message>,
    message: W::Message,
    after: std::time::Duration,
    actix: &mut Context<WorkerActor<W>>,
) {
    if let Err(crate::actor_ref::TrySendError::Full(message)) = me.try_send(message) {
        actix.run_later(after, move |_, actix| {
            deliver_later(me, message, after, actix)
        });
    }
}

/// What a worker can do from inside its handlers.
pub struct WorkerContext<'a, W: Worker> {
    pub(crate) actix: &'a mut Context<WorkerActor<W>>,
    pub(crate) cell: &'a Arc<WorkerCell<W>>,
    pub(crate) incarnation: u64,
    pub(crate) stop_requested: bool,
}

impl<W: Worker> WorkerContext<'_, W> {
    /// This actor's path.
    pub fn path(&self) -> &ActorPath {
        &self.cell.path
    }

    /// This incarnation's number (1 at first start, +1 per restart).
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// A handle for sending to this incarnation (to hand to others, or for timers).
    pub fn myself(&self) -> ActorRef<W::Message> {
        ActorRef::new(self.actix.address().recipient(), Arc::clone(self.cell) as _)
    }

    /// Sends `message` to this incarnation after `after` (a retry timer, say); it is lost if the
    /// actor stops first.
    pub fn send_later(&mut self, message: W::Message, after: std::time::Duration) {
        let me = self.myself();
        self.actix.run_later(after, move |_, actix| {
            deliver_later(me, message, after, actix)
        });
    }

    /// Stops the actor normally once the current call returns (a Transient child stays stopped).
    pub fn stop(&mut self) {
        self.stop_requested = true;
    }

    /// The hosting actix context, for timers and spawned futures. A panic in a future spawned
    /// here is not caught by a handler guard, but the death watch still reports it as `Panicked`.
    /// Stop with [`WorkerContext::stop`], not the context's own `stop` (which gives no reason and
    /// is reported as a death nobody explained).
    pub fn actix(&mut self) -> &mut Context<WorkerActor<W>> {
        self.actix
    }
}
