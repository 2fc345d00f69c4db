//! The processing actor of one partition for one stage (`/pipelines/<p>/stages/<st>/p<N>`):
//! applies its operation to each batch and forwards the result, within the credit of the next
//! actor; its own inlet gets credit back as batches leave. User code runs under the supervision
//! crate's panic containment: a panic fails the actor, which rewinds the partition.

use std::sync::Arc;

use streamvisor_supervision::{ActorPath, Failure, Worker, WorkerContext};

use crate::pipeline::forwarder::{Forwarder, Waiting, RETRY_AFTER};
use crate::pipeline::inlet::{Inlet, Inlets, StageMessage, Waker};
use crate::record::{Batch, RecordRef};

/// A map over record values: writes the new value of `record` into `out` (cleared before each
/// call).
pub type MapFn = dyn Fn(&RecordRef<'_>, &mut Vec<u8>) + Send + Sync;

/// What a stage does to each record.
#[derive(Clone)]
pub enum Operation {
    /// Records go on unchanged.
    Passthrough,
    /// Each value is replaced by the function's output.
    Map(Arc<MapFn>),
}

/// The recipe of a stage actor (shared by its partitions).
#[derive(Clone)]
pub struct StageRecipe {
    /// What it does.
    pub operation: Operation,
    /// The path of the next actor (another stage's partition actor, or the sink); `{p}` is
    /// replaced by the partition actor's own name (`p3`).
    pub next: String,
    /// Records it can hold.
    pub capacity: u64,
    /// The pipeline's inlets.
    pub inlets: Inlets,
}

/// A stage actor.
pub struct StageWorker {
    recipe: StageRecipe,
    path: Option<ActorPath>,
    inlet: Option<Arc<Inlet>>,
    out: Option<Forwarder>,
    value: Vec<u8>,
    latency: Option<metrics::Histogram>,
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
            latency: None,
        }
    }

    fn apply(&mut self, batch: Batch) -> Batch {
        match &self.recipe.operation {
            Operation::Passthrough => batch,
            Operation::Map(map) => {
                let mut mapped = Batch::new(
                    Arc::clone(batch.topic()),
                    batch.partition(),
                    batch.incarnation(),
                    batch.len(),
                );
                for record in batch.iter() {
                    self.value.clear();
                    map(&record, &mut self.value);
                    mapped.push(record.offset, record.timestamp_ms, record.key, &self.value);
                }
                mapped
            }
        }
    }

    fn pump(&mut self, ctx: &mut WorkerContext<'_, Self>) {
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
    }
}

impl Worker for StageWorker {
    type Message = StageMessage;

    fn started(&mut self, ctx: &mut WorkerContext<'_, Self>) -> Result<(), Failure> {
        let next = self.recipe.next.replace("{p}", ctx.path().name());
        let next = ActorPath::parse(&next)?;
        // /pipelines/<p>/stages/<st>/p<N>
        let segments: Vec<&str> = ctx.path().as_str().split('/').collect();
        if let (Some(pipeline), Some(stage)) = (segments.get(2), segments.get(4)) {
            self.latency = Some(crate::metrics::stage_latency(pipeline, stage));
        }
        let me = ctx.myself();
        let waker: Waker = Arc::new(move || {
            let _ = me.try_send(StageMessage::Wake);
        });
        self.out = Some(Forwarder::new(next, self.recipe.inlets.clone(), waker));
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
                let began = std::time::Instant::now();
                let batch = self.apply(batch);
                if let Some(latency) = &self.latency {
                    latency.record(began.elapsed().as_secs_f64());
                }
                if let Some(out) = self.out.as_mut() {
                    out.push(batch);
                }
            }
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
