//! The checks of [`PipelineBuilder::build`](super::PipelineBuilder::build), in the order that
//! [`GraphError`] documents, and the topological sort.
//!
//! Nodes are handled by their declaration index until the graph is assembled.

use std::collections::{BTreeSet, HashMap};

use super::{FanOut, Graph, GraphError, Node, NodeKind};

/// Checks `nodes` (in declaration order) and `fan_outs` (in call order) and builds the graph.
pub(super) fn validate<S, K>(
    nodes: Vec<Node<S, K>>,
    fan_outs: &[(String, FanOut)],
) -> Result<Graph<S, K>, GraphError> {
    let index = names(&nodes)?;
    ends(&nodes)?;
    let (inputs, consumers) = edges(&nodes, &index)?;
    let shapes = fan_out_shapes(&nodes, &index, &consumers, fan_outs)?;
    if let Some(cycle) = find_cycle(&consumers) {
        return Err(GraphError::Cycle {
            path: cycle.iter().map(|&at| name(&nodes, at)).collect(),
        });
    }
    dead_ends(&nodes, &consumers)?;
    let order = topological(&inputs, &consumers);
    Ok(assemble(nodes, &order, &consumers, shapes))
}

/// Step 1: each name is well formed and unique. Gives the declaration index of each name.
fn names<S, K>(nodes: &[Node<S, K>]) -> Result<HashMap<&str, usize>, GraphError> {
    let mut index = HashMap::with_capacity(nodes.len());
    for (position, node) in nodes.iter().enumerate() {
        let name = node.name();
        if name.is_empty() {
            return Err(GraphError::EmptyName {
                kind: node.kind(),
                position,
            });
        }
        if !is_name(name) {
            return Err(GraphError::BadName {
                kind: node.kind(),
                name: name.to_owned(),
            });
        }
        if let Some(&first) = index.get(name) {
            return Err(GraphError::DuplicateName {
                name: name.to_owned(),
                first: kind(nodes, first),
                second: node.kind(),
            });
        }
        index.insert(name, position);
    }
    Ok(index)
}

/// Step 2: at least one source and one sink.
fn ends<S, K>(nodes: &[Node<S, K>]) -> Result<(), GraphError> {
    if !nodes.iter().any(|node| node.kind() == NodeKind::Source) {
        return Err(GraphError::NoSource);
    }
    if !nodes.iter().any(|node| node.kind() == NodeKind::Sink) {
        return Err(GraphError::NoSink);
    }
    Ok(())
}

/// By declaration index: the indices of a node's inputs (listed order) or of its consumers
/// (declaration order).
type Adjacency = Vec<Vec<usize>>;

/// Step 3: every stage and sink has inputs, each naming a source or stage, none twice.
/// Gives the inputs and consumers of each node.
fn edges<S, K>(
    nodes: &[Node<S, K>],
    index: &HashMap<&str, usize>,
) -> Result<(Adjacency, Adjacency), GraphError> {
    let mut inputs: Adjacency = vec![Vec::new(); nodes.len()];
    let mut consumers: Adjacency = vec![Vec::new(); nodes.len()];
    for (at, node) in nodes.iter().enumerate() {
        if node.kind() != NodeKind::Source && node.inputs().is_empty() {
            return Err(GraphError::NoInputs {
                kind: node.kind(),
                node: node.name().to_owned(),
            });
        }
        for input in node.inputs() {
            let names = || (node.name().to_owned(), input.clone());
            let Some(&from) = index.get(input.as_str()) else {
                let (node, input) = names();
                return Err(GraphError::DanglingInput { node, input });
            };
            if kind(nodes, from) == NodeKind::Sink {
                let (node, input) = names();
                return Err(GraphError::InputIsSink { node, input });
            }
            if inputs[at].contains(&from) {
                let (node, input) = names();
                return Err(GraphError::DuplicateInput { node, input });
            }
            inputs[at].push(from);
            consumers[from].push(at);
        }
    }
    Ok((inputs, consumers))
}

/// Step 4: each declared fan-out is on a source or stage with two or more consumers, once.
/// Gives each node's fan-out: the declared one, else broadcast for two or more consumers.
fn fan_out_shapes<S, K>(
    nodes: &[Node<S, K>],
    index: &HashMap<&str, usize>,
    consumers: &Adjacency,
    fan_outs: &[(String, FanOut)],
) -> Result<Vec<Option<FanOut>>, GraphError> {
    let mut shapes: Vec<Option<FanOut>> = vec![None; nodes.len()];
    for (name, fan_out) in fan_outs {
        let node = name.clone();
        let Some(&at) = index.get(name.as_str()) else {
            return Err(GraphError::FanOutOnUnknown { node });
        };
        if kind(nodes, at) == NodeKind::Sink {
            return Err(GraphError::FanOutOnSink { node });
        }
        if shapes[at].is_some() {
            return Err(GraphError::FanOutTwice { node });
        }
        if consumers[at].len() < 2 {
            return Err(GraphError::FanOutTooFewConsumers {
                node,
                consumers: consumers[at].len(),
            });
        }
        shapes[at] = Some(*fan_out);
    }
    for (shape, consumers) in shapes.iter_mut().zip(consumers) {
        if shape.is_none() && consumers.len() >= 2 {
            *shape = Some(FanOut::Broadcast);
        }
    }
    Ok(shapes)
}

