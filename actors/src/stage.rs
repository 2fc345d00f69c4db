//! The processing actor of one partition for one stage (`/pipelines/<p>/stages/<st>/p<N>`):
//! applies its operator to each batch and forwards the result, within the credit of the next
//! actor; its own inlet gets credit back as batches leave. User code runs under the supervision
//! crate's panic containment: a panic fails the actor, which rewinds the partition.
//!
//! One actor ([`StageWorker`]) for every operator: it owns what all share ([`core::StageCore`]:
//! inlet, outputs, metrics, incarnation, dead letters) and holds one [`StageLogic`], one file
//! per operator, as in `operators/`: [`passthrough`], [`filter`], [`map`] (map and key_by),
//! [`flat_map`], [`window`], [`throttle`], [`grouped_within`], [`buffer`], [`map_async`].
//!
//! Records a filter drops are acknowledged at once (deliberately filtered); records a window
//! absorbs are acknowledged with the emissions that release them ([`window`]); records a
//! window cannot read, and late ones (its side output), go to the dead letters.

pub(crate) mod buffer;
mod core;
mod dead_letter;
mod filter;
pub(crate) mod flat_map;
pub(crate) mod grouped_within;
mod map;
pub(crate) mod map_async;
mod operation;
mod passthrough;
pub(crate) mod throttle;
pub(crate) mod user_code;
pub(crate) mod window;

use std::sync::Arc;
use std::time::Instant;

use streamvisor_supervision::{ActorPath, Failure, Worker, WorkerContext};

use crate::flow::forwarder::Forwarder;
use crate::flow::inlet::{Inlets, TakesBatches, Waker};
use crate::flow::outputs::{FanOut, Outputs};
use crate::operators::error::OperatorError;
use crate::pipeline::acks::AckRouter;
use crate::pipeline::dead_letters::DeadLetterTarget;
use crate::record::Batch;
use user_code::UserCode;

use self::core::StageCore;
pub use flat_map::{FlatMapFn, Pieces};
pub use operation::{FilterFn, KeyFn, MapFn, Operation};

/// What a stage actor takes.
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
    Completed(Box<map_async::Completion>),
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

/// What one operator does in its stage actor. Batches reach it in order, of the incarnation
/// the actor serves (older ones are dropped before); it sends on through the [`StageCore`].
trait StageLogic {
    /// The actor started (timers to set).
    fn started(&mut self, _stage: &mut StageCore, _ctx: &mut WorkerContext<'_, StageWorker>) {}

    /// What it makes of one batch, for operators that turn each batch into at most one to
    /// send on (records they drop or refuse settled on the way): the input's credit comes back
    /// when the output leaves, or at once if there is none. Unchanged by default.
    fn apply(&mut self, batch: Batch, _stage: &mut StageCore) -> Result<Option<Batch>, Failure> {
        Ok(Some(batch))
    }

    /// Takes a batch (within the credit the sender took): by default, applies it and sends on
    /// what it made.
    fn take(
        &mut self,
        batch: Batch,
        stage: &mut StageCore,
        _ctx: &mut WorkerContext<'_, StageWorker>,
    ) -> Result<(), Failure> {
        let (began, records) = (Instant::now(), batch.len() as u64);
        let output = self.apply(batch, stage)?;
        stage.pass_on(output, records, began);
        Ok(())
    }

    /// A timer it set fired.
    fn tick(
        &mut self,
        _stage: &mut StageCore,
        _ctx: &mut WorkerContext<'_, StageWorker>,
    ) -> Result<(), Failure> {
        Ok(())
    }

    /// A future it started finished (map_async).
    fn completed(
        &mut self,
        _completion: map_async::Completion,
        _stage: &mut StageCore,
        _ctx: &mut WorkerContext<'_, StageWorker>,
    ) -> Result<(), Failure> {
        Ok(())
    }

    /// The outputs may take more: hand them what it holds back (a buffer's); false when it
    /// handed nothing.
    fn refill(&mut self, _stage: &mut StageCore) -> bool {
        false
    }
}

/// Checks that `operation`'s settings can work (its logic can be made).
pub(crate) fn check(operation: &Operation) -> Result<(), OperatorError> {
    logic_of(operation).map(drop)
}

/// The logic of `operation`, fresh (a restart starts from nothing: the partition replays).
fn logic_of(operation: &Operation) -> Result<Box<dyn StageLogic>, OperatorError> {
    Ok(match operation {
        Operation::Passthrough => Box::new(passthrough::PassthroughLogic),
        Operation::Filter(keep) => Box::new(filter::FilterLogic::new(Arc::clone(keep))),
        Operation::Map(function) => Box::new(map::MapLogic::new(
            Arc::clone(function),
            map::Rewrites::Value,
        )),
        Operation::KeyBy(key_of) => {
            Box::new(map::MapLogic::new(Arc::clone(key_of), map::Rewrites::Key))
        }
        Operation::FlatMap(function) => Box::new(flat_map::FlatMapLogic::new(Arc::clone(function))),
        Operation::Window(recipe) => Box::new(window::WindowLogic::new((**recipe).clone())?),
        Operation::Throttle(settings) => Box::new(throttle::ThrottleLogic::new(*settings)?),
        Operation::GroupedWithin {
            max_records,
            within,
        } => Box::new(grouped_within::GroupLogic::new(*max_records, *within)?),
        Operation::Buffer { batches, strategy } => {
            Box::new(buffer::BufferLogic::new(*batches, *strategy)?)
        }
        Operation::MapAsync {
            function,
            parallelism,
            ordered,
        } => Box::new(map_async::MapAsyncLogic::new(
            Arc::clone(function),
            *parallelism,
            *ordered,
        )?),
    })
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
    /// The source's cap of unacknowledged records per partition, and its batch size (a window
    /// tells a close at the cap from one of an idle partition by them).
    pub unacked_cap: (usize, usize),
    /// The pipeline's inlets.
    pub inlets: Inlets,
    /// Where dropped records are acknowledged.
    pub acks: AckRouter,
    /// Where records a window cannot take go, and those a user function keeps panicking on.
    pub dead_letters: DeadLetterTarget,
    /// The user function's panic containment and retry budget (shared across restarts).
    pub user_code: UserCode,
}

/// A stage actor: the shared core and its operator's logic.
pub struct StageWorker {
    core: StageCore,
    logic: Option<Box<dyn StageLogic>>,
}

impl StageWorker {
    /// A fresh stage actor from its recipe (its logic is made when it starts).
    pub fn new(recipe: StageRecipe) -> Self {
        StageWorker {
            core: StageCore::new(recipe),
            logic: None,
        }
    }

