//! [`Topology`]: the nodes of a pipeline after its source, as the actors need them: each stage
//! with its operation and consumers, each sink with its target, and how many paths lead from
//! each node to a sink (what an acknowledgement of a record dropped there stands for).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::flow::outputs::FanOut;
use crate::pipeline::SinkTarget;
use crate::stage::Operation;

mod error;
mod rules;

pub use error::{NodePart, TopologyError};

/// Where a node's output goes.
#[derive(Clone, Debug, Default)]
pub struct NodeOutputs {
    /// The consumers (stages or sinks), by name.
    pub consumers: Vec<String>,
    /// How they share the output (with two or more).
    pub fan_out: FanOut,
}

/// A stage of the graph.
#[derive(Clone, Debug)]
pub struct StageNode {
    /// Its name (`/pipelines/<p>/stages/<name>`).
    pub name: String,
    /// What it does.
    pub operation: Operation,
    /// Where its output goes.
    pub outputs: NodeOutputs,
}

/// A sink of the graph.
#[derive(Clone, Debug)]
pub struct SinkNode {
    /// Its name (`/pipelines/<p>/sinks/<name>`).
    pub name: String,
    /// Where it writes.
    pub target: SinkTarget,
    /// A delay after each batch it writes (0 but in backpressure tests; file sinks).
    pub delay_per_batch: Duration,
    /// How long after the start that delay applies (none: always).
    pub delay_for: Option<Duration>,
}

/// The graph after the source: stages in flow order (each after its inputs), sinks, and where
/// the source's output goes.
#[derive(Clone, Debug)]
pub struct Topology {
    /// Where the source's records go.
    pub source_outputs: NodeOutputs,
    /// The stages, each after the nodes that feed it.
    pub stages: Vec<StageNode>,
    /// The sinks.
    pub sinks: Vec<SinkNode>,
}

impl Topology {
    /// A line: the source, then `stages` in order, then `sink`.
    pub fn line(stages: Vec<(String, Operation)>, sink: (String, SinkTarget)) -> Self {
        let mut names: Vec<String> = stages.iter().map(|(name, _)| name.clone()).collect();
        names.push(sink.0.clone());
        let source_outputs = NodeOutputs {
            consumers: vec![names[0].clone()],
            fan_out: FanOut::Broadcast,
        };
        let stages = stages
            .into_iter()
            .enumerate()
            .map(|(index, (name, operation))| StageNode {
                name,
                operation,
                outputs: NodeOutputs {
                    consumers: vec![names[index + 1].clone()],
                    fan_out: FanOut::Broadcast,
                },
            })
            .collect();
        Topology {
            source_outputs,
            stages,
            sinks: vec![SinkNode {
                name: sink.0,
                target: sink.1,
                delay_per_batch: Duration::ZERO,
                delay_for: None,
            }],
        }
    }

    /// Slows every sink down by `delay` per batch (for `slow_for` after the start, or always).
    pub fn with_sink_delay(mut self, delay: Duration, slow_for: Option<Duration>) -> Self {
        for sink in &mut self.sinks {
            sink.delay_per_batch = delay;
            sink.delay_for = slow_for;
        }
        self
    }

    /// The paths from each stage and sink to a sink, by name, and the source's.
    pub fn paths(&self) -> Result<(u32, BTreeMap<String, u32>), TopologyError> {
        let mut paths: BTreeMap<String, u32> = self
            .sinks
            .iter()
            .map(|sink| (sink.name.clone(), 1))
            .collect();
        for stage in self.stages.iter().rev() {
            let own = Self::paths_of(&stage.name, &stage.outputs, &paths)?;
            paths.insert(stage.name.clone(), own);
        }
        let source = Self::paths_of("source", &self.source_outputs, &paths)?;
        Ok((source, paths))
    }

    fn paths_of(
        node: &str,
        outputs: &NodeOutputs,
        known: &BTreeMap<String, u32>,
    ) -> Result<u32, TopologyError> {
        let each = outputs
            .consumers
            .iter()
            .map(|consumer| {
                known
                    .get(consumer)
                    .copied()
                    .ok_or_else(|| TopologyError::UnknownConsumer {
                        node: node.to_owned(),
                        consumer: consumer.clone(),
                    })
            })
            .collect::<Result<Vec<u32>, _>>()?;
        let Some(first) = each.first().copied() else {
            return Err(TopologyError::DeadEnd(node.to_owned()));
        };
        match outputs.fan_out {
            FanOut::Broadcast => Ok(each.iter().sum()),
            FanOut::Balance | FanOut::PartitionByKey if each.len() > 1 => {
                if each.iter().all(|paths| *paths == first) {
                    Ok(first)
                } else {
                    Err(TopologyError::UnevenBranches {
                        node: node.to_owned(),
                        paths: each,
                    })
                }
            }
            FanOut::Balance | FanOut::PartitionByKey => Ok(first),
        }
    }
}
