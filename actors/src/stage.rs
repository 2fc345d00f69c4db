//! The processing actor of one partition for one stage (`/pipelines/<p>/stages/<st>/p<N>`):
//! applies its operation to each batch and forwards the result, within the credit of the next
//! actor; its own inlet gets credit back as batches leave. User code runs under the supervision
//! crate's panic containment: a panic fails the actor, which rewinds the partition.
//!
//! Records a filter drops are acknowledged at once (deliberately filtered); records a window
//! absorbs are acknowledged with the emissions that release them ([`windowed`]); records a
//! window cannot read, and late ones (its side output), go to the dead letters.

pub mod async_map;
pub mod buffered;
pub mod flat_map;
mod operation;
pub mod pacing;
pub mod user_code;
pub mod windowed;

use std::sync::Arc;
use std::time::Instant;

use streamvisor_supervision::{ActorPath, Failure, Worker, WorkerContext};

use crate::flow::forwarder::{Forwarder, Waiting, RETRY_AFTER};
use crate::flow::inlet::{Inlet, Inlets, TakesBatches, Waker};
use crate::flow::outputs::{FanOut, Outputs};
use crate::pipeline::acks::AckRouter;
use crate::pipeline::dead_letters::{DeadLetterOrigin, DeadLetterTarget};
use crate::record::Batch;
use buffered::Buffered;
use pacing::{Grouping, Throttled};
use user_code::UserCode;
use windowed::{Rejected, Windowed};

pub use flat_map::{FlatMapFn, Pieces};
pub use operation::{FilterFn, KeyFn, MapFn, Operation};

/// What flows between stage actors.
#[derive(Debug)]
pub enum StageMessage {
    /// Records to handle (within the credit the sender took).
    Batch(Batch),
    /// A timer: try again what was blocked.
    Retry,
    /// Credit came back downstream: try now.
    Wake,
    /// A timer: advance the windows (window stages), or release paced records.
    Tick,
    /// A map_async future finished (map_async stages).
    Completed(Box<async_map::Completion>),
}

impl TakesBatches for StageMessage {
    fn batch(batch: Batch) -> Self {
        StageMessage::Batch(batch)
    }

    fn into_batch(self) -> Option<Batch> {
        match self {
            StageMessage::Batch(batch) => Some(batch),
            _ => None,
        }
    }
}

/// What a per-record user function writes.
#[derive(Clone, Copy)]
enum Rewrites {
    /// The record's Kafka key (key_by).
    Key,
    /// The record's value (map).
    Value,
}

/// The state of a stage that changes when records leave.
enum Paced {
    Throttle(Throttled),
    Group(Grouping),
    Buffer(Buffered),
}

/// The recipe of a stage actor (shared by its partitions).
#[derive(Clone)]
pub struct StageRecipe {
    /// What it does.
    pub operation: Operation,
    /// The paths of its consumers' actors (stages' partition actors, or sinks); `{p}` is
    /// replaced by the partition actor's own name (`p3`).
    pub next: Vec<String>,
    /// How the consumers share the output.
    pub fan_out: FanOut,
    /// The paths from this stage to a sink (what acknowledging a record dropped here stands
    /// for).
    pub paths_to_sinks: u32,
    /// Records it can hold.
    pub capacity: u64,
    /// The pipeline's inlets.
    pub inlets: Inlets,
    /// Where dropped records are acknowledged.
    pub acks: AckRouter,
    /// Where records a window cannot take go, and those a user function keeps panicking on.
    pub dead_letters: DeadLetterTarget,
    /// The user function's panic containment and retry budget (shared across restarts).
    pub user_code: UserCode,
}

/// A stage actor.
pub struct StageWorker {
    recipe: StageRecipe,
    path: Option<ActorPath>,
    inlet: Option<Arc<Inlet>>,
    out: Option<Outputs>,
    value: Vec<u8>,
    metrics: Option<crate::metrics::StageMetrics>,
    windowed: Option<Windowed>,
    rejected: Vec<Rejected>,
    /// A window tick timer is pending.
    ticking: bool,
    /// What the source was last told the windows hold: (incarnation, records).
    reported_held: (u64, usize),
    /// The newest partition incarnation seen: batches of older ones are dropped (replayed).
    incarnation: u64,
    /// A filter's verdicts for the batch at hand (kept between batches: no allocation each).
    verdicts: Vec<bool>,
    /// Its path as text (dead letters name it).
    actor: String,
    /// A throttle's or a grouping's state.
    paced: Option<Paced>,
    /// When the pacing timer fires, if it is set.
    pacing_timer: Option<Instant>,
    /// A map_async stage's records in flight.
    async_map: Option<async_map::AsyncMapping>,
}

