//! The backpressure test: the pipeline's generator writes 2,000 records a second into Apache Kafka
//! while the sink is slowed to 200 a second (1/10 of the input: one batch of 100 per 500 ms,
//! `delay_per_batch`) for its first 30 s (`delay_for`), with librdkafka's prefetch set small.
//! Memory stays flat (the child's peak RSS in the second half of the slow run is at most 1.1x
//! its peak in the first half), the lag grows, and it drains once the sink recovers.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::kafka;
use crate::support::program::{self, rss_kib, Program, SinkFile};
use crate::support::wait;

const PARTITIONS: i32 = 4;
const RATE: u64 = 2_000;
const RECORDS: u64 = 60_000;
const SLOW_FOR: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(240);

#[test]
fn a_slow_sink_holds_memory_flat_grows_the_lag_and_drains_when_it_recovers() {
    let broker = kafka::broker();
    let dir = program::test_dir("backpressure");
    let topic = format!("backpressure-{}", std::process::id());
    let group = format!("backpressure-{}", std::process::id());
    program::produce_count(&broker.brokers, &topic, 0, PARTITIONS);
    // A small prefetch: librdkafka holds little beyond what the partitions asked for.
    let small_prefetch = r#""queued.max.messages.kbytes" = "256"
"queued.min.messages" = "100"
"max.partition.fetch.bytes" = "65536""#;
    let generator = format!("generator = {{ records = {RECORDS}, rate_per_second = {RATE} }}");
    // One batch (at most 100 records) per 500 ms: 200 a second, a tenth of the input, for the
    // first 30 s.
    let slow_sink = format!(
        "delay_per_batch = \"500ms\"\ndelay_for = \"{}s\"",
        SLOW_FOR.as_secs()
    );
    let pipeline = program::Passthrough {
        name: "backpressure",
        group: &group,
        topic: &topic,
        tables: "[flow]\nbatch_size = 100\nmax_unacked_per_partition = 5000\n\
                 [commit]\ninterval = \"200ms\"",
        kafka: "",
        kafka_properties: small_prefetch,
        source: &generator,
        sink: &slow_sink,
        sink_target: None,
    }
    .write(&dir);
    let file = dir.join("out/backpressure.jsonl");

    let mut program = Program::start(&dir, &pipeline, Some(&broker.brokers), "run");
    let began = Instant::now();
    let half = SLOW_FOR / 2;
    let (mut first_half_peak, mut second_half_peak) = (0u64, 0u64);
    let mut lag_at = Vec::new();
    // Stop sampling a second before the sink recovers (the delay is measured from the
    // pipeline's start, a little after the process's).
    while began.elapsed() < SLOW_FOR - Duration::from_secs(1) {
        program.assert_alive();
        let rss = rss_kib(program.pid()).expect("the child's RSS");
        if began.elapsed() < half {
            first_half_peak = first_half_peak.max(rss);
        } else {
            second_half_peak = second_half_peak.max(rss);
        }
        let second = began.elapsed().as_secs();
        if (second == 10 || second == 27) && lag_at.iter().all(|(s, _)| *s != second) {
            lag_at.push((
                second,
                program::lag(&broker.brokers, &group, &topic, PARTITIONS),
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let written_slow = SinkFile::count_lines(&file);

    wait::wait_until("the generator's records all in the file", WAIT, || {
        program.assert_alive();
        SinkFile::read(&file).records.len() as u64 >= RECORDS
    });
    wait::wait_until("the lag to drain to 0", WAIT, || {
        program::lag(&broker.brokers, &group, &topic, PARTITIONS) == 0
    });
    let drained_after = began.elapsed();
    program.signal("TERM");
    let status = program.wait_exit(Duration::from_secs(60));
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM exits 0; log:\n{}",
        program.log_tail()
    );

    let output = SinkFile::read(&file);
    let seqs: BTreeSet<i64> = output.records.values().copied().collect();
    let ratio = second_half_peak as f64 / first_half_peak as f64;
    println!(
        "backpressure: rss_first_half_peak={first_half_peak}KiB rss_second_half_peak={second_half_peak}KiB \
         ratio={ratio:.3} lag={lag_at:?} written_while_slow={written_slow} drained_after={drained_after:?} \
         distinct={} lines={}",
        output.records.len(),
        output.lines
    );
    assert!(ratio <= 1.1, "peak RSS grew {ratio:.3}x in the second half");
    let [(_, early), (_, late)] = lag_at[..] else {
        panic!("lag samples at 10 s and 27 s: {lag_at:?}");
    };
    assert!(
        late > early + 10_000,
        "the lag grows while the sink is slow: {early} at 10 s, {late} at 27 s"
    );
    assert!(
        (written_slow as u64) < SLOW_FOR.as_secs() * 400,
        "the slowed sink wrote {written_slow} records in 30 s (at most ~200 a second)"
    );
    assert_eq!(
        seqs,
        (0..RECORDS as i64).collect::<BTreeSet<i64>>(),
        "every record, once"
    );
}
