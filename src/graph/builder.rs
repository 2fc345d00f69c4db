//! [`Pipeline::builder`] and the [`PipelineBuilder`]: declare nodes in any order, check them all
//! in [`PipelineBuilder::build`].

use super::{validate, FanOut, Graph, GraphError, Node, Sink, Source, Stage};

/// The entry point of the graph builder: `Pipeline::builder()`. It holds nothing; the graph it
/// builds is a [`Graph`].
#[derive(Debug)]
pub enum Pipeline {}

impl Pipeline {
    /// An empty builder for a graph whose stages carry `S` and whose sinks carry `K`.
    pub fn builder<S, K>() -> PipelineBuilder<S, K> {
        PipelineBuilder::default()
    }
}

/// Declares the nodes and fan-outs of a graph. Each call consumes the builder and returns it;
/// nothing is checked before [`build`](Self::build), so nodes may name inputs declared later.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build()"]
pub struct PipelineBuilder<S, K> {
    /// In declaration order.
    nodes: Vec<Node<S, K>>,
    /// In call order.
    fan_outs: Vec<(String, FanOut)>,
}

impl<S, K> Default for PipelineBuilder<S, K> {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            fan_outs: Vec::new(),
        }
    }
}

impl<S, K> PipelineBuilder<S, K> {
    /// Declares a source.
    pub fn source(mut self, name: impl Into<String>) -> Self {
        self.nodes.push(Node::Source(Source::new(name.into())));
        self
    }

    /// Declares a stage reading `inputs` (sources or stages; several are merged) and running
    /// `payload`.
    pub fn stage<'a>(
        mut self,
        name: impl Into<String>,
        inputs: impl IntoIterator<Item = &'a str>,
        payload: S,
    ) -> Self {
        self.nodes
            .push(Node::Stage(Stage::new(name.into(), owned(inputs), payload)));
        self
    }

    /// Declares a sink reading `inputs` (sources or stages; several are merged) and writing to
    /// `payload`.
    pub fn sink<'a>(
        mut self,
        name: impl Into<String>,
        inputs: impl IntoIterator<Item = &'a str>,
        payload: K,
    ) -> Self {
        self.nodes
            .push(Node::Sink(Sink::new(name.into(), owned(inputs), payload)));
        self
    }

    /// Sets how the source or stage `node` hands records to its consumers; it must have two or
    /// more. A node with several consumers and no declared fan-out broadcasts.
    pub fn fan_out(mut self, node: impl Into<String>, fan_out: FanOut) -> Self {
        self.fan_outs.push((node.into(), fan_out));
        self
    }

    /// Checks the graph and builds it, or reports its first error (see [`GraphError`] for the
    /// order).
    pub fn build(self) -> Result<Graph<S, K>, GraphError> {
        validate::validate(self.nodes, &self.fan_outs)
    }
}

fn owned<'a>(inputs: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    inputs.into_iter().map(str::to_owned).collect()
}