/// Step 5: the first cycle met by a depth-first walk along consumers, starting from each node in
/// declaration order and visiting consumers in declaration order. Given in flow order, rotated
/// to start at its node declared first.
fn find_cycle(consumers: &Adjacency) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Unseen,
        OnPath,
        Done,
    }
    let mut marks = vec![Mark::Unseen; consumers.len()];
    for start in 0..consumers.len() {
        if marks[start] != Mark::Unseen {
            continue;
        }
        // The current path, each node with the index of its next consumer to visit.
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::OnPath;
        while let Some(top) = path.last_mut() {
            let at = top.0;
            let Some(&consumer) = consumers[at].get(top.1) else {
                marks[at] = Mark::Done;
                path.pop();
                continue;
            };
            top.1 += 1;
            match marks[consumer] {
                Mark::Unseen => {
                    marks[consumer] = Mark::OnPath;
                    path.push((consumer, 0));
                }
                Mark::OnPath => {
                    // Marked on the path, so it is there: `?` never returns.
                    let from = path.iter().position(|&(on, _)| on == consumer)?;
                    let mut cycle: Vec<usize> = path[from..].iter().map(|&(on, _)| on).collect();
                    let first = (0..cycle.len()).min_by_key(|&i| cycle[i]).unwrap_or(0);
                    cycle.rotate_left(first);
                    return Some(cycle);
                }
                Mark::Done => {}
            }
        }
    }
    None
}

/// Step 6: every source and stage has a consumer. In an acyclic graph this is the same as a
/// sink downstream of each: following consumers from any node ends at a node with none.
fn dead_ends<S, K>(nodes: &[Node<S, K>], consumers: &Adjacency) -> Result<(), GraphError> {
    match nodes
        .iter()
        .zip(consumers)
        .find(|(node, consumers)| node.kind() != NodeKind::Sink && consumers.is_empty())
    {
        Some((node, _)) => Err(GraphError::NoSinkDownstream {
            node: node.name().to_owned(),
        }),
        None => Ok(()),
    }
}

/// Kahn's algorithm, taking among the nodes whose inputs are all placed the one declared first.
/// Gives declaration indices in topological order (all of them, the graph being acyclic).
fn topological(inputs: &Adjacency, consumers: &Adjacency) -> Vec<usize> {
    let mut waiting: Vec<usize> = inputs.iter().map(Vec::len).collect();
    let mut ready: BTreeSet<usize> = (0..inputs.len()).filter(|&at| waiting[at] == 0).collect();
    let mut order = Vec::with_capacity(inputs.len());
    while let Some(at) = ready.pop_first() {
        order.push(at);
        for &consumer in &consumers[at] {
            waiting[consumer] -= 1;
            if waiting[consumer] == 0 {
                ready.insert(consumer);
            }
        }
    }
    order
}

/// Puts the nodes (declaration order) in `order` and indexes them.
fn assemble<S, K>(
    nodes: Vec<Node<S, K>>,
    order: &[usize],
    consumers: &Adjacency,
    shapes: Vec<Option<FanOut>>,
) -> Graph<S, K> {
    let mut rank = vec![0; nodes.len()];
    for (position, &at) in order.iter().enumerate() {
        rank[at] = position;
    }
    let consumer_names: Vec<Vec<String>> = consumers
        .iter()
        .map(|of| of.iter().map(|&at| name(&nodes, at)).collect())
        .collect();
    let mut ranked: Vec<_> = nodes
        .into_iter()
        .zip(consumer_names)
        .zip(shapes)
        .enumerate()
        .map(|(at, ((node, consumers), shape))| (rank[at], node, consumers, shape))
        .collect();
    ranked.sort_by_key(|&(rank, ..)| rank);
    let mut graph = Graph {
        nodes: Vec::with_capacity(ranked.len()),
        positions: HashMap::with_capacity(ranked.len()),
        consumers: Vec::with_capacity(ranked.len()),
        fan_outs: Vec::with_capacity(ranked.len()),
    };
    for (position, (_, node, consumers, shape)) in ranked.into_iter().enumerate() {
        graph.positions.insert(node.name().to_owned(), position);
        graph.nodes.push(node);
        graph.consumers.push(consumers);
        graph.fan_outs.push(shape);
    }
    graph
}

/// Letters, digits, '-' or '_' (as in the pipeline file).
fn is_name(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn kind<S, K>(nodes: &[Node<S, K>], at: usize) -> NodeKind {
    nodes[at].kind()
}

fn name<S, K>(nodes: &[Node<S, K>], at: usize) -> String {
    nodes[at].name().to_owned()
}
