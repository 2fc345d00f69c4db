//! The file sink actor (`/pipelines/<p>/sinks/<k>`): appends each batch to its JSON Lines file
//! (or, opt-in, to rolled-over JSON Lines or MessagePack files, see [`crate::sink::rolling`]),
//! fsyncs, and only then acknowledges the records to their source and gives credit back. A write
//! that fails is retried in place with backoff, holding the records (the failure-or-retry rule);
//! a failure to open the file fails the actor (a fresh start may cure it).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use streamvisor_supervision::{ActorPath, Failure, StopReason, Worker, WorkerContext};

use crate::error::SinkError;
use crate::flow::inlet::{Inlet, Inlets, StageMessage};
use crate::metrics::SinkMetrics;
use crate::pipeline::acks::AckRouter;
use crate::pipeline::health::{Readiness, SinkFaults};
use crate::record::Batch;
use crate::sink::file::JsonLinesFile;
use crate::sink::rolling::{RollingFiles, RollingSettings};

/// Where a file sink writes.
#[derive(Clone, Debug)]
pub enum FileOutput {
    /// One JSON Lines file (DESIGN.md's default).
    Single(PathBuf),
    /// Rolled-over files, JSON Lines or MessagePack, optionally by date and partition.
    Rolling(RollingSettings),
}

/// An open output.
enum OpenOutput {
    Single(JsonLinesFile),
    Rolling(RollingFiles),
}

impl OpenOutput {
    fn open(output: &FileOutput) -> Result<Self, SinkError> {
        Ok(match output {
            FileOutput::Single(path) => OpenOutput::Single(JsonLinesFile::open(path)?),
            FileOutput::Rolling(settings) => {
                OpenOutput::Rolling(RollingFiles::open(settings.clone())?)
            }
        })
    }

    fn write(&mut self, batches: &[&Batch]) -> Result<(), SinkError> {
        match self {
            OpenOutput::Single(file) => file.write_batches(batches.iter().copied()),
            OpenOutput::Rolling(files) => files.write_batches(batches),
        }
    }
}

/// The recipe of a file sink.
#[derive(Clone, Debug)]
pub struct FileSinkRecipe {
    /// Where it writes.
    pub output: FileOutput,
    /// Records it can hold.
    pub capacity: u64,
    /// Sleep after each batch written (for backpressure tests: a slow sink).
    pub delay_per_batch: Duration,
    /// The delay applies until then (none: always).
    pub slow_until: Option<std::time::Instant>,
    /// The pipeline's inlets.
    pub inlets: Inlets,
    /// Where acks go.
    pub acks: AckRouter,
    /// The sink's metrics.
    pub metrics: SinkMetrics,
    /// Where it says it is retrying (unready).
    pub readiness: Readiness,
    /// Injected failures (tests).
    pub faults: SinkFaults,
}

/// A file sink actor.
pub struct FileSinkWorker {
    recipe: FileSinkRecipe,
    file: Option<OpenOutput>,
    path: Option<ActorPath>,
    inlet: Option<Arc<Inlet>>,
    queue: VecDeque<Batch>,
    failures: u32,
    retry_scheduled: bool,
    /// A `Wake` to itself is queued behind the batches: they are written together then.
    write_scheduled: bool,
    /// With a per-batch delay: no write before this.
    next_write: Option<std::time::Instant>,
}

impl FileSinkWorker {
    /// A fresh file sink from its recipe.
    pub fn new(recipe: FileSinkRecipe) -> Self {
        FileSinkWorker {
            recipe,
            file: None,
            path: None,
            inlet: None,
            queue: VecDeque::new(),
            failures: 0,
            retry_scheduled: false,
            write_scheduled: false,
            next_write: None,
        }
    }

