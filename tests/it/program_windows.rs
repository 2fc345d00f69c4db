//! A Kafka-fed sensors pipeline through the real program against Apache Kafka: readings -> tumbling
//! 10 s windows per sensor (count, sum, min, max, mean of `reading` over event time `ts`) ->
//! the file sink, with the window actor of every partition killed mid-window while readings
//! keep coming. With no late records, the aggregates written, deduplicated by (sensor, window),
//! equal those computed here from the input (what a run without kills writes); a replayed
//! window is written again with the same figures.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

use crate::support::kafka;
use crate::support::program::{self, Program};
use crate::support::wait;

const SENSORS: u64 = 20;
const ROUNDS: u64 = 4;
const PER_ROUND: u64 = 5_000;
/// Event time of reading i: 10 ms apart, from this start.
const START_MS: u64 = 1_700_000_000_000;
const WINDOW_MS: u64 = 10_000;

fn reading(i: u64) -> (String, String) {
    let sensor = format!("s{}", i % SENSORS);
    let value = format!(
        r#"{{"sensor":"{sensor}","ts":{},"reading":{}}}"#,
        START_MS + i * 10,
        (i * 7) % 101
    );
    (sensor, value)
}

fn producer(brokers: &str) -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        // In order and once: a retried first batch (a partition just created) must not land after
        // the next ones.
        .set("enable.idempotence", "true")
        .create()
        .expect("producer")
}

fn produce(brokers: &str, topic: &str, range: std::ops::Range<u64>) {
    let producer = producer(brokers);
    for i in range {
        let (key, value) = reading(i);
        producer
            .send(BaseRecord::to(topic).key(&key).payload(&value))
            .map_err(|(error, _)| error)
            .expect("queued");
    }
    producer.flush(Duration::from_secs(60)).expect("flushed");
}

/// A reading of sensor `flush` far ahead in event time into each partition: its watermark
/// passes every window of the input (the idle timeout is long, so that the pauses between
/// rounds never close a window early).
fn flush_windows(brokers: &str, topic: &str, partitions: i32) {
    let producer = producer(brokers);
    let value = format!(
        r#"{{"sensor":"flush","ts":{},"reading":0}}"#,
        START_MS + 1_000_000_000
    );
    for partition in 0..partitions {
        producer
            .send(
                BaseRecord::to(topic)
                    .key("flush")
                    .partition(partition)
                    .payload(&value),
            )
            .map_err(|(error, _)| error)
            .expect("queued");
    }
    producer.flush(Duration::from_secs(60)).expect("flushed");
}

/// (sensor, window start) -> (count, sum, min, max) of the input.
fn expected(records: u64) -> BTreeMap<(String, u64), (u64, f64, f64, f64)> {
    let mut windows: BTreeMap<(String, u64), (u64, f64, f64, f64)> = BTreeMap::new();
    for i in 0..records {
        let ts = START_MS + i * 10;
        let value = ((i * 7) % 101) as f64;
        let entry = windows
            .entry((format!("s{}", i % SENSORS), ts - ts % WINDOW_MS))
            .or_insert((0, 0.0, f64::INFINITY, f64::NEG_INFINITY));
        entry.0 += 1;
        entry.1 += value;
        entry.2 = entry.2.min(value);
        entry.3 = entry.3.max(value);
    }
    windows
}

/// The latest start of a window written to `path` (none before the first).
fn latest_window_start(path: &std::path::Path) -> Option<u64> {
    crate::support::lines::json_lines(path)
        .iter()
        .filter_map(|record| record["value"]["start_ms"].as_u64())
        .max()
}

