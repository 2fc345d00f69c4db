//! Exactly-once Kafka to Kafka on Apache Kafka, through the real program: 30,000 records
//! produced at a steady 600 a second into 4 partitions while a passthrough pipeline writes them to
//! an output topic in transactions of 200 ms (`exactly_once = true`); 20 kills as records flow
//! (both modes, random, a stage actor and then the sink in turn, so that kills land in open
//! transactions), and one SIGKILL of the whole process halfway (a new process takes over). A `read_committed` reader of the output then sees every input record exactly
//! once (total == distinct origins == produced), and a `read_uncommitted` reader sees more: the
//! kills really aborted transactions whose records the broker keeps.
//!
//! The pipeline raises the restart intensity to 50 in 30 s (chaos), and lowers the session
//! timeout to 6 s so that the new process is assigned the partitions soon after the SIGKILL.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

use crate::support::kafka;
use crate::support::kills;
use crate::support::program::{self, Isolation, Program};
use crate::support::wait;

const RECORDS: usize = 30_000;
const PARTITIONS: i32 = 4;
/// Kills before the SIGKILL, and as many after it: half of them of stage actors, half of the
/// sink.
const KILLS_EACH_RUN: usize = 10;
/// Records written every 100 ms.
const PER_TICK: usize = 60;
const WAIT: Duration = Duration::from_secs(300);

fn pipeline(group: &str, input: &str, output: &str) -> String {
    format!(
        r#"name = "eos"
[supervision]
max_restarts = 50
within = "30s"
[flow]
batch_size = 200
max_unacked_per_partition = 2000
[kafka]
group = "{group}"
[kafka.properties]
{quick_failover}
[sources.events]
kind = "kafka"
topic = "{input}"
partitions = {PARTITIONS}
[stages.pass]
inputs = ["events"]
op = "passthrough"
[sinks.out]
inputs = ["pass"]
kind = "kafka"
topic = "{output}"
exactly_once = true
transaction_interval = "200ms"
"#,
        quick_failover = program::QUICK_GROUP_FAILOVER
    )
}

#[test]
fn read_committed_sees_each_record_once_through_kills_and_a_sigkill() {
    let broker = kafka::broker();
    let id = std::process::id();
    let (input, output, group) = (
        format!("eos-in-{id}"),
        format!("eos-out-{id}"),
        format!("eos-{id}"),
    );
    let dir = program::test_dir("eos");
    program::produce_count(&broker.brokers, &input, 0, PARTITIONS);
    let file = dir.join("eos.toml");
    std::fs::write(&file, pipeline(&group, &input, &output)).expect("pipeline file");
    let seed = program::chaos_seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let done = AtomicUsize::new(0);
    let flowing = || program::lag(&broker.brokers, &group, &input, PARTITIONS) > 0;
    let mut killed: Vec<String> = Vec::new();
    let mut while_flowing = 0;
    let mut kill = |program: &Program, rng: &mut fastrand::Rng| {
        for _ in 0..KILLS_EACH_RUN / 2 {
            for target in ["/pipelines/eos/stages/pass/", "/pipelines/eos/sinks/out"] {
                let kills = kills::kill_randomly(program, &[target], 1, rng, &done, flowing);
                killed.extend(kills.paths);
                while_flowing += kills.while_flowing;
            }
        }
    };

    let mut first = Program::start(&dir, &file, Some(&broker.brokers), "first");
    first.wait_ready(WAIT);
    let producer = produce_steadily(&broker.brokers, &input);
    kill(&first, &mut rng);
    first.assert_alive();
    assert!(flowing(), "records flow when the process is SIGKILLed");
    first.signal("KILL");
    assert_eq!(
        first.wait_exit(Duration::from_secs(10)).code(),
        None,
        "killed by a signal"
    );

    let mut second = Program::start(&dir, &file, Some(&broker.brokers), "second");
    second.wait_ready(WAIT);
    kill(&second, &mut rng);
    let produced_for = producer.join().expect("the producer thread");
    let log = second.log_file();
    let http = second.http.clone();
    let get = |path: &str| {
        streamvisor::http::client::request(&http, "GET", path, None).map(|answer| answer.body)
    };
    wait::wait_until_or(
        "every input offset committed by a transaction",
        WAIT,
        || {
            second.assert_alive();
            program::lag(&broker.brokers, &group, &input, PARTITIONS) == 0
        },
        || {
            format!(
                "committed {:?} of ends {:?}; ready: {:?}; actors: {:?}; log:\n{}",
                program::committed(&broker.brokers, &group, &input, PARTITIONS),
                program::ends(&broker.brokers, &input, PARTITIONS),
                get("/health/ready"),
                get("/api/actors"),
                program::tail_of(&log)
            )
        },
    );
    second.signal("TERM");
    assert_eq!(
        second.wait_exit(Duration::from_secs(60)).code(),
        Some(0),
        "{}",
        second.log_tail()
    );

    let committed = program::read_to_end(
        &broker.brokers,
        &output,
        PARTITIONS,
        Isolation::ReadCommitted,
    );
    let uncommitted = program::read_to_end(
        &broker.brokers,
        &output,
        PARTITIONS,
        Isolation::ReadUncommitted,
    );
    let origins: BTreeSet<(i32, i64)> = committed.iter().map(program::origin_of).collect();
    println!(
        "eos: produced={RECORDS} committed_total={} distinct={} uncommitted_total={} kills={} sigkills=1 seed={seed} produced_for={produced_for:?}",
        committed.len(),
        origins.len(),
        uncommitted.len(),
        killed.len()
    );
    assert!(
        while_flowing >= KILLS_EACH_RUN,
        "only {while_flowing} of {} kills landed while records flowed",
        killed.len()
    );
    for mode in ["(stop)", "(panic)"] {
        assert!(
            killed.iter().any(|kill| kill.ends_with(mode)),
            "no kill in mode {mode}: {killed:#?}"
        );
    }
    assert_eq!(
        origins.len(),
        RECORDS,
        "each input record in a committed transaction; kills: {:#?}",
        killed
    );
    assert_eq!(
        committed.len(),
        RECORDS,
        "no input record twice under read_committed; kills: {:#?}",
        killed
    );
    assert!(
        uncommitted.len() > committed.len(),
        "the kills aborted transactions: read_uncommitted sees {} records, read_committed {}",
        uncommitted.len(),
        committed.len()
    );
}

/// Writes records `{"key": "k<i % 1000>", "seq": i}` for i in 0..RECORDS, [`PER_TICK`] every
/// 100 ms, on a thread of its own; it returns how long that took.
fn produce_steadily(brokers: &str, topic: &str) -> std::thread::JoinHandle<Duration> {
    let producer: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("a producer");
    let topic = topic.to_owned();
    std::thread::spawn(move || {
        let began = Instant::now();
        let mut value = Vec::with_capacity(64);
        for seq in 0..RECORDS {
            if seq % PER_TICK == 0 {
                let due = Duration::from_millis(100 * (seq / PER_TICK) as u64);
                std::thread::sleep(due.saturating_sub(began.elapsed()));
            }
            let key = format!("k{}", seq % 1000);
            value.clear();
            write!(value, "{{\"key\":\"{key}\",\"seq\":{seq}}}").expect("a value");
            producer
                .send(BaseRecord::to(&topic).key(&key).payload(&value))
                .map_err(|(error, _)| error)
                .expect("queued");
        }
        producer
            .flush(Duration::from_secs(60))
            .expect("every record delivered");
        began.elapsed()
    })
}