    /// Writes what is queued, in order; a failed write stays queued and is retried with backoff.
    fn flush(&mut self, ctx: &mut WorkerContext<'_, Self>) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        if let Some(at) = self.next_write {
            let wait = at.saturating_duration_since(std::time::Instant::now());
            if !wait.is_zero() {
                if !self.retry_scheduled {
                    self.retry_scheduled = true;
                    ctx.send_later(StageMessage::Retry, wait);
                }
                return;
            }
        }
        // A slowed sink (for tests) writes one batch per delay; otherwise everything queued goes
        // in one write and one fsync.
        let delay = match self.recipe.slow_until {
            Some(until) if std::time::Instant::now() >= until => Duration::ZERO,
            _ => self.recipe.delay_per_batch,
        };
        let count = if delay.is_zero() {
            self.queue.len()
        } else {
            1.min(self.queue.len())
        };
        if count == 0 {
            return;
        }
        let began = std::time::Instant::now();
        let written = if self.recipe.faults.failing() {
            Err(SinkError::Injected)
        } else {
            let batches: Vec<&Batch> = self.queue.iter().take(count).collect();
            file.write(&batches)
        };
        let component = self
            .path
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        match written {
            Ok(()) => {
                if self.failures > 0 {
                    tracing::info!(sink = %component, "file sink writes again");
                    self.recipe.readiness.ready(&component);
                }
                self.recipe
                    .metrics
                    .write_seconds
                    .record(began.elapsed().as_secs_f64());
                self.failures = 0;
                let mut records = 0;
                for batch in self.queue.drain(..count) {
                    records += batch.len() as u64;
                    self.recipe.acks.ack(&batch);
                }
                self.recipe.metrics.records_out.increment(records);
                if let Some(inlet) = &self.inlet {
                    inlet.grant(records);
                }
                if !delay.is_zero() {
                    // Waits without blocking its arbiter.
                    self.next_write = Some(std::time::Instant::now() + delay);
                    if !self.queue.is_empty() && !self.retry_scheduled {
                        self.retry_scheduled = true;
                        ctx.send_later(StageMessage::Retry, delay);
                    }
                }
            }
            Err(error) => {
                self.recipe
                    .readiness
                    .unready(&component, format!("retrying a failed write: {error}"));
                self.recipe.metrics.retries.increment(1);
                self.failures = self.failures.saturating_add(1);
                let delay = retry_delay(self.failures);
                tracing::warn!(%error, retry_in = ?delay, attempt = self.failures, "file sink write failed; holding the records");
                if !self.retry_scheduled {
                    self.retry_scheduled = true;
                    ctx.send_later(StageMessage::Retry, delay);
                }
            }
        }
    }
}

/// 20 ms doubling to 5 s.
fn retry_delay(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(8);
    Duration::from_millis(20u64 << exponent).min(Duration::from_secs(5))
}

impl Worker for FileSinkWorker {
    type Message = StageMessage;

    fn started(&mut self, ctx: &mut WorkerContext<'_, Self>) -> Result<(), Failure> {
        self.file = Some(OpenOutput::open(&self.recipe.output)?);
        // A fresh incarnation has not failed a write (the previous one may have died unready).
        self.recipe.readiness.ready(ctx.path().as_str());
        self.inlet = Some(self.recipe.inlets.open(
            ctx.path().clone(),
            ctx.myself(),
            self.recipe.capacity,
        ));
        self.path = Some(ctx.path().clone());
        Ok(())
    }

    fn handle(
        &mut self,
        message: StageMessage,
        ctx: &mut WorkerContext<'_, Self>,
    ) -> Result<(), Failure> {
        match message {
            StageMessage::Batch(batch) => {
                self.queue.push_back(batch);
                // Write once the batches already in the mailbox are queued too: one write and
                // one fsync for all of them (a full mailbox: write now).
                if self.write_scheduled {
                    return Ok(());
                }
                if ctx.myself().try_send(StageMessage::Wake).is_ok() {
                    self.write_scheduled = true;
                    return Ok(());
                }
            }
            StageMessage::Retry => self.retry_scheduled = false,
            StageMessage::Wake => self.write_scheduled = false,
            StageMessage::Tick | StageMessage::Completed(_) => {} // a stage's: not sent to sinks
        }
        self.flush(ctx);
        Ok(())
    }

    fn stopped(&mut self, _reason: &StopReason) {
        if let (Some(path), Some(inlet)) = (&self.path, &self.inlet) {
            self.recipe.inlets.withdraw(path, inlet);
            // A fresh start will say again if it cannot write.
            self.recipe.readiness.ready(path.as_str());
        }
    }
}