impl StageWorker {
    /// A fresh stage actor from its recipe.
    pub fn new(recipe: StageRecipe) -> Self {
        StageWorker {
            recipe,
            path: None,
            inlet: None,
            out: None,
            value: Vec::new(),
            metrics: None,
            windowed: None,
            rejected: Vec::new(),
            ticking: false,
            reported_held: (0, 0),
            incarnation: 0,
            verdicts: Vec::new(),
            actor: String::new(),
            paced: None,
            pacing_timer: None,
            async_map: None,
        }
    }

    /// Tells the source how many records the windows hold, when that changed (a drain does
    /// not wait for them).
    fn report_held(&mut self) {
        let Some(windowed) = &self.windowed else {
            return;
        };
        let now = (windowed.incarnation(), windowed.held());
        if now == self.reported_held {
            return;
        }
        let Some((topic, partition)) = windowed.last_input() else {
            return;
        };
        if let Some(source) = self.recipe.acks.source(&topic) {
            source.send(crate::source::kafka::SourceInput::HeldInWindows {
                partition,
                incarnation: now.0,
                records: now.1,
            });
            self.reported_held = now;
        }
    }

    /// Applies the operation to `batch`; what goes downstream (none: nothing).
    fn apply(&mut self, batch: Batch, actor: &str) -> Result<Option<Batch>, Failure> {
        match &self.recipe.operation {
            // Throttles and groupings take their batches in `pace`.
            Operation::Passthrough
            | Operation::Throttle(_)
            | Operation::GroupedWithin { .. }
            | Operation::Buffer { .. }
            | Operation::MapAsync { .. } => Ok(Some(batch)),
            Operation::Filter(keep) => {
                self.rejected.clear();
                let partition = batch.partition();
                let code = &self.recipe.user_code;
                let mut verdicts = std::mem::take(&mut self.verdicts);
                verdicts.clear();
                for (index, record) in batch.iter().enumerate() {
                    match code.call(partition, record.offset, record.index, || keep(&record))? {
                        Ok(keep) => verdicts.push(keep),
                        Err(why) => {
                            self.rejected.push(Rejected { index, why });
                            verdicts.push(false);
                        }
                    }
                }
                self.dead_letter(&batch, actor)?;
                if self.rejected.is_empty() && verdicts.iter().all(|keep| *keep) {
                    self.verdicts = verdicts;
                    return Ok(Some(batch));
                }
                let mut kept = Batch::new(
                    Arc::clone(batch.topic()),
                    batch.partition(),
                    batch.incarnation(),
                    batch.len(),
                );
                let mut dropped = Vec::new();
                let mut rejected = self.rejected.iter().map(|r| r.index).peekable();
                for ((index, record), keep) in
                    batch.iter().enumerate().zip(verdicts.iter().copied())
                {
                    if rejected.next_if_eq(&index).is_some() {
                        continue; // acknowledged when the dead letters have it
                    }
                    if keep {
                        kept.push_copy(&record);
                    } else {
                        dropped.push(record.offset);
                    }
                }
                self.verdicts = verdicts;
                let paths = self.recipe.paths_to_sinks;
                if kept.is_empty() {
                    // Nothing goes on: what the batch covers is settled with the dropped records.
                    self.recipe
                        .acks
                        .ack_some(&batch, dropped.into_iter(), paths);
                    return Ok(None);
                }
                // What the batch covers goes on with the records kept.
                kept.cover(batch.covered().iter().copied());
                self.recipe.acks.ack_paths(&batch, dropped, paths);
                Ok(Some(kept))
            }
            Operation::Window(_) => {
                let Some(windowed) = self.windowed.as_mut() else {
                    return Ok(None);
                };
                let now = Instant::now();
                self.rejected.clear();
                windowed
                    .absorb(&batch, now, &mut self.rejected)
                    .map_err(|error| Failure::new(error.to_string()))?;
                self.dead_letter(&batch, actor)?;
                let chunk = self.emission_chunk();
                let mut emitted = windowed_emit(self.windowed.as_mut(), &batch, now, chunk);
                let last = emitted.pop();
                if let Some(out) = self.out.as_mut() {
                    // All but the last go on without credit; the input's comes back with the last.
                    for batch in emitted {
                        out.push_with_credit(batch, 0);
                    }
                }
                Ok(last)
            }
            Operation::KeyBy(key_of) => {
                let key_of = Arc::clone(key_of);
                self.rewrite(batch, actor, Rewrites::Key, &*key_of)
            }
            Operation::Map(map) => {
                let map = Arc::clone(map);
                self.rewrite(batch, actor, Rewrites::Value, &*map)
            }
            Operation::FlatMap(function) => {
                let function = Arc::clone(function);
                self.flat_map(batch, actor, &*function)
            }
        }
    }

