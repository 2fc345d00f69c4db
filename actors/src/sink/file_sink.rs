//! The file sink's writer: appends each batch to its JSON Lines file (or, opt-in, to rolled-over JSON Lines or MessagePack files, see [`crate::sink::rolling`]),
//! fsyncs, and only then acknowledges the records to their source and gives credit back. A write
//! that fails is retried in place with backoff, holding the records (the failure-or-retry rule);
//! a failure to open the file fails the actor (a fresh start may cure it).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use streamvisor_supervision::Failure;

use crate::error::SinkError;
use crate::pipeline::health::SinkFaults;
use crate::record::Batch;
use crate::sink::actor::{SinkContext, SinkWriter};
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

/// Where and how a file sink writes.
#[derive(Clone, Debug)]
pub struct FileSinkSettings {
    /// Where it writes.
    pub output: FileOutput,
    /// Sleep after each batch written (a slowed sink, for trying backpressure out).
    pub delay_per_batch: Duration,
    /// The delay applies until then (none: always).
    pub slow_until: Option<Instant>,
    /// Injected failures (tests).
    pub faults: SinkFaults,
}

/// Writes batches to files, in order, in the actor: everything queued in one write and one
/// fsync; a failed write stays queued and is retried in place.
pub struct FileWriter {
    settings: FileSinkSettings,
    file: Option<OpenOutput>,
    queue: VecDeque<Batch>,
    /// With a per-batch delay: no write before this.
    next_write: Option<Instant>,
}

impl FileWriter {
    /// A writer for `settings` (the file opens when the actor starts).
    pub fn new(settings: FileSinkSettings) -> Self {
        FileWriter {
            settings,
            file: None,
            queue: VecDeque::new(),
            next_write: None,
        }
    }

    /// Writes what is queued, in order; a failed write stays queued and is retried with backoff.
    fn flush(&mut self, sink: &mut SinkContext<'_, '_, Self>) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        if let Some(at) = self.next_write {
            let wait = at.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                sink.retry_in(wait);
                return;
            }
        }
        // A slowed sink writes one batch per delay; otherwise everything queued goes in one
        // write and one fsync.
        let delay = match self.settings.slow_until {
            Some(until) if Instant::now() >= until => Duration::ZERO,
            _ => self.settings.delay_per_batch,
        };
        let count = if delay.is_zero() {
            self.queue.len()
        } else {
            1.min(self.queue.len())
        };
        if count == 0 {
            return;
        }
        let began = Instant::now();
        let written = match self.settings.faults.injected() {
            Some(injected) => Err(injected),
            None => {
                let batches: Vec<&Batch> = self.queue.iter().take(count).collect();
                file.write(&batches)
            }
        };
        match written {
            Ok(()) => {
                sink.wrote();
                let settler = sink.settler();
                settler.timed(began);
                settler.durable(self.queue.iter().take(count));
                self.queue.drain(..count);
                if !delay.is_zero() {
                    // Waits without blocking its arbiter.
                    self.next_write = Some(Instant::now() + delay);
                    if !self.queue.is_empty() {
                        sink.retry_in(delay);
                    }
                }
            }
            Err(error) => sink.write_failed(&error.to_string()),
        }
    }
}

impl SinkWriter for FileWriter {
    fn open(&mut self, _sink: &mut SinkContext<'_, '_, Self>) -> Result<(), Failure> {
        self.file = Some(OpenOutput::open(&self.settings.output)?);
        Ok(())
    }

    fn take(&mut self, batch: Batch, sink: &mut SinkContext<'_, '_, Self>) -> Result<(), Failure> {
        self.queue.push_back(batch);
        // Write once the batches already in the mailbox are queued too: one write and one fsync
        // for all of them (a full mailbox: write now).
        if !sink.wake_soon() {
            self.flush(sink);
        }
        Ok(())
    }

    fn resume(&mut self, sink: &mut SinkContext<'_, '_, Self>) -> Result<(), Failure> {
        self.flush(sink);
        Ok(())
    }
}
