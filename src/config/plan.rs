//! A pipeline file becomes a [`Graph`] as a graph built in Rust is (its stages running the
//! operations the file names), and the graph the [`Topology`] the actors run: one path and one
//! check ([`crate::graph::PlanError`]), whose node and part become the file's field here.

use streamvisor_actors::Operation;
use streamvisor_actors::{NodePart, SinkNode, Topology};

use super::field::{parse_fan_out, Invalid};
use super::model::{PipelineConfig, SinkConfig};
use crate::graph::{Graph, GraphError, NodeKind, Pipeline, PlanError};

impl PipelineConfig {
    /// The pipeline's graph, each sink's payload made by `sink_of(name, its table)`: the
    /// stages' operations built from the file (a setting the file cannot build is
    /// [`PlanError::Field`]) and checked by the graph's rules.
    pub fn graph<K>(
        &self,
        mut sink_of: impl FnMut(&str, &SinkConfig) -> K,
    ) -> Result<Graph<Operation, K>, PlanError> {
        let field = |(field, why): Invalid| PlanError::Field { field, why };
        let mut builder = Pipeline::builder::<Operation, K>();
        let mut fan_outs = Vec::new();
        for (name, source) in &self.sources {
            builder = builder.source(name.as_str());
            fan_outs.push((format!("sources.{name}"), name, &source.fan_out));
        }
        for (name, stage) in &self.stages {
            let operation = stage.operation(&format!("stages.{name}")).map_err(field)?;
            builder = builder.stage(
                name.as_str(),
                stage.inputs.iter().map(String::as_str),
                operation,
            );
            fan_outs.push((format!("stages.{name}"), name, &stage.fan_out));
        }
        for (name, sink) in &self.sinks {
            let payload = sink_of(name, sink);
            builder = builder.sink(
                name.as_str(),
                sink.inputs.iter().map(String::as_str),
                payload,
            );
        }
        for (table, name, fan_out) in fan_outs {
            let Some(fan_out) = fan_out else {
                continue;
            };
            let fan_out =
                parse_fan_out(fan_out).map_err(|why| field((format!("{table}.fan_out"), why)))?;
            // A fan-out means something with two or more consumers; the file may set one anyway.
            if self.consumers_of(name).len() > 1 {
                builder = builder.fan_out(name.as_str(), fan_out);
            }
        }
        Ok(builder.build()?)
    }

    /// The source's name and the topology of the file's pipeline, each sink made by
    /// `sink_of(name, its table)`.
    pub fn plan(
        &self,
        sink_of: impl FnMut(&str, &SinkConfig) -> SinkNode,
    ) -> Result<(String, Topology), PlanError> {
        self.graph(sink_of)?.into_topology(|_, node| node)
    }

    /// Checks the pipeline as it will run (a sink's target without reading its password file),
    /// naming the field at fault.
    pub(super) fn check_plan(&self) -> Result<(), Invalid> {
        self.plan(|name, sink| SinkNode {
            name: name.to_owned(),
            target: sink.target_unread(),
            delay_per_batch: std::time::Duration::ZERO,
            delay_for: None,
        })
        .map(drop)
        .map_err(|error| (self.field_of(&error), error.reason()))
    }

    /// The field a plan error is about: `stages.flag.inputs`, `sinks.out.exactly_once`, ...
    fn field_of(&self, error: &PlanError) -> String {
        if let PlanError::Field { field, .. } = error {
            return field.clone();
        }
        let Some((node, part)) = error.node() else {
            return match error {
                PlanError::Graph(GraphError::NoSink) => "sinks",
                PlanError::Graph(GraphError::EmptyName { kind, .. }) => match kind {
                    NodeKind::Source => "sources",
                    NodeKind::Stage => "stages",
                    NodeKind::Sink => "sinks",
                },
                _ => "sources",
            }
            .to_owned();
        };
        // The actors call the source `source`.
        let node = match self.sources.keys().next() {
            Some(source) if node == "source" && !self.stages.contains_key(node) => source.as_str(),
            _ => node,
        };
        let table = if self.sources.contains_key(node) {
            "sources"
        } else if self.stages.contains_key(node) {
            "stages"
        } else {
            "sinks"
        };
        let key = match part {
            NodePart::Whole => return format!("{table}.{node}"),
            NodePart::Inputs => "inputs",
            NodePart::FanOut => "fan_out",
            NodePart::Operation => match error {
                PlanError::Topology(topology) => operator_field(topology),
                _ => "op",
            },
            NodePart::Target => match self.sinks.get(node) {
                Some(sink) if sink.exactly_once == Some(true) => "exactly_once",
                _ => "kind",
            },
        };
        format!("{table}.{node}.{key}")
    }
}

/// The stage field an operator's error is about: a window's settings together (`window`), a
/// setting that must be positive by name (`rate`), else the operator (`op`).
fn operator_field(error: &streamvisor_actors::TopologyError) -> &'static str {
    use streamvisor_actors::OperatorError;
    use streamvisor_actors::TopologyError;
    match error {
        TopologyError::InvalidSetting { error, .. } => match error {
            OperatorError::Zero {
                operator: "window", ..
            }
            | OperatorError::WindowShorterThanSlide { .. }
            | OperatorError::Invalid {
                operator: "window", ..
            } => "window",
            OperatorError::Zero { setting, .. } => setting,
            _ => "op",
        },
        _ => "op",
    }
}
