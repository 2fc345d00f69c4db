//! The embedding example (`examples/actix_web_app.rs`) from outside: its own routes (added
//! after streamvisor's) and streamvisor's answer from one `App` on one port; a kill through the admin route is
//! recovered without loss; an escalation stops the pipeline but never the host process; Ctrl-C
//! drains and exits 0.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::program::{test_dir, Passthrough, Program, SinkFile};
use crate::support::wait::wait_until_or;

const RECORDS: usize = 4_000;

/// The example's binary, built by `cargo test` beside the test binary.
fn example() -> Command {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let examples = test_binary
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .join("examples");
    let binary = examples.join("actix_web_app");
    assert!(
        binary.exists(),
        "{} is missing: `cargo test` builds the examples (run the tests with cargo test)",
        binary.display()
    );
    Command::new(binary)
}

fn pipeline(dir: &Path, name: &str, tables: &str) -> PathBuf {
    Passthrough {
        name,
        group: name,
        topic: "events",
        tables,
        kafka: "",
        kafka_properties: "",
        source: &format!(
            "partitions = 4\ngenerator = {{ records = {RECORDS}, rate_per_second = 2000 }}"
        ),
        sink: "",
        sink_target: None,
    }
    .write(dir)
}

fn json(program: &Program, path: &str) -> (u16, Value) {
    let answer = program
        .get(path)
        .unwrap_or_else(|| panic!("GET {path}: no answer; log:\n{}", program.log_tail()));
    let body = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    (answer.status, body)
}

/// Kills the sink of `pipeline` through the app's admin route (loopback, no token).
fn kill_sink(app: &Program, pipeline: &str) {
    let body = format!(r#"{{"path": "/pipelines/{pipeline}/sinks/out", "mode": "panic"}}"#);
    let kill = app.post("/api/actors/kill", &body).expect("POST kill");
    assert_eq!(kill.status, 202, "{}", kill.body);
}

#[test]
fn the_example_serves_its_routes_and_streamvisors_and_a_kill_loses_nothing() {
    let dir = test_dir("embedding");
    let file = pipeline(&dir, "embedded_app", "[flow]\nbatch_size = 100");
    let mut app = Program::spawn(example(), &dir, &file, "app");
    app.wait_ready(Duration::from_secs(60));

    // The host's own routes.
    let (status, hello) = json(&app, "/");
    assert_eq!(status, 200);
    assert_eq!(hello["app"], "actix_web_app");
    wait_until_or(
        "the app's /status to show 4 partitions assigned",
        Duration::from_secs(30),
        || json(&app, "/status").1["partitions"] == 4,
        || format!("{}", json(&app, "/status").1),
    );
    let (status, view) = json(&app, "/status");
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["ready"], true, "{view}");
    // streamvisor's routes, same App, same port.
    let (status, actors) = json(&app, "/api/actors");
    assert_eq!(status, 200);
    let actors = actors.as_array().expect("a JSON array").clone();
    assert!(actors
        .iter()
        .any(|actor| actor["path"] == "/pipelines/embedded_app/sinks/out"));
    assert_eq!(view["actors"].as_u64(), Some(actors.len() as u64));
    let metrics = app.get("/metrics").expect("GET /metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("streamvisor_records_in_total{"));

    kill_sink(&app, "embedded_app");
    let out = dir.join("out/embedded_app.jsonl");
    wait_until_or(
        "every generated record in the sink's file",
        Duration::from_secs(60),
        || SinkFile::read(&out).records.len() == RECORDS,
        || {
            format!(
                "{} distinct; log:\n{}",
                SinkFile::read(&out).records.len(),
                app.log_tail()
            )
        },
    );
    // The kill may land after the last record was written: the restart is awaited, not
    // assumed to have been counted already.
    wait_until_or(
        "the killed sink's restart counted",
        Duration::from_secs(30),
        || app.metric_sum("streamvisor_actor_restarts_total") >= 1.0,
        || app.log_tail(),
    );
    assert_eq!(app.metric_sum("streamvisor_actor_restarts_total"), 1.0);

    app.signal("INT");
    let status = app.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "log:\n{}", app.log_tail());
    assert!(app.log().contains("the pipeline drained and committed"));
    let sink = SinkFile::read(&out);
    assert_eq!(sink.records.len(), RECORDS);
    assert_eq!(
        sink.records
            .values()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        (0..RECORDS as i64).collect()
    );
}

#[test]
fn an_escalation_stops_the_pipeline_but_the_host_goes_on_serving() {
    let dir = test_dir("embedding-escalation");
    // No restarts allowed: one kill escalates to the root, which gives up.
    let file = pipeline(
        &dir,
        "escalating_app",
        "[supervision]\nmax_restarts = 0\nwithin = \"60s\"",
    );
    let mut app = Program::spawn(example(), &dir, &file, "app");
    app.wait_ready(Duration::from_secs(60));
    kill_sink(&app, "escalating_app");
    wait_until_or(
        "the pipeline to stop after the escalation",
        Duration::from_secs(30),
        || app.log().contains("the pipeline stopped"),
        || app.log_tail(),
    );
    app.assert_alive();
    let (status, hello) = json(&app, "/");
    assert_eq!(
        (status, hello["app"].as_str()),
        (200, Some("actix_web_app"))
    );
    let (status, ready) = json(&app, "/health/ready");
    assert_eq!(status, 503, "{ready}");
    assert!(app.metric_sum("streamvisor_supervisor_escalations_total") >= 1.0);
    // An orchestrator's SIGTERM still ends the host (actix-web stops its server).
    app.signal("TERM");
    let status = app.wait_exit(Duration::from_secs(30));
    assert!(
        status.code().is_some(),
        "ended its own way after SIGTERM, not killed by it"
    );
}
