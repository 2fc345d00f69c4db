use super::*;

type Builder = PipelineBuilder<&'static str, &'static str>;

fn pipeline() -> Builder {
    Pipeline::builder()
}

fn refused(builder: Builder) -> GraphError {
    builder.build().expect_err("the graph should be refused")
}

fn built(builder: Builder) -> Graph<&'static str, &'static str> {
    builder.build().expect("the graph should build")
}

fn order<'g>(graph: &'g Graph<&'static str, &'static str>) -> Vec<&'g str> {
    graph.topological().iter().map(Node::name).collect()
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

fn cycle(path: &[&str]) -> GraphError {
    GraphError::Cycle {
        path: strings(path),
    }
}

// ---- each error ----

#[test]
fn an_empty_name_is_refused_with_its_kind_and_position() {
    assert_eq!(
        refused(pipeline().source("")),
        GraphError::EmptyName {
            kind: NodeKind::Source,
            position: 0
        }
    );
    assert_eq!(
        refused(
            pipeline()
                .source("in")
                .sink("out", ["in"], "k")
                .stage("", ["in"], "s")
        ),
        GraphError::EmptyName {
            kind: NodeKind::Stage,
            position: 2
        }
    );
}

#[test]
fn a_name_is_letters_digits_dash_or_underscore() {
    for bad in ["a b", "a.b", "a/b", "café", "a\n"] {
        assert_eq!(
            refused(pipeline().source("in").sink(bad, ["in"], "k")),
            GraphError::BadName {
                kind: NodeKind::Sink,
                name: bad.to_owned()
            },
            "{bad:?}"
        );
    }
    built(pipeline().source("In-1_x").sink("0_-Z", ["In-1_x"], "k"));
}

#[test]
fn a_name_used_twice_across_kinds_is_refused() {
    assert_eq!(
        refused(
            pipeline()
                .source("x")
                .stage("a", ["x"], "s")
                .sink("x", ["a"], "k")
        ),
        GraphError::DuplicateName {
            name: "x".into(),
            first: NodeKind::Source,
            second: NodeKind::Sink
        }
    );
    assert_eq!(
        refused(
            pipeline()
                .source("in")
                .stage("a", ["in"], "s")
                .stage("a", ["in"], "s")
                .sink("out", ["a"], "k")
        ),
        GraphError::DuplicateName {
            name: "a".into(),
            first: NodeKind::Stage,
            second: NodeKind::Stage
        }
    );
}

#[test]
fn a_graph_needs_a_source_and_a_sink() {
    assert_eq!(refused(pipeline()), GraphError::NoSource);
    assert_eq!(
        refused(pipeline().stage("a", ["b"], "s").sink("out", ["a"], "k")),
        GraphError::NoSource
    );
    assert_eq!(
        refused(pipeline().source("in").stage("a", ["in"], "s")),
        GraphError::NoSink
    );
}

#[test]
fn a_stage_or_sink_without_inputs_is_refused() {
    assert_eq!(
        refused(
            pipeline()
                .source("in")
                .stage("a", [], "s")
                .sink("out", ["in"], "k")
        ),
        GraphError::NoInputs {
            kind: NodeKind::Stage,
            node: "a".into()
        }
    );
    assert_eq!(
        refused(pipeline().source("in").sink("out", [], "k")),
        GraphError::NoInputs {
            kind: NodeKind::Sink,
            node: "out".into()
        }
    );
}

#[test]
fn an_input_naming_nothing_is_refused() {
    assert_eq!(
        refused(
            pipeline()
                .source("in")
                .stage("a", ["in", "nowhere"], "s")
                .sink("out", ["a"], "k")
        ),
        GraphError::DanglingInput {
            node: "a".into(),
            input: "nowhere".into()
        }
    );
}

#[test]
fn a_sink_feeds_nothing() {
    assert_eq!(
        refused(
            pipeline()
                .source("in")
                .sink("out", ["in"], "k")
                .sink("more", ["out"], "k")
        ),
        GraphError::InputIsSink {
            node: "more".into(),
            input: "out".into()
        }
    );
}

