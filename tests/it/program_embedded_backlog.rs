//! On the embedded broker, producers of the process hold back while the pipeline is behind:
//! librdkafka's mock cluster keeps 5 MiB per partition at most and deletes older records, read
//! or not. 600,000 readings (about 36 MB) through socket ingest into four partitions, with the
//! file sink slowed for its first 20 s: without the hold-back, the partitions' starts were
//! deleted before they were read. With it, every reading is written, nothing is counted lost,
//! and the socket client was slowed instead (TCP backpressure).

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::program::{self, Program, SinkFile};
use crate::support::wait;

const READINGS: u64 = 600_000;
const SENSORS: u64 = 4;

#[test]
fn socket_ingest_on_the_embedded_broker_holds_back_and_loses_nothing() {
    crate::show_warnings();
    let name = format!("backlog-{}", fastrand::u32(..));
    let dir = program::test_dir(&name);
    let socket = format!("127.0.0.1:{}", program::free_port());
    let text = format!(
        r#"name = "{name}"
[ingest.readings]
kind = "socket"
listen = "{socket}"
framing = "ndjson"
topic = "readings"
partitions = 4
key = "sensor"
[sources.sensors]
kind = "kafka"
topic = "readings"
partitions = 4
[stages.pass]
inputs = ["sensors"]
op = "passthrough"
[sinks.out]
inputs = ["pass"]
kind = "file"
path = "out/readings.jsonl"
delay_per_batch = "50ms"
delay_for = "20s"
"#
    );
    let pipeline = dir.join("backlog.toml");
    std::fs::write(&pipeline, text).expect("pipeline file");
    let mut program = Program::start(&dir, &pipeline, None, &name);
    program.wait_ready(Duration::from_secs(60));

    let mut lines = String::with_capacity(64 * READINGS as usize);
    for seq in 0..READINGS {
        lines.push_str(&format!(
            "{{\"sensor\":\"s{}\",\"seq\":{seq},\"reading\":{}}}\n",
            seq % SENSORS,
            seq % 50
        ));
    }
    let sent = Instant::now();
    let mut stream = TcpStream::connect(&socket).expect("connects to the socket ingest");
    stream
        .set_write_timeout(Some(Duration::from_secs(240)))
        .expect("a write timeout");
    stream
        .write_all(lines.as_bytes())
        .expect("the socket takes the readings");
    drop(stream);
    let took = sent.elapsed();

    let out = dir.join("out/readings.jsonl");
    let log = program.log_file();
    wait::wait_until_or(
        "every reading written",
        Duration::from_secs(300),
        || {
            program.assert_alive();
            SinkFile::count_lines(&out) >= READINGS as usize
        },
        || program::tail_of(&log),
    );
    let lost = program.metric_sum("streamvisor_records_lost_total");
    let read = program.metric_sum("streamvisor_records_in_total");
    program.signal("INT");
    program.wait_exit(Duration::from_secs(60));
    let file = SinkFile::read(&out);
    let seqs: BTreeSet<i64> = file.records.values().copied().collect();
    println!(
        "embedded backlog: {READINGS} readings ({} MB) sent in {took:?}, read={read} lost={lost} written={} distinct={}",
        lines.len() / 1_000_000,
        file.lines,
        seqs.len()
    );
    assert_eq!(lost, 0.0, "no record deleted before it was read");
    assert_eq!(read, READINGS as f64, "every reading read once");
    assert_eq!(seqs, (0..READINGS as i64).collect::<BTreeSet<i64>>());
    assert!(
        !program.log().contains("Offset out of range"),
        "no partition lost its position"
    );
}
