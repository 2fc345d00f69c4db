//! The crash test: `streamvisor run` works through 100,000 records on Apache Kafka and is SIGKILLed at
//! 5 seeded random points (lines written by each run), then started again at once each time
//! (the new run is assigned the partitions when the broker has timed the dead member's session
//! out: the pipeline lowers session.timeout.ms to 6 s). Then a SIGTERM mid-run: exit 0, and the committed offsets are exactly what the file
//! holds. The last run finishes. Nothing is lost: the file, deduped, holds every record.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::kafka;
use crate::support::program::{self, Program, SinkFile};
use crate::support::wait;

const RECORDS: usize = 100_000;
const PARTITIONS: i32 = 8;
const CRASHES: usize = 5;
const WAIT: Duration = Duration::from_secs(300);

#[test]
fn five_sigkills_lose_nothing() {
    let broker = kafka::broker();
    let dir = program::test_dir("crash");
    let topic = format!("crash-{}", std::process::id());
    let group = format!("crash-{}", std::process::id());
    program::produce_count(&broker.brokers, &topic, RECORDS, PARTITIONS);
    let pipeline = program::Passthrough {
        name: "crash",
        group: &group,
        topic: &topic,
        tables: "[flow]\nbatch_size = 500\nmax_unacked_per_partition = 2000\n\
                 [commit]\ninterval = \"500ms\"",
        kafka_properties: program::QUICK_GROUP_FAILOVER,
        // Slow enough that every crash lands mid-run.
        sink: "delay_per_batch = \"25ms\"",
        ..Default::default()
    }
    .write(&dir);
    let file = dir.join("out/crash.jsonl");

    let seed = program::chaos_seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let began = Instant::now();
    // Each run is killed once it has written a seeded random number of lines of its own (it
    // is ready first): every crash lands while it works.
    let mut points = Vec::new();
    let mut restarts = 0;
    for run in 0..CRASHES {
        let mut program =
            Program::start(&dir, &pipeline, Some(&broker.brokers), &format!("run{run}"));
        program.wait_ready(WAIT);
        let from = SinkFile::count_lines(&file);
        let point = from + rng.usize(2_000..12_000);
        points.push(point);
        wait::wait_until(&format!("{point} lines before crash {run}"), WAIT, || {
            program.assert_alive();
            SinkFile::count_lines(&file) >= point
        });
        program.signal("KILL");
        let status = program.wait_exit(Duration::from_secs(10));
        assert_eq!(status.code(), None, "killed by a signal");
        restarts += 1;
    }
    // A SIGTERM while records flow: the run drains and commits what it wrote, and exits 0.
    let mut drained = Program::start(&dir, &pipeline, Some(&broker.brokers), "drained");
    drained.wait_ready(WAIT);
    let from = SinkFile::count_lines(&file);
    wait::wait_until("records flowing before the SIGTERM", WAIT, || {
        drained.assert_alive();
        SinkFile::count_lines(&file) >= from + 3_000
    });
    drained.signal("TERM");
    let status = drained.wait_exit(Duration::from_secs(60));
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM exits 0; log:\n{}",
        drained.log_tail()
    );
    assert!(
        SinkFile::read(&file).records.len() < RECORDS,
        "the SIGTERM landed mid-run"
    );
    // Everything this run wrote was acknowledged, and a clean stop commits it: each partition
    // it wrote is committed exactly past the last offset it wrote (partitions are written in
    // order).
    let text = std::fs::read_to_string(&file).expect("the file");
    let mut last_written: std::collections::BTreeMap<i32, i64> = Default::default();
    for line in text.lines().skip(from) {
        let record: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let partition = record["partition"].as_i64().expect("partition") as i32;
        let offset = record["offset"].as_i64().expect("offset");
        last_written.insert(partition, offset);
    }
    let committed = program::committed(&broker.brokers, &group, &topic, PARTITIONS);
    assert!(!last_written.is_empty(), "the drained run wrote records");
    for (partition, offset) in &last_written {
        assert_eq!(
            committed[*partition as usize],
            offset + 1,
            "partition {partition}: committed past the last record written before the SIGTERM"
        );
    }
    restarts += 1;

    let mut last = Program::start(&dir, &pipeline, Some(&broker.brokers), "final");
    wait::wait_until("every record in the file after the crashes", WAIT, || {
        last.assert_alive();
        SinkFile::read(&file).records.len() >= RECORDS
    });
    wait::wait_until("commits at every partition's end", WAIT, || {
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
        "chaos: produced={RECORDS} distinct={} lost={} duplicates={} kills={CRASHES} restarts={restarts} points={points:?} seed={seed} took={:?}",
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
