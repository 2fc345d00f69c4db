//! The discard sink (`kind = "discard"`): acknowledges every record as it arrives and keeps
//! nothing. For pipelines whose effect is elsewhere (a stage's side effects, metrics), for
//! benchmarks, and for trying a graph out.

use streamvisor_supervision::Failure;

use crate::record::Batch;
use crate::sink::actor::{SinkContext, SinkWriter};

/// Writes nothing: every batch is settled as it arrives.
#[derive(Clone, Debug, Default)]
pub struct DiscardWriter;

impl SinkWriter for DiscardWriter {
    fn open(&mut self, _sink: &mut SinkContext<'_, '_, Self>) -> Result<(), Failure> {
        Ok(())
    }

    fn take(&mut self, batch: Batch, sink: &mut SinkContext<'_, '_, Self>) -> Result<(), Failure> {
        sink.settler().durable([&batch]);
        Ok(())
    }
}