#[test]
fn killed_window_actors_rebuild_their_windows_by_replay() {
    crate::show_warnings();
    let broker = kafka::broker();
    let dir = program::test_dir("windows");
    let topic = format!("readings-{}", fastrand::u32(..));
    actix_rt::System::new().block_on(kafka::create_topic(&broker.brokers, &topic, 4));
    let name = "windows";
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(
        &file,
        format!(
            r#"name = "{name}"
[kafka]
group = "{topic}"
[sources.readings]
kind = "kafka"
topic = "{topic}"
partitions = 4
[stages.win]
inputs = ["readings"]
op = "window"
window = "tumbling"
size = "10s"
key = "sensor"
time = "ts"
value = "reading"
idle_timeout = "60s"
[sinks.out]
inputs = ["win"]
kind = "file"
path = "out/{name}.jsonl"
"#
        ),
    )
    .expect("pipeline file");
    let mut program = Program::start(&dir, &file, Some(&broker.brokers), name);
    program.wait_ready(Duration::from_secs(60));
    let out = dir.join(format!("out/{name}.jsonl"));

    let mut kills = 0;
    for round in 0..ROUNDS {
        produce(
            &broker.brokers,
            &topic,
            round * PER_ROUND..(round + 1) * PER_ROUND,
        );
        // Windows closed by this round's readings are written before the kills (looked for by
        // their start: the pipeline may write them before the producer returns).
        let round_start = START_MS + round * PER_ROUND * 10;
        wait::wait_until_or(
            "aggregates of this round",
            Duration::from_secs(60),
            || latest_window_start(&out) >= Some(round_start),
            || program.log_tail(),
        );
        if round + 1 < ROUNDS {
            // Every partition's window actor dies holding an open window.
            for partition in 0..4 {
                let path = format!("/pipelines/{name}/stages/win/p{partition}");
                let body = format!(r#"{{"path": "{path}", "mode": "panic"}}"#);
                let answer = program
                    .post("/api/actors/kill", &body)
                    .expect("kill answered");
                assert_eq!(answer.status, 202, "kill {path}: {}", answer.body);
                kills += 1;
            }
        }
    }
    flush_windows(&broker.brokers, &topic, 4);
    let expected = expected(ROUNDS * PER_ROUND);
    let mut written: BTreeMap<(String, u64), serde_json::Value> = BTreeMap::new();
    let mut lines = 0;
    wait::wait_until_or(
        &format!("all {} windows written", expected.len()),
        Duration::from_secs(90),
        || {
            written.clear();
            lines = 0;
            for record in crate::support::lines::json_lines(&out) {
                let value = &record["value"];
                assert_eq!(
                    value["update"], false,
                    "no late records, no updates: {record}"
                );
                let key = (
                    value["key"].as_str().expect("key").to_owned(),
                    value["start_ms"].as_u64().expect("start"),
                );
                if key.0 == "flush" {
                    continue;
                }
                if let Some(before) = written.insert(key.clone(), value.clone()) {
                    assert_eq!(
                        &before, value,
                        "a replayed window {key:?} has other figures"
                    );
                }
                lines += 1;
            }
            written.len() >= expected.len()
        },
        || program.log_tail(),
    );
    let restarts = program.metric_sum("streamvisor_actor_restarts_total");
    let read = program.metric_sum("streamvisor_records_in_total") as u64;
    let produced = ROUNDS * PER_ROUND + 4;
    println!(
        "windows: expected={} written={} lines={lines} rewritten={} kills={kills} restarts={restarts} records_read={read} produced={produced}",
        expected.len(),
        written.len(),
        lines - written.len()
    );
    assert!(
        read > produced,
        "the killed actors held open windows: their records were read again ({read} read, {produced} produced)"
    );
    assert_eq!(
        restarts, kills as f64,
        "every kill restarted its actor once"
    );
    let written: BTreeMap<(String, u64), (u64, f64, f64, f64)> = written
        .into_iter()
        .map(|(key, value)| {
            let mean = value["mean"].as_f64().expect("mean");
            let figures = (
                value["count"].as_u64().expect("count"),
                value["sum"].as_f64().expect("sum"),
                value["min"].as_f64().expect("min"),
                value["max"].as_f64().expect("max"),
            );
            assert!(
                (mean - figures.1 / figures.0 as f64).abs() < 1e-9,
                "{key:?}: mean {mean}"
            );
            assert_eq!(value["end_ms"].as_u64(), Some(key.1 + WINDOW_MS));
            (key, figures)
        })
        .collect();
    assert_eq!(
        written, expected,
        "the aggregates written are those of the input"
    );
    program.signal("TERM");
    assert!(program.wait_exit(Duration::from_secs(60)).success());
}