#[test]
fn an_input_listed_twice_is_refused() {
    assert_eq!(
        refused(pipeline().source("in").sink("out", ["in", "in"], "k")),
        GraphError::DuplicateInput {
            node: "out".into(),
            input: "in".into()
        }
    );
}

#[test]
fn a_fan_out_must_name_a_source_or_stage() {
    let two_sinks = || {
        pipeline()
            .source("in")
            .sink("a", ["in"], "k")
            .sink("b", ["in"], "k")
    };
    assert_eq!(
        refused(two_sinks().fan_out("nowhere", FanOut::Balance)),
        GraphError::FanOutOnUnknown {
            node: "nowhere".into()
        }
    );
    assert_eq!(
        refused(two_sinks().fan_out("a", FanOut::Balance)),
        GraphError::FanOutOnSink { node: "a".into() }
    );
}

#[test]
fn a_fan_out_is_declared_once() {
    assert_eq!(
        refused(
            pipeline()
                .source("in")
                .sink("a", ["in"], "k")
                .sink("b", ["in"], "k")
                .fan_out("in", FanOut::Balance)
                .fan_out("in", FanOut::Balance)
        ),
        GraphError::FanOutTwice { node: "in".into() }
    );
}

#[test]
fn a_fan_out_needs_two_consumers() {
    assert_eq!(
        refused(
            pipeline()
                .source("in")
                .sink("a", ["in"], "k")
                .fan_out("in", FanOut::Broadcast)
        ),
        GraphError::FanOutTooFewConsumers {
            node: "in".into(),
            consumers: 1
        }
    );
    // An unused source: the fan-out error comes first (step 4 before step 6).
    assert_eq!(
        refused(
            pipeline()
                .source("in")
                .source("unused")
                .sink("a", ["in"], "k")
                .fan_out("unused", FanOut::PartitionByKey)
        ),
        GraphError::FanOutTooFewConsumers {
            node: "unused".into(),
            consumers: 0
        }
    );
}

#[test]
fn a_cycle_of_three_is_named_in_flow_order() {
    assert_eq!(
        refused(
            pipeline()
                .source("in")
                .stage("a", ["in", "c"], "s")
                .stage("b", ["a"], "s")
                .stage("c", ["b"], "s")
                .sink("out", ["c"], "k")
        ),
        cycle(&["a", "b", "c"])
    );
}

#[test]
fn a_cycle_starts_at_its_node_declared_first() {
    // The walk meets `a` first, but `b` was declared first: b feeds a, a feeds b.
    let error = refused(
        pipeline()
            .source("in")
            .stage("x", ["in"], "s")
            .stage("b", ["a"], "s")
            .stage("a", ["x", "b"], "s")
            .sink("out", ["b"], "k"),
    );
    assert_eq!(error, cycle(&["b", "a"]));
    assert_eq!(error.to_string(), "the graph has a cycle: b -> a -> b");
}

#[test]
fn a_self_loop_is_a_cycle_of_one() {
    let error = refused(pipeline().source("in").stage("a", ["in", "a"], "s").sink(
        "out",
        ["a"],
        "k",
    ));
    assert_eq!(error, cycle(&["a"]));
    assert_eq!(error.to_string(), "the graph has a cycle: a -> a");
}

#[test]
fn a_cycle_that_no_source_feeds_is_found() {
    assert_eq!(
        refused(
            pipeline()
                .source("in")
                .sink("out", ["in"], "k")
                .stage("a", ["b"], "s")
                .stage("b", ["a"], "s")
        ),
        cycle(&["a", "b"])
    );
}

#[test]
fn a_branch_without_a_sink_names_its_dead_end() {
    assert_eq!(
        refused(
            pipeline()
                .source("in")
                .stage("kept", ["in"], "s")
                .stage("b", ["in"], "s")
                .stage("c", ["b"], "s")
                .sink("out", ["kept"], "k")
        ),
        GraphError::NoSinkDownstream { node: "c".into() }
    );
}