    /// Runs a per-record user function writing each record's new key or value; records it
    /// refuses (or keeps panicking on) go to the dead letters.
    fn rewrite(
        &mut self,
        batch: Batch,
        actor: &str,
        rewrites: Rewrites,
        function: &MapFn,
    ) -> Result<Option<Batch>, Failure> {
        let mut rewritten = Batch::new(
            Arc::clone(batch.topic()),
            batch.partition(),
            batch.incarnation(),
            batch.len(),
        );
        self.rejected.clear();
        let partition = batch.partition();
        for (index, record) in batch.iter().enumerate() {
            self.value.clear();
            let out = &mut self.value;
            let outcome =
                self.recipe
                    .user_code
                    .call(partition, record.offset, record.index, || {
                        function(&record, out)
                    })?;
            match outcome.and_then(|written| written) {
                Ok(()) => {
                    let (key, value) = match rewrites {
                        Rewrites::Key => (Some(self.value.as_slice()), record.value),
                        Rewrites::Value => (record.key, self.value.as_slice()),
                    };
                    rewritten.push_rewritten(&record, key, value);
                }
                Err(why) => self.rejected.push(Rejected { index, why }),
            }
        }
        self.dead_letter(&batch, actor)?;
        if rewritten.is_empty() {
            // No batch without records goes on (a sink would have nothing to write): what the
            // input covers is settled here.
            let paths = self.recipe.paths_to_sinks;
            self.recipe.acks.ack_some(&batch, std::iter::empty(), paths);
            return Ok(None);
        }
        rewritten.cover(batch.covered().iter().copied());
        Ok(Some(rewritten))
    }

    /// Sends the records of `batch` the window rejected to the dead letters (acknowledged on
    /// delivery). A full producer queue fails the actor: the partition rewinds and they come
    /// again.
    fn dead_letter(&self, batch: &Batch, actor: &str) -> Result<(), Failure> {
        if self.rejected.is_empty() {
            return Ok(());
        }
        let Some(source) = self.recipe.acks.source(batch.topic()) else {
            return Ok(()); // the source stopped: replayed by the partition's next reader
        };
        let producer = self
            .recipe
            .dead_letters
            .producer()
            .map_err(|error| Failure::new(format!("dead-letter producer: {error}")))?;
        let mut rejected = self.rejected.iter().peekable();
        for (index, record) in batch.iter().enumerate() {
            let Some(refused) = rejected.next_if(|refused| refused.index == index) else {
                continue;
            };
            tracing::debug!(partition = batch.partition(), offset = record.offset, why = %refused.why, "record to the dead letters");
            let origin = DeadLetterOrigin {
                source: source.clone(),
                partition: batch.partition(),
                incarnation: batch.incarnation(),
                offset: record.offset,
                paths: self.recipe.paths_to_sinks,
            };
            producer
                .send(batch.topic(), &record, origin, &refused.why, actor)
                .map_err(|why| {
                    Failure::new(why.unwrap_or_else(|| "the dead-letter queue is full".to_owned()))
                })?;
        }
        Ok(())
    }

