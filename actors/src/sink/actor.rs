//! [`SinkActor`]: the one sink actor (`/pipelines/<p>/sinks/<k>`), whatever it writes to. It
//! owns what every sink does alike: its inlet (opened when it starts, withdrawn when it stops,
//! so that senders never send past the credit it granted), the acknowledgement and credit of
//! what its writer made durable ([`Settler`]), retry in place with backoff and readiness (the
//! failure-or-retry rule: [`RetryInPlace`]), and failing once a writer's task or thread gave up
//! ([`WriterFailure`]). Its [`SinkWriter`] says how a batch becomes durable.

use std::sync::Arc;
use std::time::Duration;

use streamvisor_supervision::{
    ActorPath, ActorRef, Backoff, Failure, StopReason, Worker, WorkerContext,
};

use crate::flow::inlet::{Inlet, Inlets, TakesBatches};
use crate::metrics::SinkMetrics;
use crate::pipeline::acks::AckRouter;
use crate::pipeline::health::Readiness;
use crate::record::Batch;
use crate::sink::writer::{RetryInPlace, Settler, WriterFailure};

/// How a sink writes: a file, a producer, a connection task, a transaction thread. Its
/// [`SinkActor`] calls it; it settles what is durable through
/// [`SinkContext::settler`], and never holds more than the credit its actor granted.
pub trait SinkWriter: Sized + Unpin + 'static {
    /// Gets ready to write when the actor starts (a failure here fails the actor: a fresh
    /// start may cure it).
    fn open(&mut self, sink: &mut SinkContext<'_, '_, Self>) -> Result<(), Failure>;

    /// Takes a batch (within the actor's credit) to write.
    fn take(&mut self, batch: Batch, sink: &mut SinkContext<'_, '_, Self>) -> Result<(), Failure>;

    /// A retry or a wake it asked for is due: write what it holds.
    fn resume(&mut self, _sink: &mut SinkContext<'_, '_, Self>) -> Result<(), Failure> {
        Ok(())
    }

    /// The actor stops or died: nothing goes on writing for it (called again after a stop:
    /// closing twice does nothing).
    fn close(&mut self) {}

    /// What its retries in place retry, in the sink's unready reason.
    const RETRYING: &'static str = "a failed write";

    /// The backoff of its retries in place.
    fn retry_backoff(&self) -> Backoff {
        Backoff::retrying(Duration::from_millis(20), Duration::from_secs(5), 2.0)
    }
}

/// What a sink actor takes.
#[derive(Debug)]
pub enum SinkMessage {
    /// Records to write (within the credit the sender took).
    Batch(Batch),
    /// A retry the writer asked for is due ([`SinkContext::retry_in`]).
    Retry,
    /// A wake the writer asked for, or its task or thread wants the actor to look at it.
    Wake,
}

impl TakesBatches for SinkMessage {
    fn batch(batch: Batch) -> Self {
        SinkMessage::Batch(batch)
    }

    fn into_batch(self) -> Option<Batch> {
        match self {
            SinkMessage::Batch(batch) => Some(batch),
            SinkMessage::Retry | SinkMessage::Wake => None,
        }
    }
}

/// What every sink of a pipeline is given, whatever it writes to.
#[derive(Clone, Debug)]
pub struct SinkShared {
    /// Records it can hold (its inlet's credit).
    pub capacity: u64,
    /// The pipeline's inlets.
    pub inlets: Inlets,
    /// Where acks go.
    pub acks: AckRouter,
    /// The sink's metrics.
    pub metrics: SinkMetrics,
    /// Where it says it is retrying (unready).
    pub readiness: Readiness,
}

/// One incarnation's state.
struct Running {
    path: ActorPath,
    component: String,
    inlet: Arc<Inlet>,
    settler: Settler,
    retry: RetryInPlace,
    retry_scheduled: bool,
    wake_scheduled: bool,
}

/// The sink actor of a writer `W`.
pub struct SinkActor<W: SinkWriter> {
    shared: SinkShared,
    writer: W,
    failure: WriterFailure,
    running: Option<Running>,
}

impl<W: SinkWriter> SinkActor<W> {
    /// A fresh sink actor (its writer opens when it starts).
    pub fn new(shared: SinkShared, writer: W) -> Self {
        SinkActor {
            shared,
            writer,
            failure: WriterFailure::default(),
            running: None,
        }
    }
}

/// What a writer can do through its actor.
pub struct SinkContext<'a, 'c, W: SinkWriter> {
    ctx: &'a mut WorkerContext<'c, SinkActor<W>>,
    running: &'a mut Running,
    failure: &'a WriterFailure,
}

impl<W: SinkWriter> SinkContext<'_, '_, W> {
    /// Acknowledges what is durable and gives its credit back.
    pub fn settler(&self) -> &Settler {
        &self.running.settler
    }

