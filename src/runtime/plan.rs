//! The graph after the source as the actors run it ([`Topology`]), from a pipeline file or
//! from a graph built in Rust.

use streamvisor_actors::pipeline::topology::{NodeOutputs, SinkNode, StageNode, Topology};
use streamvisor_actors::pipeline::SinkTarget;
use streamvisor_actors::stage::Operation;

use super::RuntimeError;
use crate::config::PipelineConfig;
use crate::graph::{Graph, Node};

/// The graph after the source, as the actors run it: stages in flow order with their
/// operations and consumers, and the sinks.
pub(super) fn from_config(
    config: &PipelineConfig,
    source: &str,
    sinks: Vec<SinkNode>,
) -> Result<Topology, RuntimeError> {
    let invalid =
        |(field, why): (String, String)| RuntimeError::Broker(format!("`{field}`: {why}"));
    let fan_out = |setting: &Option<String>| {
        setting
            .as_deref()
            .map(crate::config::parse_fan_out)
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let source_fan_out = fan_out(&config.sources[source].fan_out)
        .map_err(|why| invalid((format!("sources.{source}.fan_out"), why)))?;
    let mut stages = Vec::new();
    for name in config.stages_in_order().map_err(invalid)? {
        let stage = &config.stages[&name];
        stages.push(StageNode {
            operation: stage
                .operation(&format!("stages.{name}"))
                .map_err(invalid)?,
            outputs: NodeOutputs {
                consumers: config.consumers_of(&name),
                fan_out: fan_out(&stage.fan_out)
                    .map_err(|why| invalid((format!("stages.{name}.fan_out"), why)))?,
            },
            name,
        });
    }
    let topology = Topology {
        source_outputs: NodeOutputs {
            consumers: config.consumers_of(source),
            fan_out: source_fan_out,
        },
        stages,
        sinks,
    };
    topology
        .validate()
        .map_err(|error| RuntimeError::Broker(error.to_string()))?;
    Ok(topology)
}

/// The source's name and the topology of a graph built in Rust.
pub(super) fn from_graph(
    graph: Graph<Operation, SinkTarget>,
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
            Node::Sink(sink) => sinks.push(SinkNode {
                name: sink.name().to_owned(),
                target: sink.into_payload(),
                delay_per_batch: std::time::Duration::ZERO,
                delay_for: None,
            }),
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
