//! Broadcast through the real program against Apache Kafka: a stage fans out to a fast file sink and
//! a slow one (20 ms per batch). Demand is the slowest consumer's: the fast sink never leads
//! the slow one by more than the buffers allow, which is, with B records a batch and P
//! partitions, the broadcasting actor's input buffer per partition (4B, what its copies still
//! waiting for the slow sink can hold) plus the slow sink's own buffer (16B). Every record
//! reaches both sinks; each is acknowledged (and committed) only once both wrote it.

use std::time::{Duration, Instant};

use crate::support::kafka;
use crate::support::program::{self, Program, SinkFile};
use crate::support::wait;

const RECORDS: usize = 20_000;
const PARTITIONS: i32 = 4;
const BATCH: usize = 100;

#[test]
fn a_broadcast_runs_at_the_pace_of_its_slowest_consumer() {
    crate::show_warnings();
    let broker = kafka::broker();
    let dir = program::test_dir("broadcast");
    let topic = format!("broadcast-{}", fastrand::u32(..));
    program::produce_count(&broker.brokers, &topic, RECORDS, PARTITIONS);
    let name = "broadcast";
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(
        &file,
        format!(
            r#"name = "{name}"
[flow]
batch_size = {BATCH}
max_unacked_per_partition = 2000
[kafka]
group = "{topic}"
[sources.events]
kind = "kafka"
topic = "{topic}"
[stages.pass]
inputs = ["events"]
op = "passthrough"
fan_out = "broadcast"
[sinks.fast]
inputs = ["pass"]
kind = "file"
path = "out/fast.jsonl"
[sinks.slow]
inputs = ["pass"]
kind = "file"
path = "out/slow.jsonl"
delay_per_batch = "20ms"
"#
        ),
    )
    .expect("pipeline file");
    let mut program = Program::start(&dir, &file, Some(&broker.brokers), name);
    let (fast, slow) = (dir.join("out/fast.jsonl"), dir.join("out/slow.jsonl"));
    let bound = PARTITIONS as usize * 4 * BATCH + 16 * BATCH;
    let began = Instant::now();
    let mut widest = 0usize;
    loop {
        program.assert_alive();
        // The fast file first: the slow one, read later, can only have grown.
        let fast_lines = SinkFile::count_lines(&fast);
        let slow_lines = SinkFile::count_lines(&slow);
        let lead = fast_lines.saturating_sub(slow_lines);
        widest = widest.max(lead);
        assert!(
            lead <= bound,
            "the fast sink leads the slow one by {lead} records, over the buffers' {bound} \
             (fast {fast_lines}, slow {slow_lines})"
        );
        if slow_lines >= RECORDS {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(180),
            "the slow sink wrote {slow_lines} of {RECORDS} in 180 s; its log:\n{}",
            program.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "broadcast: records={RECORDS} widest_lead={widest} bound={bound} took={:?}",
        began.elapsed()
    );
    assert!(
        widest > 0,
        "the fast sink never led: the test measured nothing"
    );
    for path in [&fast, &slow] {
        let written = SinkFile::read(path);
        assert_eq!(
            written.records.len(),
            RECORDS,
            "{}: every record once",
            path.display()
        );
    }
    wait::wait_until_or(
        "every partition committed to its end",
        Duration::from_secs(60),
        || program::lag(&broker.brokers, &topic, &topic, PARTITIONS) == 0,
        || program.log_tail(),
    );
    program.signal("TERM");
    assert!(program.wait_exit(Duration::from_secs(60)).success());
}
