//! The vocabulary of a graph's shape: [`FanOut`] on a node, [`Shape`] of the whole, and the
//! [`LinearChain`] that the runtime runs today.

use super::{Sink, Source, Stage};

pub use streamvisor_actors::FanOut;

/// The shape of a whole graph, from the simplest to run to the most general.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// One line: one source, zero or more stages, one sink; no fan-out, no merge.
    /// [`Graph::linear_chain`](super::Graph::linear_chain) gives it.
    Linear,
    /// No merge (every stage and sink has exactly one input) but not one line: some node fans
    /// out, or there are several sources. Each source roots a tree of its own.
    Tree,
    /// Some stage or sink merges two or more inputs (a diamond, a join of sources).
    General,
}

/// A [`Shape::Linear`] graph, end to end in flow order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinearChain<'g, S, K> {
    /// The only source.
    pub source: &'g Source,
    /// The stages, the source's consumer first; possibly none.
    pub stages: Vec<&'g Stage<S>>,
    /// The only sink.
    pub sink: &'g Sink<K>,
}
