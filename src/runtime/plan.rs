//! The graph after the source as the actors run it ([`Topology`]). One path: a pipeline file
//! becomes a [`Graph`] as a graph built in Rust is, and a graph becomes the topology.

use std::collections::BTreeMap;

use streamvisor_actors::pipeline::topology::{
    NodeOutputs, SinkNode, StageNode, Topology, TopologyError,
};
use streamvisor_actors::pipeline::SinkTarget;
use streamvisor_actors::stage::Operation;
use thiserror::Error;

use super::RuntimeError;
use crate::config::PipelineConfig;
use crate::graph::{Graph, GraphError, Node, Pipeline};

/// Why a pipeline cannot be planned (the file's checks passed, or the graph came from Rust).
#[derive(Debug, Error)]
pub enum PlanError {
    /// A setting of the file is wrong.
    #[error("`{field}`: {why}")]
    Field {
        /// The TOML path of the setting (`stages.flag.fan_out`).
        field: String,
        /// What is wrong.
        why: String,
    },
    /// The graph breaks one of its rules.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The actors cannot run the graph (a fan-out's branches, say).
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// The runtime runs a graph with exactly one source so far.
    #[error("a graph runs with exactly one source so far; this one has {0}")]
    Sources(usize),
    /// The graph's source has no settings in the file.
    #[error("the graph's source `{0}` has no [sources.{0}] table in the pipeline's settings")]
    SourceUnset(String),
}

/// The source's name and the topology of a pipeline file: its graph (built as a graph built
/// in Rust is, its stages running the operations the file names, its sinks writing to the
/// targets already checked in `sinks`), then the topology of that graph.
pub(super) fn from_config(
    config: &PipelineConfig,
    sinks: Vec<SinkNode>,
) -> Result<(String, Topology), RuntimeError> {
    let invalid = |(field, why): (String, String)| PlanError::Field { field, why };
    let mut sinks: BTreeMap<String, SinkNode> = sinks
        .into_iter()
        .map(|sink| (sink.name.clone(), sink))
        .collect();
    let mut builder = Pipeline::builder::<Operation, SinkNode>();
    let mut fan_outs = Vec::new();
    for (name, source) in &config.sources {
        builder = builder.source(name.as_str());
        fan_outs.push((format!("sources.{name}"), name, &source.fan_out));
    }
    for (name, stage) in &config.stages {
        let operation = stage
            .operation(&format!("stages.{name}"))
            .map_err(invalid)?;
        builder = builder.stage(
            name.as_str(),
            stage.inputs.iter().map(String::as_str),
            operation,
        );
        fan_outs.push((format!("stages.{name}"), name, &stage.fan_out));
    }
    for (name, sink) in &config.sinks {
        let node = sinks.remove(name).ok_or_else(|| PlanError::Field {
            field: format!("sinks.{name}"),
            why: "its target was not checked".to_owned(),
        })?;
        builder = builder.sink(name.as_str(), sink.inputs.iter().map(String::as_str), node);
    }
    for (table, name, fan_out) in fan_outs {
        let Some(fan_out) = fan_out else {
            continue;
        };
        let fan_out = crate::config::parse_fan_out(fan_out)
            .map_err(|why| invalid((format!("{table}.fan_out"), why)))?;
        // A fan-out means something with two or more consumers; the file may set one anyway.
        if config.consumers_of(name).len() > 1 {
            builder = builder.fan_out(name.as_str(), fan_out);
        }
    }
    let graph = builder.build().map_err(PlanError::from)?;
    topology_of(graph, |_, node| node)
}

/// The source's name and the topology of a graph built in Rust.
pub(super) fn from_graph(
    graph: Graph<Operation, SinkTarget>,
) -> Result<(String, Topology), RuntimeError> {
    topology_of(graph, |name, target| SinkNode {
        name,
        target,
        delay_per_batch: std::time::Duration::ZERO,
        delay_for: None,
    })
}

/// The source's name and the topology of `graph`, whose sinks become `sink_node(name, payload)`.
fn topology_of<K>(
    graph: Graph<Operation, K>,
    sink_node: impl Fn(String, K) -> SinkNode,
) -> Result<(String, Topology), RuntimeError> {
    let sources: Vec<String> = graph
        .sources()
        .map(|source| source.name().to_owned())
        .collect();
    let [source] =
        <[String; 1]>::try_from(sources).map_err(|sources| PlanError::Sources(sources.len()))?;
    let outputs_of = |name: &str| NodeOutputs {
        consumers: graph
            .consumers(name)
            .map(<[String]>::to_vec)
            .unwrap_or_default(),
        fan_out: graph.fan_out(name).unwrap_or_default(),
    };
    let source_outputs = outputs_of(&source);
    let outputs: Vec<(String, NodeOutputs)> = graph
        .stages()
        .map(|stage| (stage.name().to_owned(), outputs_of(stage.name())))
        .collect();
    let mut outputs = outputs.into_iter();
    let mut stages = Vec::new();
    let mut sinks = Vec::new();
    for node in graph.into_nodes() {
        match node {
            Node::Source(_) => {}
            Node::Stage(stage) => {
                let (name, outputs) = outputs.next().unwrap_or_default();
                stages.push(StageNode {
                    name,
                    operation: stage.into_payload(),
                    outputs,
                });
            }
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
    topology.validate().map_err(PlanError::from)?;
    Ok((source, topology))
}
