//! Shapes: lines, fan-outs, merges, topological order.

use super::*;

#[test]
fn a_linear_graph_is_one_chain() {
    let graph = built(
        pipeline()
            .sink("out", ["b"], "file")
            .stage("b", ["a"], "map")
            .source("in")
            .stage("a", ["in"], "filter"),
    );
    assert_eq!(order(&graph), ["in", "a", "b", "out"]);
    assert_eq!(graph.shape(), Shape::Linear);
    let chain = graph.linear_chain().expect("a linear graph has a chain");
    assert_eq!(chain.source.name(), "in");
    let stages: Vec<(&str, &str)> = chain
        .stages
        .iter()
        .map(|stage| (stage.name(), *stage.payload()))
        .collect();
    assert_eq!(stages, [("a", "filter"), ("b", "map")]);
    assert_eq!((chain.sink.name(), *chain.sink.payload()), ("out", "file"));
    for name in ["in", "a", "b", "out"] {
        assert_eq!(graph.fan_out(name), None, "{name}");
    }
    assert_eq!(graph.consumers("a"), Some(&strings(&["b"])[..]));
    assert_eq!(graph.consumers("out"), Some(&[][..]));
    assert_eq!(graph.inputs("in"), Some(&[][..]));
    assert_eq!(graph.inputs("b"), Some(&strings(&["a"])[..]));
    assert_eq!(graph.consumers("nowhere"), None);
    assert_eq!(graph.inputs("nowhere"), None);
    assert_eq!(graph.node("nowhere"), None);
    assert_eq!(graph.node("a").map(Node::kind), Some(NodeKind::Stage));
}

#[test]
fn a_source_straight_into_a_sink_is_linear() {
    let graph = built(pipeline().source("in").sink("out", ["in"], "k"));
    let chain = graph.linear_chain().expect("linear");
    assert_eq!((chain.source.name(), chain.sink.name()), ("in", "out"));
    assert!(chain.stages.is_empty());
}

#[test]
fn a_stage_feeding_two_sinks_broadcasts_by_default() {
    let graph = built(
        pipeline()
            .source("in")
            .stage("a", ["in"], "s")
            .sink("one", ["a"], "k")
            .sink("two", ["a"], "k"),
    );
    assert_eq!(graph.fan_out("a"), Some(FanOut::Broadcast));
    assert_eq!(graph.fan_out("in"), None);
    assert_eq!(graph.consumers("a"), Some(&strings(&["one", "two"])[..]));
    assert_eq!(graph.shape(), Shape::Tree);
    assert!(graph.linear_chain().is_none());
    assert_eq!(order(&graph), ["in", "a", "one", "two"]);
    let sinks: Vec<&str> = graph.sinks().map(Sink::name).collect();
    assert_eq!(sinks, ["one", "two"]);
}

#[test]
fn an_explicit_broadcast_is_the_same() {
    let graph = built(
        pipeline()
            .source("in")
            .sink("one", ["in"], "k")
            .sink("two", ["in"], "k")
            .fan_out("in", FanOut::Broadcast),
    );
    assert_eq!(graph.fan_out("in"), Some(FanOut::Broadcast));
}

#[test]
fn balance_is_kept_on_its_node() {
    let graph = built(
        pipeline()
            .source("in")
            .fan_out("a", FanOut::Balance)
            .stage("a", ["in"], "s")
            .sink("one", ["a"], "k")
            .sink("two", ["a"], "k")
            .sink("three", ["a"], "k"),
    );
    assert_eq!(graph.fan_out("a"), Some(FanOut::Balance));
    assert_eq!(
        graph.consumers("a"),
        Some(&strings(&["one", "two", "three"])[..])
    );
    assert_eq!(graph.shape(), Shape::Tree);
}

