//! Each graph error, which comes first, and the messages.

use super::*;

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
