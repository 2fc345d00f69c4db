//! Throttle and grouped_within through the real program against Apache Kafka: 4,000 records already
//! in 2 partitions pass a throttle of 1,000 records a second with bursts of 100 (a bucket per
//! partition's stage actor: 2,000 a second, bursts of 200 in all), then are regrouped by 300 or
//! 50 ms, into the file sink. Every record is written once, the partitions are committed to
//! their ends, and the writing takes at least what the buckets allow: (4,000 - 200) / 2,000 =
//! 1.9 s from the first record written (full buckets at the start).

use std::time::{Duration, Instant};

use crate::support::kafka;
use crate::support::program::{self, Program, SinkFile};
use crate::support::wait;

const RECORDS: usize = 4_000;
const PARTITIONS: i32 = 2;

#[test]
fn a_throttle_paces_the_flow_and_groups_carry_every_record() {
    crate::show_warnings();
    let broker = kafka::broker();
    let topic = format!("pacing-{}", fastrand::u32(..));
    program::produce_count(&broker.brokers, &topic, RECORDS, PARTITIONS);
    let dir = program::test_dir("pacing");
    let file = dir.join("pacing.toml");
    std::fs::write(
        &file,
        format!(
            r#"name = "pacing"
[flow]
batch_size = 100
max_unacked_per_partition = 1000
[kafka]
group = "{topic}"
[sources.events]
kind = "kafka"
topic = "{topic}"
[stages.paced]
inputs = ["events"]
op = "throttle"
rate = 1000
burst = 100
[stages.groups]
inputs = ["paced"]
op = "grouped_within"
max_records = 300
within = "50ms"
[sinks.out]
inputs = ["groups"]
kind = "file"
path = "out/pacing.jsonl"
"#
        ),
    )
    .expect("pipeline file");
    let mut program = Program::start(&dir, &file, Some(&broker.brokers), "pacing");
    let out = dir.join("out/pacing.jsonl");
    let began = Instant::now();
    let mut first_written = None;
    loop {
        program.assert_alive();
        let lines = SinkFile::count_lines(&out);
        if lines > 0 && first_written.is_none() {
            first_written = Some(Instant::now());
        }
        if lines >= RECORDS {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "{lines} of {RECORDS} written in 120 s; its log:\n{}",
            program.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = first_written.map(|at| at.elapsed()).unwrap_or_default();
    // Each partition's stage actor has its own bucket: 2 partitions at 1,000/s each.
    let least = Duration::from_secs_f64((RECORDS as f64 - 2.0 * 100.0) / 2_000.0);
    println!("pacing: records={RECORDS} took={took:?} least={least:?}");
    assert!(
        took >= least.mul_f64(0.95),
        "the throttle let {RECORDS} records through in {took:?}, under {least:?}"
    );
    let written = SinkFile::read(&out);
    assert_eq!(written.records.len(), RECORDS, "every record");
    assert_eq!(written.lines, RECORDS, "once");
    wait::wait_until_or(
        "the commits to reach the ends",
        Duration::from_secs(60),
        || program::lag(&broker.brokers, &topic, &topic, PARTITIONS) == 0,
        || program.log_tail(),
    );
    program.signal("TERM");
    assert!(program.wait_exit(Duration::from_secs(60)).success());
}

/// A buffer of 2 batches dropping the newest when full, before a sink slowed to a second a write:
/// some records are dropped (never written), none is written twice, and the dropped ones are
/// acknowledged, so the partitions are committed to their ends all the same. (The unacked cap
/// holds a partition's whole backlog: a lower one pauses the partition before the buffer fills,
/// the backpressure the buffer is there to take off, and whether it overflows depends on timing.)
#[test]
fn a_full_buffer_drops_and_acknowledges_what_it_drops() {
    crate::show_warnings();
    let broker = kafka::broker();
    let topic = format!("buffer-{}", fastrand::u32(..));
    program::produce_count(&broker.brokers, &topic, RECORDS, PARTITIONS);
    let dir = program::test_dir("buffer-drop");
    let file = dir.join("buffer.toml");
    std::fs::write(
        &file,
        format!(
            r#"name = "buffer"
[flow]
batch_size = 100
max_unacked_per_partition = 2000
[kafka]
group = "{topic}"
[sources.events]
kind = "kafka"
topic = "{topic}"
[stages.ahead]
inputs = ["events"]
op = "buffer"
batches = 2
overflow = "drop_new"
[sinks.out]
inputs = ["ahead"]
kind = "file"
path = "out/buffer.jsonl"
delay_per_batch = "1s"
"#
        ),
    )
    .expect("pipeline file");
    let mut program = Program::start(&dir, &file, Some(&broker.brokers), "buffer");
    let out = dir.join("out/buffer.jsonl");
    wait::wait_until_or(
        "every record written or dropped and committed",
        Duration::from_secs(120),
        || program::lag(&broker.brokers, &topic, &topic, PARTITIONS) == 0,
        || program.log_tail(),
    );
    let written = SinkFile::read(&out);
    println!(
        "buffer: records={RECORDS} written={} dropped={}",
        written.records.len(),
        RECORDS - written.records.len()
    );
    assert_eq!(
        written.lines,
        written.records.len(),
        "nothing written twice"
    );
    assert!(
        written.records.len() < RECORDS,
        "a buffer of 2 batches before a slow sink dropped nothing"
    );
    assert!(!written.records.is_empty(), "nothing written at all");
    program.signal("TERM");
    assert!(program.wait_exit(Duration::from_secs(60)).success());
}