    /// The actor's path, as logs and readiness name it.
    pub fn component(&self) -> &str {
        &self.running.component
    }

    /// The actor itself (a writer's task or thread wakes it with [`SinkMessage::Wake`]).
    pub fn myself(&self) -> ActorRef<SinkMessage> {
        self.ctx.myself()
    }

    /// Where a writer's task or thread leaves why it gave up (the actor fails with it).
    pub fn failure(&self) -> WriterFailure {
        self.failure.clone()
    }

    /// Why the writer's task or thread ended, or `ended` when it gave no reason.
    pub fn ended(&self, ended: &str) -> Failure {
        self.failure.get().unwrap_or_else(|| Failure::new(ended))
    }

    /// Asks for [`SinkWriter::resume`] in `delay` (once: a retry already due stays as it is).
    pub fn retry_in(&mut self, delay: Duration) {
        if !self.running.retry_scheduled {
            self.running.retry_scheduled = true;
            self.ctx.send_later(SinkMessage::Retry, delay);
        }
    }

    /// Asks for [`SinkWriter::resume`] once the messages already in the mailbox are handled
    /// (so that batches waiting there are written together). False when the mailbox is full:
    /// write now.
    pub fn wake_soon(&mut self) -> bool {
        if self.running.wake_scheduled {
            return true;
        }
        if self.ctx.myself().try_send(SinkMessage::Wake).is_ok() {
            self.running.wake_scheduled = true;
            return true;
        }
        false
    }

    /// A write failed with `why`: the sink is unready, the retry is counted, and
    /// [`SinkWriter::resume`] comes after the backoff. The records stay with the writer.
    pub fn write_failed(&mut self, why: &str) {
        let delay = self.running.retry.failed(why);
        self.retry_in(delay);
    }

    /// A write succeeded: ready again if it was retrying.
    pub fn wrote(&mut self) {
        self.running.retry.succeeded();
    }

    /// Retries in place for a writer's task or thread (the writer's backoff and target).
    pub fn retry_in_place(&self) -> RetryInPlace {
        self.running.retry.fresh()
    }
}

impl<W: SinkWriter> Worker for SinkActor<W> {
    type Message = SinkMessage;

    fn started(&mut self, ctx: &mut WorkerContext<'_, Self>) -> Result<(), Failure> {
        let path = ctx.path().clone();
        let component = path.to_string();
        // A fresh incarnation has not failed a write (the previous one may have died unready).
        self.shared.readiness.ready(&component);
        let inlet = self
            .shared
            .inlets
            .open(path.clone(), ctx.myself(), self.shared.capacity);
        let running = self.running.insert(Running {
            settler: Settler::new(
                self.shared.acks.clone(),
                Arc::clone(&inlet),
                self.shared.metrics.clone(),
            ),
            retry: RetryInPlace::new(
                self.writer.retry_backoff(),
                W::RETRYING,
                component.clone(),
                self.shared.readiness.clone(),
                self.shared.metrics.clone(),
            ),
            path,
            component,
            inlet,
            retry_scheduled: false,
            wake_scheduled: false,
        });
        let mut sink = SinkContext {
            ctx,
            running,
            failure: &self.failure,
        };
        let opened = self.writer.open(&mut sink);
        if opened.is_err() {
            // Nothing may send to an incarnation that never started.
            if let Some(running) = self.running.take() {
                self.shared.inlets.withdraw(&running.path, &running.inlet);
            }
        }
        opened
    }

    fn handle(
        &mut self,
        message: SinkMessage,
        ctx: &mut WorkerContext<'_, Self>,
    ) -> Result<(), Failure> {
        if let Some(failure) = self.failure.get() {
            return Err(failure);
        }
        let Some(running) = self.running.as_mut() else {
            return Ok(());
        };
        match &message {
            SinkMessage::Batch(_) => {}
            SinkMessage::Retry => running.retry_scheduled = false,
            SinkMessage::Wake => running.wake_scheduled = false,
        }
        let mut sink = SinkContext {
            ctx,
            running,
            failure: &self.failure,
        };
        match message {
            SinkMessage::Batch(batch) => self.writer.take(batch, &mut sink),
            SinkMessage::Retry | SinkMessage::Wake => self.writer.resume(&mut sink),
        }
    }

    fn stopped(&mut self, _reason: &StopReason) {
        self.writer.close();
        if let Some(running) = self.running.take() {
            self.shared.inlets.withdraw(&running.path, &running.inlet);
            // A fresh start says again if it cannot write.
            self.shared.readiness.ready(&running.component);
        }
    }
}

impl<W: SinkWriter> Drop for SinkActor<W> {
    fn drop(&mut self) {
        // After a panic `stopped` does not run: nothing may go on writing for a dead actor.
        self.writer.close();
    }
}