#[test]
fn an_unused_source_has_no_sink_downstream() {
    assert_eq!(
        refused(
            pipeline()
                .source("in")
                .source("unused")
                .sink("out", ["in"], "k")
        ),
        GraphError::NoSinkDownstream {
            node: "unused".into()
        }
    );
}

// ---- which error comes first ----

#[test]
fn the_first_error_follows_the_documented_steps() {
    // Names (1) before ends (2).
    assert_eq!(
        refused(pipeline().source("a b")),
        GraphError::BadName {
            kind: NodeKind::Source,
            name: "a b".into()
        }
    );
    // Ends (2) before inputs (3).
    assert_eq!(
        refused(pipeline().source("in").stage("a", ["nowhere"], "s")),
        GraphError::NoSink
    );
    // Inputs (3) before fan-outs (4).
    assert_eq!(
        refused(
            pipeline()
                .source("in")
                .sink("out", ["in", "nowhere"], "k")
                .fan_out("out", FanOut::Balance)
        ),
        GraphError::DanglingInput {
            node: "out".into(),
            input: "nowhere".into()
        }
    );
    // Fan-outs (4) before cycles (5).
    assert_eq!(
        refused(
            pipeline()
                .source("in")
                .stage("a", ["in", "a"], "s")
                .sink("out", ["a"], "k")
                .fan_out("in", FanOut::Balance)
        ),
        GraphError::FanOutTooFewConsumers {
            node: "in".into(),
            consumers: 1
        }
    );
    // Cycles (5) before dead ends (6).
    assert_eq!(
        refused(
            pipeline()
                .source("unused")
                .source("in")
                .stage("a", ["in", "a"], "s")
                .sink("out", ["a"], "k")
        ),
        cycle(&["a"])
    );
}

#[test]
fn within_a_step_the_first_declared_node_and_listed_input_win() {
    assert_eq!(
        refused(
            pipeline()
                .source("in")
                .stage("a", ["in", "x", "y"], "s")
                .stage("b", ["z"], "s")
                .sink("out", ["a", "b"], "k")
        ),
        GraphError::DanglingInput {
            node: "a".into(),
            input: "x".into()
        }
    );
    assert_eq!(
        refused(
            pipeline()
                .source("in")
                .source("in")
                .sink("out", ["in"], "k")
                .sink("out", ["in"], "k")
        ),
        GraphError::DuplicateName {
            name: "in".into(),
            first: NodeKind::Source,
            second: NodeKind::Source
        }
    );
}

#[test]
fn every_error_message_names_its_nodes() {
    let messages = [
        (
            GraphError::EmptyName {
                kind: NodeKind::Stage,
                position: 2,
            },
            "the stage declared at position 2 has an empty name",
        ),
        (
            GraphError::BadName {
                kind: NodeKind::Sink,
                name: "a b".into(),
            },
            "the sink `a b` has a bad name: a name is letters, digits, '-' or '_'",
        ),
        (
            GraphError::DuplicateName {
                name: "x".into(),
                first: NodeKind::Source,
                second: NodeKind::Stage,
            },
            "`x` names both a source and a stage: names must be unique",
        ),
        (GraphError::NoSource, "the pipeline has no source"),
        (GraphError::NoSink, "the pipeline has no sink"),
        (
            GraphError::NoInputs {
                kind: NodeKind::Stage,
                node: "a".into(),
            },
            "the stage `a` has no inputs",
        ),
        (
            GraphError::DanglingInput {
                node: "a".into(),
                input: "b".into(),
            },
            "`a` reads from `b`, which names no source or stage",
        ),
        (
            GraphError::InputIsSink {
                node: "a".into(),
                input: "b".into(),
            },
            "`a` reads from `b`, which is a sink: a sink feeds nothing",
        ),
        (
            GraphError::DuplicateInput {
                node: "a".into(),
                input: "b".into(),
            },
            "`a` lists `b` twice as an input",
        ),
        (
            GraphError::FanOutOnUnknown { node: "a".into() },
            "fan-out declared on `a`, which names no source or stage",
        ),
        (
            GraphError::FanOutOnSink { node: "a".into() },
            "fan-out declared on the sink `a`: a sink feeds nothing",
        ),
        (
            GraphError::FanOutTwice { node: "a".into() },
            "fan-out declared twice on `a`",
        ),
        (
            GraphError::FanOutTooFewConsumers {
                node: "a".into(),
                consumers: 1,
            },
            "fan-out declared on `a`, which has 1 consumer(s): fan-out needs two or more",
        ),
        (
            cycle(&["a", "b", "c"]),
            "the graph has a cycle: a -> b -> c -> a",
        ),
        (
            GraphError::NoSinkDownstream { node: "a".into() },
            "nothing reads `a`: every branch must end in a sink",
        ),
    ];
    for (error, message) in messages {
        assert_eq!(error.to_string(), message);
    }
}

