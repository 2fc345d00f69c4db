//! The Kafka sink through the real program against Apache Kafka: 30,000 records -> passthrough ->
//! topic `ks-out` while 10 random actors (the sink among the candidates) are killed. Every
//! input record reaches the output (at-least-once: replays after a rewind may repeat some),
//! with its key, payload and origin headers.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::Message;

use crate::support::kafka;
use crate::support::kills;
use crate::support::program::{self, Isolation, Passthrough, Program};
use crate::support::wait;

const RECORDS: usize = 30_000;
const KILLS: usize = 10;
/// Partitions of the input and output topics.
const PARTITIONS: i32 = 4;

/// Reads `topic` from the start to its end: origin (partition, offset) -> (times seen, seq).
fn read_output(brokers: &str, topic: &str) -> BTreeMap<(i32, i64), (usize, i64)> {
    let mut seen: BTreeMap<(i32, i64), (usize, i64)> = BTreeMap::new();
    for message in program::read_to_end(brokers, topic, PARTITIONS, Isolation::ReadUncommitted) {
        let payload: serde_json::Value =
            serde_json::from_slice(message.payload().unwrap_or_default()).expect("JSON payload");
        let seq = payload["seq"].as_i64().unwrap_or(-1);
        assert_eq!(
            message
                .key()
                .map(|key| String::from_utf8_lossy(key).into_owned()),
            Some(format!("k{}", seq % 1000)),
            "the key travels with the record"
        );
        let origin = program::origin_of(&message);
        seen.entry(origin).or_insert((0, seq)).0 += 1;
    }
    seen
}

#[test]
fn kills_lose_nothing_on_the_way_to_the_output_topic() {
    let broker = kafka::broker();
    let dir = program::test_dir("kafka-sink");
    program::produce_count(&broker.brokers, "ks-in", 0, 4);
    let pipeline = Passthrough {
        name: "kafkasink",
        group: "kafkasink",
        topic: "ks-in",
        source: "partitions = 4",
        sink_target: Some(
            "kind = \"kafka\"\ntopic = \"ks-out\"\n[sinks.out.properties]\n\"linger.ms\" = \"5\""
                .to_owned(),
        ),
        ..Passthrough::default()
    }
    .write(&dir);
    let mut program = Program::start(&dir, &pipeline, Some(&broker.brokers), "kafkasink");
    program.wait_ready(Duration::from_secs(60));
    let seed = fastrand::u64(..);
    let mut rng = fastrand::Rng::with_seed(seed);
    let done = Arc::new(AtomicUsize::new(0));
    let producer = kills::produce_during_kills(&broker.brokers, "ks-in", RECORDS, 5, KILLS, &done);
    let written = || program.metric_sum("streamvisor_records_out_total") as usize;
    let killed = kills::kill_randomly(
        &program,
        &["/pipelines/kafkasink/"],
        KILLS,
        &mut rng,
        &done,
        || written() < RECORDS,
    );
    producer.join().expect("the producer thread");
    wait::wait_until(
        "every input offset committed",
        Duration::from_secs(240),
        || program::lag(&broker.brokers, "kafkasink", "ks-in", 4) == 0,
    );
    program.signal("TERM");
    assert_eq!(
        program.wait_exit(Duration::from_secs(60)).code(),
        Some(0),
        "{}",
        program.log_tail()
    );

    let ends = program::ends(&broker.brokers, "ks-out", PARTITIONS);
    let seen = read_output(&broker.brokers, "ks-out");
    let seqs: std::collections::BTreeSet<i64> = seen.values().map(|(_, seq)| *seq).collect();
    let repeated: usize = seen.values().map(|(times, _)| times - 1).sum();
    println!(
        "kafka-sink: produced={RECORDS} distinct={} lost={} repeated={repeated} kills={} output_ends={ends:?} seed={seed}",
        seen.len(),
        RECORDS.saturating_sub(seqs.len()),
        killed.paths.len()
    );
    assert_eq!(seen.len(), RECORDS, "every input offset reached the output");
    assert_eq!(
        seqs,
        (0..RECORDS as i64).collect(),
        "every record, by payload"
    );
}
