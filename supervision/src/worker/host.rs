//! The actix actor that hosts a [`Worker`]: guards every call with `catch_unwind`, counts the
//! mailbox, takes kills and shutdown requests, and reports its exit through its death watch.
//!
//! Per worker there are two allocations besides actix's own: the [`WorkerCell`] (address, path,
//! mailbox count; shared by the supervisor, the registry and every `ActorRef`) and the actor
//! state, which holds only a weak link to the cell.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use actix::dev::SendError;
use actix::{Actor, ActorContext, Addr, ArbiterHandle, Context, Handler, Message};
use tokio::sync::oneshot;

use crate::actor_ref::{ActorRef, CountedMailbox, Envelope};
use crate::child_control::ChildControl;
use crate::death_watch::ExitNotifier;
use crate::path::ActorPath;
use crate::policy::KillMode;
use crate::reason::{panic_message, Failure, StopReason};
use crate::worker::{Worker, WorkerContext};

/// Control signals from the supervisor and the registry; they bypass the mailbox capacity.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Signal {
    Kill(KillMode),
    Shutdown,
}

impl Message for Signal {
    type Result = ();
}

/// The first message every worker gets: its cell. The worker's `started` runs on it.
struct Attach<W: Worker>(Weak<WorkerCell<W>>);

impl<W: Worker> Message for Attach<W> {
    type Result = ();
}

/// What the supervisor, the registry and senders share about one worker incarnation.
pub(crate) struct WorkerCell<W: Worker> {
    addr: Addr<WorkerActor<W>>,
    pub(crate) path: ActorPath,
    queued: AtomicUsize,
    /// Beside `kill_pending` in one word: this cell is allocated once per worker.
    capacity: u32,
    /// A kill is on its way: further kills are coalesced, so that they never pile up.
    kill_pending: AtomicBool,
}

/// The actix actor around a worker. Public only because `WorkerContext::actix` names it.
pub struct WorkerActor<W: Worker> {
    worker: Option<W>,
    cell: Weak<WorkerCell<W>>,
    notifier: ExitNotifier,
    /// Why it is stopping, once known (boxed: idle actors should stay small).
    reason: Option<Box<StopReason>>,
    started: Option<oneshot::Sender<()>>,
}

impl<W: Worker> WorkerActor<W> {
    /// Runs `call` on the worker under `catch_unwind`; an error or a panic fails the actor.
    fn guarded(
        &mut self,
        actix: &mut Context<Self>,
        cell: &Arc<WorkerCell<W>>,
        call: impl FnOnce(&mut W, &mut WorkerContext<'_, W>) -> Result<(), Failure>,
    ) {
        if self.reason.is_some() {
            return;
        }
        let Some(worker) = self.worker.as_mut() else {
            return;
        };
        let mut ctx = WorkerContext {
            actix,
            cell,
            incarnation: self.notifier.incarnation(),
            stop_requested: false,
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| call(worker, &mut ctx)));
        let stop_requested = ctx.stop_requested;
        match outcome {
            Ok(Ok(())) if stop_requested => self.stop_with(actix, StopReason::Normal),
            Ok(Ok(())) => {}
            Ok(Err(failure)) => self.stop_with(actix, StopReason::Failed(failure.to_string())),
            Err(payload) => self.fail_with_panic(actix, &*payload),
        }
    }

    fn fail_with_panic(&mut self, actix: &mut Context<Self>, payload: &(dyn Any + Send)) {
        // The worker's state may be half-updated: drop it (its Drop guarded too), never reuse it.
        let worker = self.worker.take();
        let _ = catch_unwind(AssertUnwindSafe(move || drop(worker)));
        self.stop_with(actix, StopReason::Panicked(panic_message(payload)));
    }

    fn stop_with(&mut self, actix: &mut Context<Self>, reason: StopReason) {
        if self.reason.is_none() {
            self.reason = Some(Box::new(reason));
        }
        actix.stop();
    }

    /// The shared cell; gone only when its supervisor forgot this incarnation, which then stops.
    fn cell(&mut self, actix: &mut Context<Self>) -> Option<Arc<WorkerCell<W>>> {
        let cell = self.cell.upgrade();
        if cell.is_none() {
            self.stop_with(actix, StopReason::Shutdown);
        }
        cell
    }
}

impl<W: Worker> Actor for WorkerActor<W> {
    type Context = Context<Self>;

    fn stopped(&mut self, _actix: &mut Context<Self>) {
        let worker = self.worker.take();
        let reason = match self.reason.take() {
            Some(reason) => {
                if let Some(mut worker) = worker {
                    let _ = catch_unwind(AssertUnwindSafe(|| worker.stopped(&reason)));
                    let _ = catch_unwind(AssertUnwindSafe(move || drop(worker)));
                }
                *reason
            }
            None => {
                // Nobody said why: a panic outside a guarded handler (actix runs `stopped` while
                // tearing the task down), or an actix-level stop. The worker's state is suspect:
                // drop it without calling `stopped`.
                let _ = catch_unwind(AssertUnwindSafe(move || drop(worker)));
                StopReason::Panicked(
                    "the actor stopped without a reason (a panic outside a guarded handler, \
                     or a stop that bypassed WorkerContext::stop)"
                        .to_owned(),
                )
            }
        };
        self.notifier.report(reason);
    }
}

