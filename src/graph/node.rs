//! The nodes of a graph: [`Source`], [`Stage`], [`Sink`], and [`Node`] over the three.

use std::fmt;

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// Brings records in; it has no inputs.
    Source,
    /// Transforms the records of its inputs and feeds its consumers.
    Stage,
    /// Persists the records of its inputs; it feeds nothing.
    Sink,
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeKind::Source => "source",
            NodeKind::Stage => "stage",
            NodeKind::Sink => "sink",
        })
    }
}

/// A source: where records enter the graph. The graph knows only its name; what it reads
/// (a Kafka topic, a push source) is the runtime's business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    name: String,
}

impl Source {
    pub(super) fn new(name: String) -> Self {
        Self { name }
    }

    /// The source's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A stage: reads its inputs (merged when there are several) and feeds its consumers. `S` is
/// the operation, whatever the runtime plugs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage<S> {
    name: String,
    inputs: Vec<String>,
    payload: S,
}

impl<S> Stage<S> {
    pub(super) fn new(name: String, inputs: Vec<String>, payload: S) -> Self {
        Self {
            name,
            inputs,
            payload,
        }
    }

    /// The stage's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The names of the nodes it reads from, as listed to the builder.
    pub fn inputs(&self) -> &[String] {
        &self.inputs
    }

    /// Its operation.
    pub fn payload(&self) -> &S {
        &self.payload
    }

    /// Its operation, by value.
    pub fn into_payload(self) -> S {
        self.payload
    }
}

/// A sink: persists the records of its inputs (merged when there are several). `K` is the sink
/// itself, whatever the runtime plugs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sink<K> {
    name: String,
    inputs: Vec<String>,
    payload: K,
}

impl<K> Sink<K> {
    pub(super) fn new(name: String, inputs: Vec<String>, payload: K) -> Self {
        Self {
            name,
            inputs,
            payload,
        }
    }

    /// The sink's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The names of the nodes it reads from, as listed to the builder.
    pub fn inputs(&self) -> &[String] {
        &self.inputs
    }

    /// What it writes to.
    pub fn payload(&self) -> &K {
        &self.payload
    }

    /// What it writes to, by value.
    pub fn into_payload(self) -> K {
        self.payload
    }
}

/// One node of a graph: a source, a stage with an `S`, or a sink with a `K`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node<S, K> {
    /// A source.
    Source(Source),
    /// A stage.
    Stage(Stage<S>),
    /// A sink.
    Sink(Sink<K>),
}

impl<S, K> Node<S, K> {
    /// The node's name, unique in its graph.
    pub fn name(&self) -> &str {
        match self {
            Node::Source(source) => source.name(),
            Node::Stage(stage) => stage.name(),
            Node::Sink(sink) => sink.name(),
        }
    }

    /// What the node is.
    pub fn kind(&self) -> NodeKind {
        match self {
            Node::Source(_) => NodeKind::Source,
            Node::Stage(_) => NodeKind::Stage,
            Node::Sink(_) => NodeKind::Sink,
        }
    }

    /// The names of the nodes it reads from, as listed to the builder (none for a source).
    pub fn inputs(&self) -> &[String] {
        match self {
            Node::Source(_) => &[],
            Node::Stage(stage) => stage.inputs(),
            Node::Sink(sink) => sink.inputs(),
        }
    }
}
