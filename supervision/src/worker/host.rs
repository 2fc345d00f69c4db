//! The actix actor that hosts a [`Worker`]: guards every call with `catch_unwind`, counts the
//! mailbox, takes kills and shutdown requests, and reports its exit through its death watch.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use actix::dev::SendError;
use actix::{Actor, ActorContext, Addr, ArbiterHandle, Context, Handler, Message};
use tokio::sync::oneshot;

use crate::actor_ref::{ActorRef, Envelope, MailboxCounter};
use crate::control::{ChildControl, ExitNotifier};
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

/// The actix actor around a worker. Public only because `WorkerContext::actix` names it.
pub struct WorkerActor<W: Worker> {
    worker: Option<W>,
    path: ActorPath,
    incarnation: u64,
    mailbox: Arc<MailboxCounter>,
    capacity: usize,
    notifier: ExitNotifier,
    reason: Option<StopReason>,
    started: Option<oneshot::Sender<()>>,
}

impl<W: Worker> WorkerActor<W> {
    /// Runs `call` on the worker under `catch_unwind`; an error or a panic fails the actor.
    fn guarded(
        &mut self,
        actix: &mut Context<Self>,
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
            path: &self.path,
            incarnation: self.incarnation,
            mailbox: &self.mailbox,
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
            self.reason = Some(reason);
        }
        actix.stop();
    }
}

impl<W: Worker> Actor for WorkerActor<W> {
    type Context = Context<Self>;

    fn started(&mut self, actix: &mut Context<Self>) {
        actix.set_mailbox_capacity(self.capacity);
        if self.worker.is_none() {
            // The factory panicked; `reason` already says so.
            actix.stop();
        } else {
            self.guarded(actix, |worker, ctx| worker.started(ctx));
        }
        // Started or failed at start, the supervisor may go on with the next child.
        if let Some(started) = self.started.take() {
            let _ = started.send(());
        }
    }

    fn stopped(&mut self, _actix: &mut Context<Self>) {
        let reason = self.reason.take().unwrap_or_else(|| {
            StopReason::Panicked(
                "the actor stopped without a reason (a panic outside a guarded handler, \
                 or its mailbox closed)"
                    .to_owned(),
            )
        });
        if let Some(mut worker) = self.worker.take() {
            let _ = catch_unwind(AssertUnwindSafe(|| worker.stopped(&reason)));
            let _ = catch_unwind(AssertUnwindSafe(move || drop(worker)));
        }
        self.notifier.report(reason);
    }
}

impl<W: Worker> Handler<Envelope<W::Message>> for WorkerActor<W> {
    type Result = ();

    fn handle(&mut self, Envelope(message): Envelope<W::Message>, actix: &mut Context<Self>) {
        self.mailbox.taken();
        self.guarded(actix, |worker, ctx| worker.handle(message, ctx));
    }
}

impl<W: Worker> Handler<Signal> for WorkerActor<W> {
    type Result = ();

    fn handle(&mut self, signal: Signal, actix: &mut Context<Self>) {
        match signal {
            Signal::Shutdown => self.stop_with(actix, StopReason::Shutdown),
            Signal::Kill(KillMode::Stop) => self.stop_with(actix, StopReason::Killed),
            Signal::Kill(KillMode::Panic) => {
                let path = self.path.clone();
                let outcome = catch_unwind(move || -> () {
                    panic!("killed by request at {path} (mode=panic)")
                });
                if let Err(payload) = outcome {
                    self.fail_with_panic(actix, &*payload);
                }
            }
        }
    }
}

/// The supervisor's handle on one worker incarnation.
struct WorkerControl<W: Worker> {
    addr: Addr<WorkerActor<W>>,
    path: ActorPath,
    mailbox: Arc<MailboxCounter>,
    capacity: usize,
}

impl<W: Worker> ChildControl for WorkerControl<W> {
    fn kill(&self, mode: KillMode) -> bool {
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
        self.mailbox.len()
    }

    fn mailbox_capacity(&self) -> usize {
        self.capacity
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn actor_ref_any(&self) -> Option<Box<dyn Any + Send>> {
        let actor_ref = ActorRef::new(
            self.path.clone(),
            self.addr.clone().recipient(),
            Arc::clone(&self.mailbox),
        );
        Some(Box::new(actor_ref))
    }
}

/// What a worker recipe needs to start one incarnation.
pub(crate) struct WorkerStart {
    pub(crate) path: ActorPath,
    pub(crate) incarnation: u64,
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
        incarnation,
        capacity,
        notifier,
        arbiter,
        started,
    } = start;
    let mailbox = Arc::new(MailboxCounter::default());
    let actor_mailbox = Arc::clone(&mailbox);
    let actor_path = path.clone();
    let addr = WorkerActor::start_in_arbiter(&arbiter, move |_: &mut Context<WorkerActor<W>>| {
        let (worker, reason) = match catch_unwind(AssertUnwindSafe(|| factory())) {
            Ok(worker) => (Some(worker), None),
            Err(payload) => (
                None,
                Some(StopReason::Panicked(format!(
                    "the factory panicked: {}",
                    panic_message(&*payload)
                ))),
            ),
        };
        WorkerActor {
            worker,
            path: actor_path,
            incarnation,
            mailbox: actor_mailbox,
            capacity,
            notifier,
            reason,
            started: Some(started),
        }
    });
    Arc::new(WorkerControl {
        addr,
        path,
        mailbox,
        capacity,
    })
}