impl<W: Worker> Handler<Attach<W>> for WorkerActor<W> {
    type Result = ();

    fn handle(&mut self, Attach(cell): Attach<W>, actix: &mut Context<Self>) {
        self.cell = cell;
        if let Some(cell) = self.cell(actix) {
            if self.worker.is_none() {
                // The factory panicked; `reason` already says so.
                actix.stop();
            } else {
                self.guarded(actix, &cell, |worker, ctx| worker.started(ctx));
            }
        }
        // Started or failed at start, the supervisor may go on with the next child.
        if let Some(started) = self.started.take() {
            let _ = started.send(());
        }
    }
}

impl<W: Worker> Handler<Envelope<W::Message>> for WorkerActor<W> {
    type Result = ();

    fn handle(&mut self, Envelope(message): Envelope<W::Message>, actix: &mut Context<Self>) {
        if let Some(cell) = self.cell(actix) {
            cell.queued.fetch_sub(1, Ordering::Relaxed);
            self.guarded(actix, &cell, |worker, ctx| worker.handle(message, ctx));
        }
    }
}

impl<W: Worker> Handler<Signal> for WorkerActor<W> {
    type Result = ();

    fn handle(&mut self, signal: Signal, actix: &mut Context<Self>) {
        match signal {
            Signal::Shutdown => self.stop_with(actix, StopReason::Shutdown),
            Signal::Kill(KillMode::Stop) => self.stop_with(actix, StopReason::Killed),
            Signal::Kill(KillMode::Panic) => {
                let path = self
                    .cell
                    .upgrade()
                    .map(|cell| cell.path.to_string())
                    .unwrap_or_default();
                let outcome = catch_unwind::<_, ()>(move || {
                    panic!("killed by request at {path} (mode=panic)")
                });
                if let Err(payload) = outcome {
                    self.fail_with_panic(actix, &*payload);
                }
            }
        }
    }
}

impl<W: Worker> CountedMailbox for WorkerCell<W> {
    fn queued(&self) -> &AtomicUsize {
        &self.queued
    }

    fn path(&self) -> &ActorPath {
        &self.path
    }
}

impl<W: Worker> ChildControl for WorkerCell<W> {
    fn kill(&self, mode: KillMode) -> bool {
        if self.kill_pending.swap(true, Ordering::AcqRel) {
            return self.addr.connected(); // one kill is already queued: this one joins it
        }
        // Judged by the send itself: the actor may handle the kill and be gone before we could
        // look again. A full mailbox must not stop a kill: it then queues past the capacity.
        match self.addr.try_send(Signal::Kill(mode)) {
            Ok(()) => true,
            Err(SendError::Full(signal)) => {
                self.addr.do_send(signal);
                true
            }
            Err(SendError::Closed(_)) => false,
        }
    }

    fn shutdown(&self) {
        self.addr.do_send(Signal::Shutdown);
    }

    fn mailbox_len(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    fn mailbox_capacity(&self) -> usize {
        self.capacity as usize
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn actor_ref_any(self: Arc<Self>) -> Option<Box<dyn Any + Send>> {
        let recipient = self.addr.clone().recipient();
        Some(Box::new(ActorRef::new(
            recipient,
            self as Arc<dyn CountedMailbox>,
        )))
    }
}

/// What a worker recipe needs to start one incarnation.
pub(crate) struct WorkerStart {
    pub(crate) path: ActorPath,
    pub(crate) capacity: usize,
    pub(crate) notifier: ExitNotifier,
    pub(crate) arbiter: ArbiterHandle,
    pub(crate) started: oneshot::Sender<()>,
}

/// Starts one incarnation of a worker on `start.arbiter`, built by `factory` on that thread.
pub(crate) fn start_worker<W, F>(factory: Arc<F>, start: WorkerStart) -> Arc<dyn ChildControl>
where
    W: Worker,
    F: Fn() -> W + Send + Sync + 'static,
{
    let WorkerStart {
        path,
        capacity,
        notifier,
        arbiter,
        started,
    } = start;
    let addr =
        WorkerActor::start_in_arbiter(&arbiter, move |actix: &mut Context<WorkerActor<W>>| {
            actix.set_mailbox_capacity(capacity);
            let (worker, reason) = match catch_unwind(AssertUnwindSafe(|| factory())) {
                Ok(worker) => (Some(worker), None),
                Err(payload) => (
                    None,
                    Some(Box::new(StopReason::Panicked(format!(
                        "the factory panicked: {}",
                        panic_message(&*payload)
                    )))),
                ),
            };
            WorkerActor {
                worker,
                cell: Weak::new(),
                notifier,
                reason,
                started: Some(started),
            }
        });
    let cell = Arc::new(WorkerCell {
        addr,
        path,
        queued: AtomicUsize::new(0),
        capacity: u32::try_from(capacity).unwrap_or(u32::MAX),
        kill_pending: AtomicBool::new(false),
    });
    // Nobody else can reach the actor yet: Attach is the first message it handles.
    cell.addr.do_send(Attach(Arc::downgrade(&cell)));
    cell
}
