//! A [`Graph`] becomes the [`Topology`] the actors run, checked once: the graph's rules when it
//! is built, then the actors' ([`Topology::validate`]). [`PlanError`] is the one error of both,
//! naming the node at fault and the part of it to change; a pipeline file turns that into the
//! field and its line.

use streamvisor_actors::Operation;
use streamvisor_actors::{NodeOutputs, NodePart, SinkNode, StageNode, Topology, TopologyError};
use thiserror::Error;

use super::{Graph, GraphError, Node};

/// Why a pipeline cannot be planned.
#[derive(Debug, Error)]
pub enum PlanError {
    /// A setting of a pipeline file is wrong (an operator the file cannot build).
    #[error("`{field}`: {why}")]
    Field {
        /// The TOML path of the setting (`stages.flag.window`).
        field: String,
        /// What is wrong.
        why: String,
    },
    /// The graph breaks one of its rules.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The actors cannot run the graph (a fan-out's branches, an operator's settings, a shape
    /// not supported yet).
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// The runtime runs a graph with exactly one source so far.
    #[error("a graph runs with exactly one source so far; this one has {0}")]
    Sources(usize),
    /// The graph's source has no settings in the file.
    #[error("the graph's source `{0}` has no [sources.{0}] table in the pipeline's settings")]
    SourceUnset(String),
}

impl PlanError {
    /// The node at fault and the part of it to change, when the error is about one node.
    pub fn node(&self) -> Option<(&str, NodePart)> {
        match self {
            Self::Field { .. } | Self::Sources(_) => None,
            Self::Graph(error) => error.node(),
            Self::Topology(error) => Some((error.node(), error.part())),
            Self::SourceUnset(source) => Some((source, NodePart::Whole)),
        }
    }

    /// What is wrong, for a reader already told which node.
    pub fn reason(&self) -> String {
        match self {
            Self::Field { why, .. } => why.clone(),
            Self::Topology(error) => error.reason(),
            other => other.to_string(),
        }
    }
}

impl<K> Graph<Operation, K> {
    /// The source's name and the topology of this graph, whose sinks become
    /// `sink_node(name, payload)`; checked by the actors' rules.
    pub fn into_topology(
        self,
        sink_node: impl Fn(String, K) -> SinkNode,
    ) -> Result<(String, Topology), PlanError> {
        let sources: Vec<String> = self
            .sources()
            .map(|source| source.name().to_owned())
            .collect();
        let [source] = <[String; 1]>::try_from(sources)
            .map_err(|sources| PlanError::Sources(sources.len()))?;
        let outputs_of = |name: &str| NodeOutputs {
            consumers: self
                .consumers(name)
                .map(<[String]>::to_vec)
                .unwrap_or_default(),
            fan_out: self.fan_out(name).unwrap_or_default(),
        };
        let source_outputs = outputs_of(&source);
        let outputs: Vec<NodeOutputs> = self
            .stages()
            .map(|stage| outputs_of(stage.name()))
            .collect();
        let mut outputs = outputs.into_iter();
        let mut stages = Vec::new();
        let mut sinks = Vec::new();
        for node in self.into_nodes() {
            match node {
                Node::Source(_) => {}
                Node::Stage(stage) => stages.push(StageNode {
                    name: stage.name().to_owned(),
                    outputs: outputs.next().unwrap_or_default(),
                    operation: stage.into_payload(),
                }),
                Node::Sink(sink) => {
                    let name = sink.name().to_owned();
                    sinks.push(sink_node(name, sink.into_payload()));
                }
            }
        }
        let topology = Topology {
            source_outputs,
            stages,
            sinks,
        };
        topology.validate()?;
        Ok((source, topology))
    }
}
