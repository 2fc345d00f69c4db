//! The shipped example pipelines (`examples/*.toml`), run as the README runs them but each on an
//! Apache Kafka broker of its own (the example files name their topics and groups), with their
//! own input files (`examples/data`), each output checked exactly against what this test
//! computes from the input by itself: sensor aggregates per tumbling window, click sessions,
//! fraud alerts from sliding windows (in a file and a topic).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::kafka;
use crate::support::lines::json_lines;
use crate::support::program::{self, Program};
use crate::support::wait;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The input records of `examples/data/<file>`.
fn input(file: &str) -> Vec<Value> {
    std::fs::read_to_string(repo(&format!("examples/data/{file}")))
        .expect("example data")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

/// Runs `examples/<name>.toml` (its socket moved to `socket`, when it has one) against a private
/// broker, feeds it with `feed`, and returns the distinct output values once there are
/// `expected.len()` of them; checks they are exactly `expected`, and that `topic` (an output
/// topic of `partitions`, when there is one) holds them too.
fn run_example(
    name: &str,
    output: &str,
    socket: Option<(&str, &str)>,
    topic: Option<(&str, i32)>,
    feed: impl FnOnce(&Program),
    expected: BTreeSet<String>,
) {
    crate::show_warnings();
    let broker = kafka::private();
    let dir = program::test_dir(&format!("example-{name}"));
    let mut text =
        std::fs::read_to_string(repo(&format!("examples/{name}.toml"))).expect("the example");
    if let Some((from, to)) = socket {
        assert!(text.contains(from), "{name}.toml listens on {from}");
        text = text.replace(from, to);
    }
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).expect("pipeline file");
    let mut program = Program::start(&dir, &file, Some(&broker.brokers), name);
    program.wait_ready(Duration::from_secs(60));
    feed(&program);
    let out = dir.join(output);
    let written = || -> BTreeSet<String> {
        json_lines(&out)
            .iter()
            .map(|record| record["value"].to_string())
            .collect()
    };
    wait::wait_until_or(
        &format!("{} outputs of {name}", expected.len()),
        Duration::from_secs(120),
        || written().len() >= expected.len(),
        || format!("written so far: {:#?}\n{}", written(), program.log_tail()),
    );
    let written = written();
    println!("example {name}: {} outputs as expected", expected.len());
    assert_eq!(
        written, expected,
        "{name}: the output is exactly the one computed"
    );
    if let Some((topic, partitions)) = topic {
        let in_topic: BTreeSet<String> = program::read_topic(&broker.brokers, topic, partitions)
            .into_iter()
            .map(|(_, _, payload)| {
                serde_json::from_slice::<Value>(&payload)
                    .expect("JSON in the topic")
                    .to_string()
            })
            .collect();
        assert_eq!(
            in_topic, expected,
            "{name}: the topic {topic} holds the same outputs"
        );
    }
    program.signal("TERM");
    assert!(program.wait_exit(Duration::from_secs(60)).success());
}

fn send_over_socket(address: &str, file: &str) {
    let mut stream = std::net::TcpStream::connect(address).expect("the example's socket");
    let data = std::fs::read(repo(&format!("examples/data/{file}"))).expect("example data");
    stream.write_all(&data).expect("sent");
}

/// A window aggregate as the window stage writes it (sum to mean only with a value).
fn aggregate(key: &str, start: i64, end: i64, values: &[f64], with_value: bool) -> String {
    let mut fields = json!({
        "key": key, "start_ms": start, "end_ms": end, "count": values.len(), "update": false
    });
    if with_value {
        let sum: f64 = values.iter().sum();
        fields["sum"] = json!(sum);
        fields["min"] = json!(values.iter().copied().fold(f64::INFINITY, f64::min));
        fields["max"] = json!(values.iter().copied().fold(f64::NEG_INFINITY, f64::max));
        fields["mean"] = json!(sum / values.len() as f64);
    }
    fields.to_string()
}

