//! [`GraphError`]: why a pipeline graph cannot be built.

use thiserror::Error;

use streamvisor_actors::NodePart;

use super::NodeKind;

/// Why [`PipelineBuilder::build`](super::PipelineBuilder::build) refused a graph.
///
/// Only the first error is reported, in this order (each step scans in declaration order, the
/// order of the builder's calls, so the same graph always gives the same message):
///
/// 1. names, node by node: [`EmptyName`](Self::EmptyName), [`BadName`](Self::BadName),
///    [`DuplicateName`](Self::DuplicateName);
/// 2. ends: [`NoSource`](Self::NoSource), then [`NoSink`](Self::NoSink);
/// 3. inputs, node by node and each node's inputs in their listed order:
///    [`NoInputs`](Self::NoInputs), then per input [`DanglingInput`](Self::DanglingInput),
///    [`InputIsSink`](Self::InputIsSink), [`DuplicateInput`](Self::DuplicateInput);
/// 4. fan-out declarations in call order: [`FanOutOnUnknown`](Self::FanOutOnUnknown),
///    [`FanOutOnSink`](Self::FanOutOnSink), [`FanOutTwice`](Self::FanOutTwice),
///    [`FanOutTooFewConsumers`](Self::FanOutTooFewConsumers);
/// 5. [`Cycle`](Self::Cycle);
/// 6. [`NoSinkDownstream`](Self::NoSinkDownstream).
///
/// Every graph error is the user's to fix: retrying or restarting cannot cure it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GraphError {
    /// A node was given the empty name.
    #[error("the {kind} declared at position {position} has an empty name")]
    EmptyName {
        /// What the node is.
        kind: NodeKind,
        /// Its place among all the nodes declared, counted from 0.
        position: usize,
    },
    /// A name holds something other than ASCII letters, digits, '-' or '_' (names become actor
    /// paths and metric labels).
    #[error("the {kind} `{name}` has a bad name: a name is letters, digits, '-' or '_'")]
    BadName {
        /// What the node is.
        kind: NodeKind,
        /// The name.
        name: String,
    },
    /// Two nodes share a name (sources, stages and sinks share one namespace).
    #[error("`{name}` names both a {first} and a {second}: names must be unique")]
    DuplicateName {
        /// The name.
        name: String,
        /// The node declared first.
        first: NodeKind,
        /// The node declared second.
        second: NodeKind,
    },
    /// The graph has no source.
    #[error("the pipeline has no source")]
    NoSource,
    /// The graph has no sink.
    #[error("the pipeline has no sink")]
    NoSink,
    /// A stage or sink has an empty list of inputs.
    #[error("the {kind} `{node}` has no inputs")]
    NoInputs {
        /// What the node is.
        kind: NodeKind,
        /// The node.
        node: String,
    },
    /// An input names no source or stage.
    #[error("`{node}` reads from `{input}`, which names no source or stage")]
    DanglingInput {
        /// The node that lists the input.
        node: String,
        /// The name that matches nothing.
        input: String,
    },
    /// An input names a sink: a sink feeds nothing.
    #[error("`{node}` reads from `{input}`, which is a sink: a sink feeds nothing")]
    InputIsSink {
        /// The node that lists the input.
        node: String,
        /// The sink.
        input: String,
    },
    /// A node lists the same input twice.
    #[error("`{node}` lists `{input}` twice as an input")]
    DuplicateInput {
        /// The node that lists the input.
        node: String,
        /// The input listed twice.
        input: String,
    },
    /// A fan-out was declared on a name that matches no node.
    #[error("fan-out declared on `{node}`, which names no source or stage")]
    FanOutOnUnknown {
        /// The name.
        node: String,
    },
    /// A fan-out was declared on a sink, which has no consumers.
    #[error("fan-out declared on the sink `{node}`: a sink feeds nothing")]
    FanOutOnSink {
        /// The sink.
        node: String,
    },
    /// A fan-out was declared twice on the same node.
    #[error("fan-out declared twice on `{node}`")]
    FanOutTwice {
        /// The node.
        node: String,
    },
    /// A fan-out was declared on a node that does not fan out: it has fewer than two consumers.
    #[error("fan-out declared on `{node}`, which has {consumers} consumer(s): fan-out needs two or more")]
    FanOutTooFewConsumers {
        /// The node.
        node: String,
        /// How many nodes read from it.
        consumers: usize,
    },
    /// The graph has a cycle. The path lists its nodes in flow order (each feeds the next, the
    /// last feeds the first), starting at the one declared first; a self-loop has one node.
    #[error("the graph has a cycle: {}", cycle_text(path))]
    Cycle {
        /// The nodes of the cycle, in flow order.
        path: Vec<String>,
    },
    /// No sink is reachable from a source or stage: a branch that ends without a sink. The node
    /// named is the dead end itself, a source or stage that nothing reads (an unused source is
    /// one too); every node without a sink downstream leads to such a dead end.
    #[error("nothing reads `{node}`: every branch must end in a sink")]
    NoSinkDownstream {
        /// The dead end.
        node: String,
    },
}

/// `a -> b -> c -> a`: the cycle closed on its first node.
fn cycle_text(path: &[String]) -> String {
    let mut text = path.join(" -> ");
    if let Some(first) = path.first() {
        text.push_str(" -> ");
        text.push_str(first);
    }
    text
}

impl GraphError {
    /// The node at fault and the part of it to change; none for a graph without a source or
    /// a sink. A cycle names its first node's inputs.
    pub fn node(&self) -> Option<(&str, NodePart)> {
        match self {
            Self::EmptyName { .. } | Self::NoSource | Self::NoSink => None,
            Self::BadName { name, .. } | Self::DuplicateName { name, .. } => {
                Some((name, NodePart::Whole))
            }
            Self::NoSinkDownstream { node } => Some((node, NodePart::Whole)),
            Self::NoInputs { node, .. }
            | Self::DanglingInput { node, .. }
            | Self::InputIsSink { node, .. }
            | Self::DuplicateInput { node, .. } => Some((node, NodePart::Inputs)),
            Self::Cycle { path } => path.first().map(|node| (node.as_str(), NodePart::Inputs)),
            Self::FanOutOnUnknown { node }
            | Self::FanOutOnSink { node }
            | Self::FanOutTwice { node }
            | Self::FanOutTooFewConsumers { node, .. } => Some((node, NodePart::FanOut)),
        }
    }
}
