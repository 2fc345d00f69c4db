//! [`TopologyError`]: a graph the actors cannot run, naming the node and the [`NodePart`] at
//! fault, so that a pipeline file can point at the field and its line.

use thiserror::Error;

use crate::operators::error::OperatorError;

/// The part of a node an error is about: what a pipeline file would have to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodePart {
    /// The node as a whole (its name, or that it exists at all).
    Whole,
    /// The nodes it reads from.
    Inputs,
    /// What a stage does (its operator, or one of its settings).
    Operation,
    /// How a source or stage shares its output among its consumers.
    FanOut,
    /// Where a sink writes (its kind, or its delivery).
    Target,
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
        error: OperatorError,
    },
    /// A shape the actors do not run (yet).
    #[error("`{node}`: {why}")]
    Unsupported {
        /// The node at fault.
        node: String,
        /// The part of it that would have to change.
        part: NodePart,
        /// Why.
        why: String,
    },
}

impl TopologyError {
    /// The node at fault.
    pub fn node(&self) -> &str {
        match self {
            Self::UnknownConsumer { node, .. }
            | Self::UnevenBranches { node, .. }
            | Self::DeadEnd(node)
            | Self::InvalidSetting { node, .. }
            | Self::Unsupported { node, .. } => node,
        }
    }

    /// The part of the node at fault.
    pub fn part(&self) -> NodePart {
        match self {
            Self::UnknownConsumer { .. } | Self::DeadEnd(_) => NodePart::Whole,
            Self::UnevenBranches { .. } => NodePart::FanOut,
            Self::InvalidSetting { .. } => NodePart::Operation,
            Self::Unsupported { part, .. } => *part,
        }
    }

    /// What is wrong, for a reader already told which node (an operator setting or an
    /// unsupported shape without the node's name in front; the others whole).
    pub fn reason(&self) -> String {
        match self {
            Self::InvalidSetting { error, .. } => error.to_string(),
            Self::Unsupported { why, .. } => why.clone(),
            other => other.to_string(),
        }
    }
}
