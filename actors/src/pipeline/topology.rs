//! [`Topology`]: the nodes of a pipeline after its source, as the actors need them: each stage
//! with its operation and consumers, each sink with its target, and how many paths lead from
//! each node to a sink (what an acknowledgement of a record dropped there stands for).

use std::collections::BTreeMap;
use std::time::Duration;

use thiserror::Error;

use crate::flow::outputs::FanOut;
use crate::pipeline::SinkTarget;
use crate::stage::Operation;

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

/// A topology the actors cannot run.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TopologyError {
    /// A consumer names no stage or sink.
    #[error("`{node}` sends to `{consumer}`, which is no stage or sink")]
    UnknownConsumer {
        /// The node.
        node: String,
        /// The consumer named.
        consumer: String,
    },
    /// A balance or partition-by-key fan-out whose consumers lead to different numbers of
    /// sinks: a record takes one of them, so each must need the same acknowledgements.
    #[error("`{node}` balances or partitions over consumers with different paths to a sink ({paths:?}): give each branch the same sinks")]
    UnevenBranches {
        /// The node.
        node: String,
        /// The paths of each consumer.
        paths: Vec<u32>,
    },
    /// A node that feeds nothing.
    #[error("`{0}` feeds nothing: every branch must end in a sink")]
    DeadEnd(String),
    /// An operator setting that cannot work (a zero rate, size or parallelism, ...).
    #[error("`{node}`: {error}")]
    InvalidSetting {
        /// The stage.
        node: String,
        /// What is wrong.
        error: crate::operators::error::OperatorError,
    },
    /// A shape the actors do not run (yet).
    #[error("`{node}`: {why}")]
    Unsupported {
        /// The node at fault.
        node: String,
        /// Why.
        why: &'static str,
    },
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

    /// Checks what the actors cannot run; both pipeline files and graphs built in Rust pass
    /// here: the paths ([`Topology::paths`]), at most one window stage, reading one input (a
    /// merge would hold each record twice and release it once), and no window or second sink
    /// with an exactly-once sink (its transactions commit offsets per record), nor a window
    /// before a PostgreSQL sink (an aggregate has no origin to dedupe on); and what may not
    /// follow a flat_map.
    pub fn validate(&self) -> Result<(), TopologyError> {
        self.paths()?;
        for stage in &self.stages {
            check_settings(&stage.operation).map_err(|error| TopologyError::InvalidSetting {
                node: stage.name.clone(),
                error,
            })?;
        }
        let unsupported = |node: &str, why| {
            Err(TopologyError::Unsupported {
                node: node.to_owned(),
                why,
            })
        };
        let windows: Vec<&StageNode> = self
            .stages
            .iter()
            .filter(|stage| matches!(stage.operation, Operation::Window(_)))
            .collect();
        if let Some(second) = windows.get(1) {
            return unsupported(&second.name, "one window stage per pipeline so far");
        }
        if let Some(window) = windows.first() {
            let inputs = self
                .stages
                .iter()
                .map(|stage| &stage.outputs)
                .chain(std::iter::once(&self.source_outputs))
                .filter(|outputs| outputs.consumers.contains(&window.name))
                .count();
            if inputs > 1 {
                return unsupported(
                    &window.name,
                    "a window stage reads one input (a merge would hold each record twice)",
                );
            }
        }
        let exactly_once = self
            .sinks
            .iter()
            .find(|sink| matches!(sink.target, SinkTarget::KafkaExactlyOnce { .. }));
        if let Some(sink) = exactly_once {
            if self.sinks.len() > 1 {
                return unsupported(&sink.name, "an exactly-once sink must be the only sink");
            }
            if !windows.is_empty() {
                return unsupported(
                    &sink.name,
                    "not with a window stage yet: its transactions commit offsets per record",
                );
            }
        }
        if !windows.is_empty() {
            if let Some(sink) = self
                .sinks
                .iter()
                .find(|sink| matches!(sink.target, SinkTarget::Postgres(_)))
            {
                return unsupported(
                    &sink.name,
                    "not after a window stage yet: an aggregate has no origin to dedupe on",
                );
            }
        }
        self.check_flat_maps()
    }

    /// What may not follow a flat_map (its pieces share their source record's offset): another
    /// flat_map or a window (their bookkeeping is per offset), a PostgreSQL sink (it dedupes on
    /// the origin alone), an exactly-once sink (its transactions commit offsets per record); and
    /// a window may not precede one (the offsets an aggregate covers would ride with its last
    /// piece only).
    fn check_flat_maps(&self) -> Result<(), TopologyError> {
        for window in self
            .stages
            .iter()
            .filter(|stage| matches!(stage.operation, Operation::Window(_)))
        {
            if let Some(flat_map) = self.downstream_of(&window.name).into_iter().find(|node| {
                self.stages
                    .iter()
                    .any(|s| s.name == *node && matches!(s.operation, Operation::FlatMap(_)))
            }) {
                return Err(TopologyError::Unsupported {
                    node: flat_map,
                    why: "a flat_map cannot follow a window stage yet (the offsets an aggregate \
                          covers would be settled with its last piece only)",
                });
            }
        }
        for flat_map in self
            .stages
            .iter()
            .filter(|stage| matches!(stage.operation, Operation::FlatMap(_)))
        {
            for node in self.downstream_of(&flat_map.name) {
                let why = if let Some(stage) = self.stages.iter().find(|s| s.name == node) {
                    match stage.operation {
                        Operation::FlatMap(_) => "not after another flat_map yet",
                        Operation::Window(_) => {
                            "a window stage cannot follow a flat_map yet (it counts records by offset)"
                        }
                        _ => continue,
                    }
                } else if let Some(sink) = self.sinks.iter().find(|s| s.name == node) {
                    match sink.target {
                        SinkTarget::Postgres(_) => {
                            "not after a flat_map yet: its pieces share an origin, which the table dedupes on"
                        }
                        SinkTarget::KafkaExactlyOnce { .. } => {
                            "not after a flat_map yet: its transactions commit offsets per record"
                        }
                        _ => continue,
                    }
                } else {
                    continue;
                };
                return Err(TopologyError::Unsupported {
                    node: node.to_owned(),
                    why,
                });
            }
        }
        Ok(())
    }

    /// Every stage and sink reachable from `name`.
    fn downstream_of(&self, name: &str) -> Vec<String> {
        let consumers = |node: &str| -> Vec<String> {
            self.stages
                .iter()
                .find(|stage| stage.name == node)
                .map(|stage| stage.outputs.consumers.clone())
                .unwrap_or_default()
        };
        let mut seen: Vec<String> = Vec::new();
        let mut next = consumers(name);
        while let Some(node) = next.pop() {
            if !seen.contains(&node) {
                next.extend(consumers(&node));
                seen.push(node);
            }
        }
        seen
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

/// Builds an operation's logic once, as its actor will, to refuse settings that cannot work
/// at build time rather than in a restart loop; a window also needs an idle timeout here.
fn check_settings(operation: &Operation) -> Result<(), crate::operators::error::OperatorError> {
    if let Operation::Window(recipe) = operation {
        if recipe.settings.idle_timeout.is_none() {
            return Err(crate::operators::error::OperatorError::Invalid {
                operator: "window",
                why: "a window stage needs an idle timeout: a partition paused at its unacked \
                      cap gets no records, and only the idle timeout closes its windows"
                    .to_owned(),
            });
        }
    }
    crate::stage::check(operation)
}