    /// Records per emitted batch: a batch's worth (a quarter of an actor's capacity, the
    /// smallest inlet downstream), so that every batch fits the next actor's credit.
    fn emission_chunk(&self) -> usize {
        (self.recipe.capacity / 4).max(1) as usize
    }

    /// Advances the windows on the timer; keeps the timer going. While the input is held back
    /// (this actor's outputs wait for credit, or the source has paused the partition), the quiet
    /// is backpressure, not idleness: the idle timeout starts again.
    fn tick(&mut self, ctx: &mut WorkerContext<'_, Self>) {
        self.ticking = false;
        let chunk = self.emission_chunk();
        if let (Some(windowed), Some(out)) = (self.windowed.as_mut(), self.out.as_mut()) {
            if let Some((topic, partition)) = windowed.last_input() {
                let now = Instant::now();
                let source_holds_back = || {
                    self.recipe
                        .acks
                        .source(&topic)
                        .is_some_and(|source| source.holds_back(partition))
                };
                if !out.is_idle() || source_holds_back() {
                    windowed.held_back(now);
                }
                for emitted in windowed.emit(&topic, partition, now, chunk) {
                    out.push_with_credit(emitted, 0);
                }
            }
        }
        self.report_held();
        self.schedule_tick(ctx);
    }

    fn schedule_tick(&mut self, ctx: &mut WorkerContext<'_, Self>) {
        if let (Operation::Window(recipe), false) = (&self.recipe.operation, self.ticking) {
            self.ticking = true;
            ctx.send_later(StageMessage::Tick, recipe.tick());
        }
    }

    fn pump(&mut self, ctx: &mut WorkerContext<'_, Self>) {
        loop {
            let Some(out) = self.out.as_mut() else {
                return;
            };
            let (sent, waiting) = out.pump();
            if let Some(inlet) = &self.inlet {
                for records in sent {
                    inlet.grant(records as u64);
                }
            }
            if waiting == Waiting::ForActor && !out.retry_scheduled {
                out.retry_scheduled = true;
                ctx.send_later(StageMessage::Retry, RETRY_AFTER);
            }
            if !self.feed_from_buffer() {
                return;
            }
        }
    }
}

