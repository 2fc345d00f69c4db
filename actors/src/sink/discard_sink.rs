//! The discard sink (`/pipelines/<p>/sinks/<k>`, `kind = "discard"`): acknowledges every record
//! as it arrives and keeps nothing. For pipelines whose effect is elsewhere (a stage's side
//! effects, metrics), for benchmarks, and for trying a graph out.

use std::sync::Arc;

use streamvisor_supervision::{ActorPath, Failure, StopReason, Worker, WorkerContext};

use crate::flow::inlet::{Inlet, Inlets, StageMessage};
use crate::metrics::SinkMetrics;
use crate::pipeline::acks::AckRouter;

/// The recipe of a discard sink.
#[derive(Clone, Debug)]
pub struct DiscardSinkRecipe {
    /// Records it can hold (its inlet's credit).
    pub capacity: u64,
    /// The pipeline's inlets.
    pub inlets: Inlets,
    /// Where it acknowledges.
    pub acks: AckRouter,
    /// Its metrics.
    pub metrics: SinkMetrics,
}

/// A discard sink.
pub struct DiscardSinkWorker {
    recipe: DiscardSinkRecipe,
    path: Option<ActorPath>,
    inlet: Option<Arc<Inlet>>,
}

impl DiscardSinkWorker {
    /// A fresh discard sink.
    pub fn new(recipe: DiscardSinkRecipe) -> Self {
        DiscardSinkWorker {
            recipe,
            path: None,
            inlet: None,
        }
    }
}

impl Worker for DiscardSinkWorker {
    type Message = StageMessage;

    fn started(&mut self, ctx: &mut WorkerContext<'_, Self>) -> Result<(), Failure> {
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
        _ctx: &mut WorkerContext<'_, Self>,
    ) -> Result<(), Failure> {
        if let StageMessage::Batch(batch) = message {
            self.recipe.acks.ack(&batch);
            self.recipe
                .metrics
                .records_out
                .increment(batch.len() as u64);
            if let Some(inlet) = &self.inlet {
                inlet.grant(batch.len() as u64);
            }
        }
        Ok(())
    }

    fn stopped(&mut self, _reason: &StopReason) {
        if let (Some(path), Some(inlet)) = (&self.path, &self.inlet) {
            self.recipe.inlets.withdraw(path, inlet);
        }
    }
}