#[test]
fn sensors_example_writes_tumbling_aggregates_per_sensor() {
    let mut windows: BTreeMap<(String, i64), Vec<f64>> = BTreeMap::new();
    for reading in input("sensors.ndjson") {
        let ts = reading["ts"].as_i64().expect("ts");
        windows
            .entry((
                reading["sensor"].as_str().expect("sensor").to_owned(),
                ts - ts % 10_000,
            ))
            .or_default()
            .push(reading["reading"].as_f64().expect("reading"));
    }
    let expected = windows
        .iter()
        .map(|((sensor, start), values)| aggregate(sensor, *start, start + 10_000, values, true))
        .collect();
    let socket = format!("127.0.0.1:{}", program::free_port());
    run_example(
        "sensors",
        "out/sensors.jsonl",
        Some(("127.0.0.1:7070", &socket)),
        None,
        |_| send_over_socket(&socket, "sensors.ndjson"),
        expected,
    );
}

#[test]
fn clickstream_example_writes_sessions_per_user() {
    const GAP: i64 = 30_000;
    let mut clicks: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for click in input("clicks.ndjson") {
        clicks
            .entry(click["user"].as_str().expect("user").to_owned())
            .or_default()
            .push(click["ts"].as_i64().expect("ts"));
    }
    let mut expected = BTreeSet::new();
    for (user, mut times) in clicks {
        times.sort_unstable();
        let mut session: Vec<i64> = Vec::new();
        for ts in times {
            // A click more than the gap after the last one starts a new session.
            if session.last().is_some_and(|last| ts - last > GAP) {
                let values = vec![0.0; session.len()];
                expected.insert(aggregate(
                    &user,
                    session[0],
                    session[session.len() - 1] + GAP,
                    &values,
                    false,
                ));
                session.clear();
            }
            session.push(ts);
        }
        let values = vec![0.0; session.len()];
        expected.insert(aggregate(
            &user,
            session[0],
            session[session.len() - 1] + GAP,
            &values,
            false,
        ));
    }
    assert_eq!(expected.len(), 8, "the data has 8 sessions");
    let socket = format!("127.0.0.1:{}", program::free_port());
    run_example(
        "clickstream",
        "out/sessions.jsonl",
        Some(("127.0.0.1:7071", &socket)),
        None,
        |_| send_over_socket(&socket, "clicks.ndjson"),
        expected,
    );
}

#[test]
fn fraud_example_raises_alerts_for_sliding_windows_over_the_limit() {
    const SIZE: i64 = 60_000;
    const SLIDE: i64 = 20_000;
    let mut windows: BTreeMap<(String, i64), Vec<f64>> = BTreeMap::new();
    for payment in input("payments.ndjson") {
        let ts = payment["ts"].as_i64().expect("ts");
        let card = payment["card"].as_str().expect("card").to_owned();
        // Every window [start, start + SIZE) holding ts, starts on the slide.
        let mut start = ts - ts.rem_euclid(SLIDE);
        while start > ts - SIZE {
            windows
                .entry((card.clone(), start))
                .or_default()
                .push(payment["amount"].as_f64().expect("amount"));
            start -= SLIDE;
        }
    }
    let expected: BTreeSet<String> = windows
        .iter()
        .filter(|(_, amounts)| amounts.iter().sum::<f64>() > 1000.0)
        .map(|((card, start), amounts)| aggregate(card, *start, start + SIZE, amounts, true))
        .collect();
    assert!(!expected.is_empty(), "the data raises alerts");
    run_example(
        "fraud",
        "out/alerts.jsonl",
        None,
        Some(("alerts", 8)),
        |program| {
            let body =
                std::fs::read_to_string(repo("examples/data/payments.ndjson")).expect("data");
            let answer = streamvisor::http::client::request(
                &program.http,
                "POST",
                "/api/ingest/payments",
                Some(&body),
            )
            .expect("ingest answered");
            assert_eq!(
                answer.status, 400,
                "the client sends JSON, not NDJSON: {}",
                answer.body
            );
            let records: Vec<Value> = input("payments.ndjson");
            let answer = streamvisor::http::client::request(
                &program.http,
                "POST",
                "/api/ingest/payments",
                Some(&serde_json::to_string(&records).expect("JSON")),
            )
            .expect("ingest answered");
            assert_eq!(answer.status, 202, "{}", answer.body);
            assert_eq!(answer.body, format!(r#"{{"accepted":{}}}"#, records.len()));
        },
        expected,
    );
}