// ---- shapes ----

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

// ---- random graphs ----

/// A random graph, described apart from the builder so the tests can check the result.
struct Random {
    names: Vec<String>,
    kinds: Vec<NodeKind>,
    /// By node: indices of its inputs.
    inputs: Vec<Vec<usize>>,
    /// Node indices in the order they are declared to the builder.
    declared: Vec<usize>,
    fan_outs: Vec<(usize, FanOut)>,
}

impl Random {
    /// A DAG: sources, then stages reading from earlier nodes, then a sink on every dead end
    /// and maybe one merging sink; declared in a shuffled order, some fan-outs declared.
    fn dag(rng: &mut fastrand::Rng) -> Self {
        let sources = rng.usize(1..=3);
        let stages = rng.usize(0..=12);
        let mut graph = Random {
            names: Vec::new(),
            kinds: Vec::new(),
            inputs: Vec::new(),
            declared: Vec::new(),
            fan_outs: Vec::new(),
        };
        for at in 0..sources + stages {
            let (kind, inputs) = if at < sources {
                (NodeKind::Source, Vec::new())
            } else {
                let mut earlier: Vec<usize> = (0..at).collect();
                rng.shuffle(&mut earlier);
                earlier.truncate(rng.usize(1..=3.min(at)));
                (NodeKind::Stage, earlier)
            };
            graph.push(format!("n{at}"), kind, inputs);
        }
        let feeding = graph.names.len();
        for at in 0..feeding {
            if graph.consumer_count(at) == 0 {
                graph.push(format!("k{at}"), NodeKind::Sink, vec![at]);
            }
        }
        if feeding >= 2 && rng.bool() {
            let mut two: Vec<usize> = (0..feeding).collect();
            rng.shuffle(&mut two);
            two.truncate(2);
            graph.push("merge".into(), NodeKind::Sink, two);
        }
        for at in 0..feeding {
            if graph.consumer_count(at) >= 2 && rng.bool() {
                let fan_out =
                    [FanOut::Broadcast, FanOut::Balance, FanOut::PartitionByKey][rng.usize(0..3)];
                graph.fan_outs.push((at, fan_out));
            }
        }
        graph.declared = (0..graph.names.len()).collect();
        rng.shuffle(&mut graph.declared);
        graph
    }

    fn push(&mut self, name: String, kind: NodeKind, inputs: Vec<usize>) {
        self.names.push(name);
        self.kinds.push(kind);
        self.inputs.push(inputs);
    }

    fn consumer_count(&self, at: usize) -> usize {
        self.inputs.iter().filter(|of| of.contains(&at)).count()
    }

    fn at(&self, name: &str) -> usize {
        self.names
            .iter()
            .position(|known| known == name)
            .expect("a name of the random graph")
    }