/// Outputs to the actors at `targets` (`{p}` replaced by `partition`, the actor's name).
pub fn outputs_to(
    targets: &[String],
    partition: &str,
    fan_out: FanOut,
    inlets: &Inlets,
    waker: &Waker,
) -> Result<Outputs, Failure> {
    let forwarders = targets
        .iter()
        .map(|target| {
            ActorPath::parse(&target.replace("{p}", partition))
                .map(|path| Forwarder::new(path, inlets.clone(), Arc::clone(waker)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Outputs::new(forwarders, fan_out))
}

/// The windows' emissions after `input` (batches of at most `chunk` records), remembering
/// where it came from (for the timer).
fn windowed_emit(
    windowed: Option<&mut Windowed>,
    input: &Batch,
    now: Instant,
    chunk: usize,
) -> Vec<Batch> {
    let Some(windowed) = windowed else {
        return Vec::new();
    };
    windowed.remember_input(input);
    windowed.emit(input.topic(), input.partition(), now, chunk)
}

impl Worker for StageWorker {
    type Message = StageMessage;

    fn started(&mut self, ctx: &mut WorkerContext<'_, Self>) -> Result<(), Failure> {
        // /pipelines/<p>/stages/<st>/p<N>; elsewhere (a tree built by hand) no pipeline, and
        // the actor's name as the stage.
        let segments: Vec<&str> = ctx.path().as_str().split('/').collect();
        let (pipeline, stage) = match (segments.get(2), segments.get(4)) {
            (Some(pipeline), Some(stage)) => (*pipeline, *stage),
            _ => ("", ctx.path().name()),
        };
        self.metrics = Some(crate::metrics::StageMetrics::new(pipeline, stage));
        let me = ctx.myself();
        let waker: Waker = Arc::new(move || {
            let _ = me.try_send(StageMessage::Wake);
        });
        let mut out = outputs_to(
            &self.recipe.next,
            ctx.path().name(),
            self.recipe.fan_out,
            &self.recipe.inlets,
            &waker,
        )?;
        if let Some(metrics) = &self.metrics {
            out.count_records(metrics.records_out.clone());
        }
        out.settle_covered_with(self.recipe.acks.clone(), self.recipe.paths_to_sinks);
        self.out = Some(out);
        self.inlet = Some(self.recipe.inlets.open(
            ctx.path().clone(),
            ctx.myself(),
            self.recipe.capacity,
        ));
        self.path = Some(ctx.path().clone());
        self.actor = ctx.path().to_string();
        let invalid =
            |error: crate::operators::error::OperatorError| Failure::new(error.to_string());
        self.paced = match &self.recipe.operation {
            Operation::Throttle(settings) => {
                Some(Paced::Throttle(Throttled::new(*settings).map_err(invalid)?))
            }
            Operation::GroupedWithin {
                max_records,
                within,
            } => Some(Paced::Group(
                Grouping::new(*max_records, *within).map_err(invalid)?,
            )),
            Operation::Buffer { batches, strategy } => Some(Paced::Buffer(
                Buffered::new(*batches, *strategy).map_err(invalid)?,
            )),
            _ => None,
        };
        if let Operation::MapAsync {
            function,
            parallelism,
            ordered,
        } = &self.recipe.operation
        {
            self.async_map = Some(
                async_map::AsyncMapping::new(Arc::clone(function), *parallelism, *ordered)
                    .map_err(invalid)?,
            );
        }
        if let Operation::Window(recipe) = &self.recipe.operation {
            self.windowed = Some(
                Windowed::new((**recipe).clone())
                    .map_err(|error| Failure::new(error.to_string()))?,
            );
            self.schedule_tick(ctx);
        }
        Ok(())
    }

    fn handle(
        &mut self,
        message: StageMessage,
        ctx: &mut WorkerContext<'_, Self>,
    ) -> Result<(), Failure> {
        if let (StageMessage::Batch(batch), Some(metrics)) = (&message, &self.metrics) {
            // Batches read before a rewind are dropped, not taken in.
            if batch.incarnation() >= self.incarnation {
                metrics.records_in.increment(batch.len() as u64);
            }
        }
        match message {
            StageMessage::Batch(batch) if batch.incarnation() < self.incarnation => {
                // Read before a rewind: replayed anyway, and its acks would be ignored.
                if let Some(inlet) = &self.inlet {
                    inlet.grant(batch.len() as u64);
                }
            }
            StageMessage::Batch(batch) if self.async_map.is_some() => {
                self.incarnation = batch.incarnation();
                if let Some(mapping) = self.async_map.as_mut() {
                    mapping.push(batch);
                    mapping.start(&ctx.myself());
                }
            }
            StageMessage::Completed(completion) => self.completed(*completion, ctx)?,
            StageMessage::Batch(batch) if self.paced.is_some() => {
                self.incarnation = batch.incarnation();
                self.pace(Some(batch), ctx)?;
            }
            StageMessage::Batch(batch) => {
                self.incarnation = batch.incarnation();
                let began = Instant::now();
                let records = batch.len() as u64;
                let actor = std::mem::take(&mut self.actor);
                let output = self.apply(batch, &actor);
                self.actor = actor;
                let output = output?;
                self.report_held();
                if let Some(metrics) = &self.metrics {
                    metrics.latency.record(began.elapsed().as_secs_f64());
                }
                // The input's credit comes back when its output leaves (at once if none).
                match (output, self.out.as_mut()) {
                    (Some(output), Some(out)) => out.push_with_credit(output, records),
                    _ => {
                        if let Some(inlet) = &self.inlet {
                            inlet.grant(records);
                        }
                    }
                }
            }
            StageMessage::Tick if self.paced.is_some() => {
                self.pacing_timer = None;
                self.pace(None, ctx)?;
            }
            StageMessage::Tick => self.tick(ctx),
            StageMessage::Retry => {
                if let Some(out) = self.out.as_mut() {
                    out.retry_scheduled = false;
                }
            }
            StageMessage::Wake => {}
        }
        self.pump(ctx);
        Ok(())
    }

    fn stopped(&mut self, _reason: &streamvisor_supervision::StopReason) {
        if let (Some(path), Some(inlet)) = (&self.path, &self.inlet) {
            self.recipe.inlets.withdraw(path, inlet);
        }
    }
}
