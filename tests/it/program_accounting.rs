//! Every record read is accounted for, through the real program against Apache Kafka: the
//! sensors pattern (socket ingest -> Kafka -> tumbling 10 s windows per sensor over event time
//! -> file sink, the default flow) with windows larger than the partition's cap of
//! unacknowledged records. Until keyed state lands, a window that holds the cap closes early
//! (its idle timeout), and the readings that come for it after are dead letters of their own
//! reason, `window_closed_at_cap`: for each window, its count plus its dead letters is what was
//! sent, and the settled records by reason add up to the records read.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use crate::support::kafka;
use crate::support::program::{self, Isolation, Program};
use crate::support::wait;

const SENSORS: u64 = 4;
/// Readings per sensor in its first window and in its second.
const FIRST: u64 = 30_000;
const SECOND: u64 = 15_000;
const START_MS: u64 = 1_700_000_000_000;
const WINDOW_MS: u64 = 10_000;
const READINGS: u64 = SENSORS * (FIRST + SECOND);

/// The readings in event-time order: `FIRST` of each sensor spread over its first window, then
/// `SECOND` over its second.
fn readings() -> String {
    let mut lines = String::new();
    for (count, window) in [(FIRST, 0), (SECOND, 1)] {
        for i in 0..count {
            let ts = START_MS + window * WINDOW_MS + i * WINDOW_MS / count;
            for sensor in 0..SENSORS {
                lines.push_str(&format!(
                    "{{\"sensor\":\"s{sensor}\",\"ts\":{ts},\"reading\":{}}}\n",
                    i % 50
                ));
            }
        }
    }
    lines
}

/// The value of `metric` with `label="value"` on the program's `/metrics` (0 when absent).
fn metric(program: &Program, metric: &str, label: &str, value: &str) -> u64 {
    program.metric_where(metric, &[(label, value)]) as u64
}

#[test]
fn a_window_past_the_unacked_cap_accounts_for_every_reading() {
    crate::show_warnings();
    let broker = kafka::broker();
    let name = format!("accounting-{}", fastrand::u32(..));
    let dir = program::test_dir(&name);
    let socket = format!("127.0.0.1:{}", program::free_port());
    let text = format!(
        r#"name = "{name}"
[kafka]
group = "{name}"
[ingest.readings]
kind = "socket"
listen = "{socket}"
framing = "ndjson"
topic = "{name}"
partitions = 4
key = "sensor"
[sources.sensors]
kind = "kafka"
topic = "{name}"
partitions = 4
[stages.per_sensor]
inputs = ["sensors"]
op = "window"
window = "tumbling"
size = "10s"
key = "sensor"
time = "ts"
value = "reading"
idle_timeout = "2s"
[sinks.out]
inputs = ["per_sensor"]
kind = "file"
path = "out/windows.jsonl"
"#
    );
    let pipeline = dir.join("accounting.toml");
    std::fs::write(&pipeline, text).expect("pipeline file");
    let mut program = Program::start(&dir, &pipeline, Some(&broker.brokers), &name);
    program.wait_ready(Duration::from_secs(60));
    let mut stream = TcpStream::connect(&socket).expect("connects to the socket ingest");
    stream
        .set_write_timeout(Some(Duration::from_secs(120)))
        .expect("a write timeout");
    stream
        .write_all(readings().as_bytes())
        .expect("the socket takes the readings");
    drop(stream);

    let settled_reasons = [
        "written",
        "aggregated",
        "filtered",
        "dropped",
        "dead_letter",
    ];
    let log = program.log_file();
    wait::wait_until_or(
        "every reading settled",
        Duration::from_secs(240),
        || {
            program.assert_alive();
            let settled: u64 = settled_reasons
                .iter()
                .map(|reason| {
                    metric(
                        &program,
                        "streamvisor_records_settled_total",
                        "reason",
                        reason,
                    )
                })
                .sum();
            settled >= READINGS
        },
        || program::tail_of(&log),
    );
    wait::wait_until("the commits at the ends", Duration::from_secs(60), || {
        program::lag(&broker.brokers, &name, &name, 4) == 0
    });
    let settled: BTreeMap<&str, u64> = settled_reasons
        .iter()
        .map(|reason| {
            (
                *reason,
                metric(
                    &program,
                    "streamvisor_records_settled_total",
                    "reason",
                    reason,
                ),
            )
        })
        .collect();
    let at_cap = metric(
        &program,
        "streamvisor_dead_letters_total",
        "reason",
        "window_closed_at_cap",
    );
    let late = metric(&program, "streamvisor_dead_letters_total", "reason", "late");
    program.signal("INT");
    program.wait_exit(Duration::from_secs(60));

    // (sensor, window start) -> count written.
    let output = std::fs::read_to_string(dir.join("out/windows.jsonl")).expect("the windows");
    let written: BTreeMap<(String, u64), u64> = output
        .lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let value = &record["value"];
            (
                (
                    value["key"].as_str().expect("key").to_owned(),
                    value["start_ms"].as_u64().expect("start"),
                ),
                value["count"].as_u64().expect("count"),
            )
        })
        .collect();
    // (sensor, window start) -> dead letters, with their origins.
    let mut dead: BTreeMap<(String, u64), u64> = BTreeMap::new();
    let mut origins = BTreeSet::new();
    let letters = program::read_to_end(
        &broker.brokers,
        &format!("{name}.dead-letters"),
        1,
        Isolation::ReadUncommitted,
    );
    for letter in &letters {
        use rdkafka::message::Message;
        let value: serde_json::Value =
            serde_json::from_slice(letter.payload().unwrap_or_default()).expect("a reading");
        let ts = value["ts"].as_u64().expect("ts");
        let sensor = value["sensor"].as_str().expect("sensor").to_owned();
        *dead.entry((sensor, ts - ts % WINDOW_MS)).or_default() += 1;
        assert!(
            origins.insert(program::origin_of(letter)),
            "one dead letter per reading"
        );
    }
    println!(
        "accounting: windows={written:?} dead_letters={} settled={settled:?} at_cap={at_cap} late={late}",
        letters.len()
    );
    assert_eq!(
        written.len(),
        (SENSORS * 2) as usize,
        "two windows a sensor"
    );
    for ((sensor, start), count) in &written {
        let sent = if *start == START_MS { FIRST } else { SECOND };
        let lettered = dead
            .get(&(sensor.clone(), *start))
            .copied()
            .unwrap_or_default();
        assert_eq!(
            count + lettered,
            sent,
            "{sensor} window {start}: {count} counted + {lettered} dead letters"
        );
    }
    assert_eq!(
        settled["aggregated"] + settled["dead_letter"],
        READINGS,
        "{settled:?}"
    );
    assert_eq!(settled.values().sum::<u64>(), READINGS, "{settled:?}");
    assert_eq!(at_cap + late, letters.len() as u64);
    assert_eq!(late, 0, "every reading came in event-time order");
    assert_eq!(
        written.values().sum::<u64>(),
        settled["aggregated"],
        "the aggregated readings are those the windows counted"
    );
}