    fn builder(&self) -> Builder {
        let mut builder = pipeline();
        for &at in &self.declared {
            let name = self.names[at].clone();
            let inputs: Vec<&str> = self.inputs[at]
                .iter()
                .map(|&from| self.names[from].as_str())
                .collect();
            builder = match self.kinds[at] {
                NodeKind::Source => builder.source(name),
                NodeKind::Stage => builder.stage(name, inputs, "s"),
                NodeKind::Sink => builder.sink(name, inputs, "k"),
            };
        }
        for &(at, fan_out) in &self.fan_outs {
            builder = builder.fan_out(self.names[at].clone(), fan_out);
        }
        builder
    }
}

#[test]
fn random_dags_sort_every_input_first_taking_the_first_declared_ready_node() {
    for seed in 0..400 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let random = Random::dag(&mut rng);
        let graph = random
            .builder()
            .build()
            .unwrap_or_else(|error| panic!("seed {seed}: {error}"));
        let sorted: Vec<usize> = order(&graph).iter().map(|name| random.at(name)).collect();
        let mut all = sorted.clone();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..random.names.len()).collect::<Vec<_>>(),
            "seed {seed}"
        );
        // Replay the rule: each node placed is, among the unplaced nodes whose inputs are all
        // placed, the one declared first.
        let mut placed = vec![false; random.names.len()];
        for &at in &sorted {
            let first_ready = random
                .declared
                .iter()
                .copied()
                .find(|&can| !placed[can] && random.inputs[can].iter().all(|&i| placed[i]));
            assert_eq!(first_ready, Some(at), "seed {seed}");
            placed[at] = true;
        }
        for (at, name) in random.names.iter().enumerate() {
            let consumers: Vec<usize> = graph
                .consumers(name)
                .expect("every node is in the graph")
                .iter()
                .map(|consumer| random.at(consumer))
                .collect();
            let expected: Vec<usize> = random
                .declared
                .iter()
                .copied()
                .filter(|&consumer| random.inputs[consumer].contains(&at))
                .collect();
            assert_eq!(consumers, expected, "seed {seed}: consumers of {name}");
            let declared = random
                .fan_outs
                .iter()
                .find(|&&(on, _)| on == at)
                .map(|&(_, fan_out)| fan_out);
            let fan_out = match expected.len() {
                0 | 1 => None,
                _ => Some(declared.unwrap_or_default()),
            };
            assert_eq!(
                graph.fan_out(name),
                fan_out,
                "seed {seed}: fan-out of {name}"
            );
        }
    }
}

#[test]
fn random_cycles_are_named_as_real_cycles_from_their_first_declared_node() {
    let mut checked = 0;
    for seed in 0..400 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut random = Random::dag(&mut rng);
        let stages: Vec<usize> = (0..random.names.len())
            .filter(|&at| random.kinds[at] == NodeKind::Stage)
            .collect();
        if stages.is_empty() {
            continue;
        }
        // Walk down from a stage through stages, then feed the last one back into the first.
        let first = stages[rng.usize(0..stages.len())];
        let mut last = first;
        for _ in 0..rng.usize(0..4) {
            let next: Vec<usize> = stages
                .iter()
                .copied()
                .filter(|&stage| random.inputs[stage].contains(&last))
                .collect();
            if next.is_empty() {
                break;
            }
            last = next[rng.usize(0..next.len())];
        }
        random.inputs[first].push(last);
        random.fan_outs.clear();
        let Err(GraphError::Cycle { path }) = random.builder().build() else {
            panic!("seed {seed}: a cycle should be refused");
        };
        let path: Vec<usize> = path.iter().map(|name| random.at(name)).collect();
        for (k, &to) in path.iter().enumerate() {
            let from = path[(k + path.len() - 1) % path.len()];
            assert!(random.inputs[to].contains(&from), "seed {seed}: {path:?}");
            assert_eq!(
                path.iter().filter(|&&on| on == to).count(),
                1,
                "seed {seed}"
            );
        }
        let position = |at: usize| random.declared.iter().position(|&on| on == at);
        let earliest = path.iter().copied().min_by_key(|&at| position(at));
        assert_eq!(earliest, path.first().copied(), "seed {seed}: {path:?}");
        checked += 1;
    }
    assert!(checked > 300, "only {checked} graphs had a stage");
}
