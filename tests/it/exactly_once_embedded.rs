//! Exactly-once Kafka to Kafka on the embedded broker (the run command's zero-setup default),
//! through the library API: a generator writes 20,000 records at 1,000/s over 4 partitions; a
//! passthrough pipeline writes them to `out` in transactions while 12 random actors holding
//! records are killed as records flow (both modes: partition actors, the sink, the source); a
//! `read_committed` reader of `out` then sees each input record exactly once. The embedded
//! broker shows aborted records to `read_committed` readers, so there the sink runs each whole
//! transaction under the fence and never aborts for its own reasons: this test covers that mode
//! (`exactly_once.rs` covers the real broker's).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use streamvisor::config::PipelineConfig;
use streamvisor::runtime::{Overrides, Runtime};
use streamvisor_supervision::{ActorState, KillMode};

use crate::support::wait::wait_for;

const RECORDS: i64 = 20_000;
const PARTITIONS: i32 = 4;
const KILLS: usize = 12;
const WAIT: Duration = Duration::from_secs(120);

const PIPELINE: &str = r#"
name = "eos"
[supervision]
max_restarts = 50
within = "30s"
[flow]
batch_size = 200
max_unacked_per_partition = 2000
[kafka.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "1000"
[sources.events]
kind = "kafka"
topic = "events"
partitions = 4
generator = { records = 20000, rate_per_second = 1000 }
[stages.pass]
inputs = ["events"]
op = "passthrough"
[sinks.out]
inputs = ["pass"]
kind = "kafka"
topic = "out"
exactly_once = true
transaction_interval = "50ms"
"#;

/// Reads `out` as a read_committed reader until nothing new came for 3 s: origin (partition,
/// offset) -> times seen.
fn read_committed(brokers: &str) -> BTreeMap<(i32, i64), usize> {
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "eos-reader")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a reader");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment
            .add_partition_offset("out", partition, Offset::Beginning)
            .expect("a partition");
    }
    reader.assign(&assignment).expect("assign");
    let mut seen: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    let began = Instant::now();
    let mut last_new = Instant::now();
    while last_new.elapsed() < Duration::from_secs(3) {
        assert!(began.elapsed() < WAIT, "reading `out` took over {WAIT:?}");
        let Some(message) = reader.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.expect("reading `out`");
        let origin = crate::support::program::origin_of(&message);
        *seen.entry(origin).or_default() += 1;
        last_new = Instant::now();
    }
    seen
}

#[actix_rt::test]
async fn on_the_embedded_broker_a_read_committed_reader_sees_each_record_once_despite_kills() {
    crate::show_warnings();
    crate::quiet_intended_panics();
    let config = PipelineConfig::parse(PIPELINE, "eos.toml").expect("valid pipeline");
    let runtime = Runtime::start(config, Overrides::default())
        .await
        .expect("runtime starts");
    let seed = fastrand::u64(..);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut killed = Vec::new();
    let began = Instant::now();
    while killed.len() < KILLS {
        assert!(
            began.elapsed() < WAIT,
            "only {} kills in {WAIT:?}",
            killed.len()
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        // Kill while records flow: every partition assigned, every actor running.
        let actors = runtime.actors();
        if runtime.partitions().await.len() < PARTITIONS as usize
            || actors
                .iter()
                .any(|actor| actor.state != ActorState::Running)
        {
            continue;
        }
        // The actors holding records (partitions' actors, the sink) and the source itself.
        let targets: Vec<String> = actors
            .iter()
            .map(|actor| actor.path.to_string())
            .filter(|path| {
                path.starts_with("/pipelines/eos/stages/pass/")
                    || path.starts_with("/pipelines/eos/sources/events/")
                    || path == "/pipelines/eos/sinks/out"
                    || path == "/pipelines/eos/sources/events"
            })
            .collect();
        let target = targets[rng.usize(..targets.len())].clone();
        let mode = if rng.bool() {
            KillMode::Stop
        } else {
            KillMode::Panic
        };
        if runtime.kill(&target, mode).is_ok() {
            killed.push(format!("{target} ({mode:?})"));
        }
    }
    let positions = wait_for("every record acknowledged", WAIT * 2, async || {
        let positions: i64 = runtime
            .partitions()
            .await
            .iter()
            .map(|partition| partition.position)
            .sum();
        match positions >= RECORDS {
            true => Ok(positions),
            false => Err(format!("{positions} of {RECORDS}; kills: {killed:#?}")),
        }
    })
    .await;
    let brokers = runtime.brokers().to_owned();
    let seen = tokio::task::spawn_blocking(move || read_committed(&brokers))
        .await
        .expect("the reader");
    let repeated: Vec<_> = seen.iter().filter(|(_, times)| **times > 1).collect();
    println!(
        "exactly-once: input={RECORDS} acknowledged={positions} distinct={} repeated={} kills={} seed={seed}",
        seen.len(),
        repeated.len(),
        killed.len()
    );
    let mut ranges: BTreeMap<i32, (i64, i64, usize)> = BTreeMap::new();
    for ((partition, offset), _) in &repeated {
        let range = ranges.entry(*partition).or_insert((*offset, *offset, 0));
        range.0 = range.0.min(*offset);
        range.1 = range.1.max(*offset);
        range.2 += 1;
    }
    assert!(
        repeated.is_empty(),
        "seen twice (partition: first, last, count): {ranges:?}; kills: {killed:#?}"
    );
    assert_eq!(
        seen.len() as i64,
        RECORDS,
        "each input record once; kills: {killed:#?}"
    );
    runtime.shutdown().await.expect("clean shutdown");
}
