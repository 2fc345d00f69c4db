//! The graph after the source as the actors run it ([`Topology`]). One path: a pipeline file
//! becomes a [`Graph`] as a graph built in Rust is, and a graph becomes the topology.

use streamvisor_actors::pipeline::topology::{NodeOutputs, SinkNode, StageNode, Topology};
use streamvisor_actors::pipeline::SinkTarget;
use streamvisor_actors::stage::Operation;

use std::collections::BTreeMap;

use super::RuntimeError;
use crate::config::PipelineConfig;
use crate::graph::{Graph, Node, Pipeline};

/// The source's name and the topology of a pipeline file: its graph (built as a graph built
/// in Rust is, its stages running the operations the file names, its sinks writing to the
/// targets already checked in `sinks`), then the topology of that graph.
pub(super) fn from_config(
    config: &PipelineConfig,
    sinks: Vec<SinkNode>,
) -> Result<(String, Topology), RuntimeError> {
    let invalid =
        |(field, why): (String, String)| RuntimeError::Broker(format!("`{field}`: {why}"));
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
        let node = sinks.remove(name).ok_or_else(|| {
            RuntimeError::Broker(format!("`sinks.{name}`: its target was not checked"))
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
    let graph = builder
        .build()
        .map_err(|error| RuntimeError::Broker(error.to_string()))?;
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
    let [source] = <[String; 1]>::try_from(sources).map_err(|_| {
        RuntimeError::Broker("a graph runs with exactly one source so far".to_owned())
    })?;
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
    topology
        .validate()
        .map_err(|error| RuntimeError::Broker(error.to_string()))?;
    Ok((source, topology))
}