    /// Sends on what the outputs take, refilling them from the logic.
    fn pump(&mut self, ctx: &mut WorkerContext<'_, Self>) {
        let StageWorker { core, logic } = self;
        core.pump(ctx, |core| {
            logic.as_mut().is_some_and(|logic| logic.refill(core))
        });
    }
}

/// Outputs to the actors at `targets` (`{p}` replaced by `partition`, the actor's name).
pub(crate) fn outputs_to(
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
        self.core.metrics = Some(crate::metrics::StageMetrics::new(pipeline, stage));
        let me = ctx.myself();
        let waker: Waker = Arc::new(move || {
            let _ = me.try_send(StageMessage::Wake);
        });
        let mut out = outputs_to(
            &self.core.recipe.next,
            ctx.path().name(),
            self.core.recipe.fan_out,
            &self.core.recipe.inlets,
            &waker,
        )?;
        if let Some(metrics) = &self.core.metrics {
            out.count_records(metrics.records_out.clone());
        }
        out.settle_covered_with(
            self.core.recipe.acks.clone(),
            self.core.recipe.paths_to_sinks,
        );
        self.core.out = Some(out);
        self.core.inlet = Some(self.core.recipe.inlets.open(
            ctx.path().clone(),
            ctx.myself(),
            self.core.recipe.capacity,
        ));
        self.core.path = Some(ctx.path().clone());
        self.core.actor = ctx.path().to_string();
        let logic = self.logic.insert(
            logic_of(&self.core.recipe.operation)
                .map_err(|error| Failure::new(error.to_string()))?,
        );
        logic.started(&mut self.core, ctx);
        Ok(())
    }

    fn handle(
        &mut self,
        message: StageMessage,
        ctx: &mut WorkerContext<'_, Self>,
    ) -> Result<(), Failure> {
        let core = &mut self.core;
        let Some(logic) = self.logic.as_mut() else {
            return Ok(());
        };
        match message {
            StageMessage::Batch(batch) if batch.incarnation() < core.incarnation => {
                // Read before a rewind: replayed anyway, and its acks would be ignored.
                core.grant(batch.len() as u64);
            }
            StageMessage::Batch(batch) => {
                if let Some(metrics) = &core.metrics {
                    metrics.records_in.increment(batch.len() as u64);
                }
                core.incarnation = batch.incarnation();
                logic.take(batch, core, ctx)?;
            }
            StageMessage::Completed(completion) => logic.completed(*completion, core, ctx)?,
            StageMessage::Tick => logic.tick(core, ctx)?,
            StageMessage::Retry => {
                if let Some(out) = core.out.as_mut() {
                    out.retry_scheduled = false;
                }
                core.dead_letter_retry_scheduled = false;
                core.retry_dead_letters()?;
            }
            StageMessage::Wake => {}
        }
        if core.dead_letters_wait() && !core.dead_letter_retry_scheduled {
            core.dead_letter_retry_scheduled = true;
            ctx.send_later(StageMessage::Retry, crate::flow::forwarder::RETRY_AFTER);
        }
        self.pump(ctx);
        Ok(())
    }

    fn stopped(&mut self, _reason: &streamvisor_supervision::StopReason) {
        if let (Some(path), Some(inlet)) = (&self.core.path, &self.core.inlet) {
            self.core.recipe.inlets.withdraw(path, inlet);
        }
    }
}
