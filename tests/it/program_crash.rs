//! The crash test: `streamvisor run` works through 100,000 records on tansu and is SIGKILLed at
//! 5 seeded random points (by lines written), then started again each time (the pipeline lowers
//! session.timeout.ms so that a restart does not wait out the dead member for long). The last
//! run ends with SIGTERM (exit 0). Nothing is lost: the file, deduped, holds every record.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::program::{self, Program, SinkFile};
use crate::tansu;

const RECORDS: usize = 100_000;
const PARTITIONS: i32 = 8;
const CRASHES: usize = 5;
const WAIT: Duration = Duration::from_secs(300);

#[test]
fn five_sigkills_lose_nothing() {
    let broker = tansu::broker();
    let dir = program::test_dir("crash");
    let topic = format!("crash-{}", std::process::id());
    let group = format!("crash-{}", std::process::id());
    program::produce_count(&broker.brokers, &topic, RECORDS, PARTITIONS);
    let pipeline = dir.join("crash.toml");
    std::fs::write(
        &pipeline,
        format!(
            r#"
name = "crash"
[flow]
batch_size = 500
max_unacked_per_partition = 2000
[commit]
interval = "500ms"
[kafka]
group = "{group}"
[kafka.properties]
# A killed member leaves the group after 6 s instead of 45 s.
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "1000"
[sources.events]
kind = "kafka"
topic = "{topic}"
[stages.pass]
inputs = ["events"]
op = "passthrough"
[sinks.out]
inputs = ["pass"]
kind = "file"
path = "out/crash.jsonl"
# Slow enough that every crash lands mid-run.
delay_per_batch = "25ms"
"#
        ),
    )
    .expect("pipeline file");
    let file = dir.join("out/crash.jsonl");

    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let mut rng = fastrand::Rng::with_seed(seed);
    // Crash points: lines written, spread over the run.
    let mut points: Vec<usize> = (0..CRASHES)
        .map(|_| rng.usize(RECORDS / 20..RECORDS * 9 / 10))
        .collect();
    points.sort_unstable();
    let began = Instant::now();
    for (run, point) in points.iter().enumerate() {
        let mut program =
            Program::start(&dir, &pipeline, Some(&broker.brokers), &format!("run{run}"));
        program::wait_until(&format!("{point} lines before crash {run}"), WAIT, || {
            program.assert_alive();
            SinkFile::count_lines(&file) >= *point
        });
        program.signal("KILL");
        let status = program.wait_exit(Duration::from_secs(10));
        assert_eq!(status.code(), None, "killed by a signal");
    }
    let mut last = Program::start(&dir, &pipeline, Some(&broker.brokers), "final");
    program::wait_until("every record in the file after the crashes", WAIT, || {
        last.assert_alive();
        SinkFile::read(&file).records.len() >= RECORDS
    });
    program::wait_until("commits at every partition's end", WAIT, || {
        program::lag(&broker.brokers, &group, &topic, PARTITIONS) == 0
    });
    last.signal("TERM");
    let status = last.wait_exit(Duration::from_secs(60));
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM exits 0; log:\n{}",
        last.log_tail()
    );

    let output = SinkFile::read(&file);
    let seqs: BTreeSet<i64> = output.records.values().copied().collect();
    println!(
        "chaos: produced={RECORDS} distinct={} lost={} duplicates={} kills={CRASHES} restarts={CRASHES} points={points:?} seed={seed} took={:?}",
        output.records.len(),
        RECORDS.saturating_sub(seqs.len()),
        output.lines - output.records.len(),
        began.elapsed(),
    );
    assert_eq!(output.records.len(), RECORDS);
    assert_eq!(seqs, (0..RECORDS as i64).collect::<BTreeSet<i64>>());
    for ((partition, offset), seq) in &output.records {
        assert_eq!(*seq, offset * i64::from(PARTITIONS) + i64::from(*partition));
    }
}
