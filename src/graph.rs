//! The pipeline graph: which sources, stages and sinks a pipeline has and how records flow
//! between them, checked once when it is built. Pure data: no actors, no Kafka. The runtime
//! plugs in its own stage operations (`S`) and sinks (`K`) and runs the [`Graph`].
//!
//! ```text
//!                  balance                     broadcast (the default)
//!                 +---------> flag -----------+----------> alerts    (sink)
//!                 |                           |
//!   payments -----+                           +----------> archive   (sink: merges flag
//!   (source)      |                                         ^          and audit)
//!                 +---------> audit ------------------------+
//! ```
//!
//! - Records flow along edges from a node to each of its consumers, the nodes that list it in
//!   their `inputs` (as in the TOML `inputs = [...]`).
//! - Fan-out: a source or stage with two or more consumers hands them its records by
//!   [`FanOut::Broadcast`] (the default: everyone gets everything, demand is the slowest's),
//!   [`FanOut::Balance`] or [`FanOut::PartitionByKey`].
//! - Fan-in: a stage or sink with two or more inputs merges them.
//! - Every graph built is acyclic, has a source and a sink, and every branch ends in a sink;
//!   [`PipelineBuilder::build`] reports the first rule broken as a [`GraphError`].
//! - The runtime runs any graph that passes these rules: fan-out, fan-in and branches, each
//!   node an actor (per partition for stages).
//!
//! ```
//! use streamvisor::graph::{FanOut, GraphError, Pipeline, Shape};
//!
//! let graph = Pipeline::builder()
//!     .source("payments")
//!     .stage("flag", ["payments"], "amount > 1000")
//!     .stage("audit", ["payments"], "project id, amount")
//!     .fan_out("payments", FanOut::Balance)
//!     .sink("alerts", ["flag"], "kafka: alerts")
//!     .sink("archive", ["flag", "audit"], "file: out/archive.jsonl")
//!     .build()?;
//!
//! let order: Vec<&str> = graph.topological().iter().map(|node| node.name()).collect();
//! assert_eq!(order, ["payments", "flag", "audit", "alerts", "archive"]);
//! assert_eq!(graph.fan_out("payments"), Some(FanOut::Balance));
//! assert_eq!(graph.fan_out("flag"), Some(FanOut::Broadcast));
//! assert_eq!(graph.consumers("flag"), Some(&["alerts".to_owned(), "archive".to_owned()][..]));
//! assert_eq!(graph.shape(), Shape::General);
//!
//! // A typo fails at build, naming the node and the input.
//! let error = Pipeline::builder()
//!     .source("payments")
//!     .stage("flag", ["paymnets"], "amount > 1000")
//!     .sink("alerts", ["flag"], "kafka: alerts")
//!     .build()
//!     .unwrap_err();
//! assert_eq!(
//!     error,
//!     GraphError::DanglingInput { node: "flag".into(), input: "paymnets".into() }
//! );
//! assert_eq!(error.to_string(), "`flag` reads from `paymnets`, which names no source or stage");
//! # Ok::<(), GraphError>(())
//! ```

mod builder;
mod error;
mod node;
mod plan;
mod shape;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

pub use builder::{Pipeline, PipelineBuilder};
pub use error::GraphError;
pub use node::{Node, NodeKind, Sink, Source, Stage};
pub use plan::PlanError;
pub use shape::{FanOut, LinearChain, Shape};

/// A checked pipeline graph: acyclic, with at least one source and one sink, every input naming
/// a source or stage, and a sink downstream of every source and stage. Built by
/// [`Pipeline::builder`].
///
/// Nodes are looked up by name; methods given a name that matches no node return `None`.
#[derive(Debug, Clone)]
pub struct Graph<S, K> {
    /// In topological order.
    nodes: Vec<Node<S, K>>,
    /// Name to index in `nodes`.
    positions: HashMap<String, usize>,
    /// By index in `nodes`: the names of the node's consumers, in declaration order.
    consumers: Vec<Vec<String>>,
    /// By index in `nodes`: how it fans out, for nodes with two or more consumers.
    fan_outs: Vec<Option<FanOut>>,
}

impl<S, K> Graph<S, K> {
    /// Every node, in topological order: each node after all of its inputs. Ties go to the node
    /// declared first, so the order is the same on every build of the same declarations.
    pub fn topological(&self) -> &[Node<S, K>] {
        &self.nodes
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node<S, K>> {
        self.positions.get(name).map(|&at| &self.nodes[at])
    }

    /// The names of the nodes that `name` reads from, as listed to the builder (empty for a
    /// source).
    pub fn inputs(&self, name: &str) -> Option<&[String]> {
        self.node(name).map(Node::inputs)
    }

    /// The names of the nodes that read from `name`, in declaration order (empty for a sink).
    /// [`FanOut::PartitionByKey`] numbers them in this order.
    pub fn consumers(&self, name: &str) -> Option<&[String]> {
        self.positions
            .get(name)
            .map(|&at| self.consumers[at].as_slice())
    }

    /// How `name` hands records to its consumers: `Some` only for a source or stage with two or
    /// more consumers ([`FanOut::Broadcast`] unless declared otherwise), `None` for a node that
    /// does not fan out (and for an unknown name).
    pub fn fan_out(&self, name: &str) -> Option<FanOut> {
        self.positions.get(name).and_then(|&at| self.fan_outs[at])
    }

    /// The sources, in topological order (which is their declaration order).
    pub fn sources(&self) -> impl Iterator<Item = &Source> {
        self.nodes.iter().filter_map(|node| match node {
            Node::Source(source) => Some(source),
            _ => None,
        })
    }

    /// The stages, in topological order.
    pub fn stages(&self) -> impl Iterator<Item = &Stage<S>> {
        self.nodes.iter().filter_map(|node| match node {
            Node::Stage(stage) => Some(stage),
            _ => None,
        })
    }

    /// The sinks, in topological order.
    pub fn sinks(&self) -> impl Iterator<Item = &Sink<K>> {
        self.nodes.iter().filter_map(|node| match node {
            Node::Sink(sink) => Some(sink),
            _ => None,
        })
    }

    /// The graph's shape: [`Shape::General`] when some node merges inputs, else
    /// [`Shape::Linear`] when it is one line, else [`Shape::Tree`].
    pub fn shape(&self) -> Shape {
        if self.nodes.iter().any(|node| node.inputs().len() > 1) {
            Shape::General
        } else if self.sources().count() == 1 && self.consumers.iter().all(|c| c.len() <= 1) {
            Shape::Linear
        } else {
            Shape::Tree
        }
    }

    /// The graph as one line from its source to its sink, when its shape is [`Shape::Linear`].
    pub fn linear_chain(&self) -> Option<LinearChain<'_, S, K>> {
        if self.shape() != Shape::Linear {
            return None;
        }
        Some(LinearChain {
            source: self.sources().next()?,
            stages: self.stages().collect(),
            sink: self.sinks().next()?,
        })
    }

    /// The nodes by value, in topological order, to move the payloads into the running pipeline.
    pub fn into_nodes(self) -> Vec<Node<S, K>> {
        self.nodes
    }
}