#[test]
fn partition_by_key_numbers_consumers_in_declaration_order() {
    let graph = built(
        pipeline()
            .source("in")
            .stage("shard-b", ["in"], "s")
            .stage("shard-a", ["in"], "s")
            .sink("out-a", ["shard-a"], "k")
            .sink("out-b", ["shard-b"], "k")
            .fan_out("in", FanOut::PartitionByKey),
    );
    assert_eq!(graph.fan_out("in"), Some(FanOut::PartitionByKey));
    assert_eq!(
        graph.consumers("in"),
        Some(&strings(&["shard-b", "shard-a"])[..])
    );
    assert_eq!(graph.fan_out("shard-a"), None);
    assert_eq!(graph.shape(), Shape::Tree);
}

#[test]
fn two_stages_merge_into_one_sink() {
    let graph = built(
        pipeline()
            .source("left")
            .source("right")
            .stage("a", ["left"], "s")
            .stage("b", ["right"], "s")
            .sink("out", ["b", "a"], "k"),
    );
    assert_eq!(graph.inputs("out"), Some(&strings(&["b", "a"])[..]));
    assert_eq!(graph.shape(), Shape::General);
    for name in ["left", "right", "a", "b", "out"] {
        assert_eq!(graph.fan_out(name), None, "{name}");
    }
    assert_eq!(order(&graph), ["left", "right", "a", "b", "out"]);
    let sources: Vec<&str> = graph.sources().map(Source::name).collect();
    assert_eq!(sources, ["left", "right"]);
}

#[test]
fn a_diamond_fans_out_then_merges() {
    let graph = built(
        pipeline()
            .source("in")
            .stage("a", ["in"], "s")
            .stage("b", ["in"], "s")
            .stage("join", ["a", "b"], "s")
            .sink("out", ["join"], "k"),
    );
    assert_eq!(order(&graph), ["in", "a", "b", "join", "out"]);
    assert_eq!(graph.fan_out("in"), Some(FanOut::Broadcast));
    assert_eq!(graph.consumers("in"), Some(&strings(&["a", "b"])[..]));
    assert_eq!(graph.inputs("join"), Some(&strings(&["a", "b"])[..]));
    assert_eq!(graph.fan_out("join"), None);
    assert_eq!(graph.shape(), Shape::General);
    assert!(graph.linear_chain().is_none());
}

#[test]
fn two_separate_lines_are_a_tree_shape() {
    let graph = built(
        pipeline()
            .source("a")
            .source("b")
            .sink("out-a", ["a"], "k")
            .sink("out-b", ["b"], "k"),
    );
    assert_eq!(graph.shape(), Shape::Tree);
    assert!(graph.linear_chain().is_none());
}

#[test]
fn topological_order_breaks_ties_by_declaration_order() {
    let graph = built(
        pipeline()
            .sink("out", ["c"], "k")
            .stage("c", ["a", "b"], "s")
            .stage("b", ["src2"], "s")
            .source("src2")
            .stage("a", ["src1"], "s")
            .source("src1"),
    );
    // src2 and src1 start ready; src2 was declared first, then b (declared before src1) as soon
    // as src2 is placed.
    assert_eq!(order(&graph), ["src2", "b", "src1", "a", "c", "out"]);
    let stages: Vec<&str> = graph.stages().map(Stage::name).collect();
    assert_eq!(stages, ["b", "a", "c"]);
}

#[test]
fn into_nodes_gives_the_payloads_in_topological_order() {
    let graph = built(
        pipeline()
            .sink("out", ["a"], "file")
            .stage("a", ["in"], "filter")
            .source("in"),
    );
    let nodes = graph.into_nodes();
    let payloads: Vec<String> = nodes
        .into_iter()
        .map(|node| match node {
            Node::Source(source) => source.name().to_owned(),
            Node::Stage(stage) => stage.into_payload().to_owned(),
            Node::Sink(sink) => sink.into_payload().to_owned(),
        })
        .collect();
    assert_eq!(payloads, ["in", "filter", "file"]);
}
