//! Exactly-once Kafka to Kafka on Apache Kafka, through the real program: 30,000 records
//! produced in rounds into 4 partitions while a passthrough pipeline writes them to an output
//! topic in transactions (`exactly_once = true`); 20 random kills of the stage actors and the sink
//! (both modes) as records flow, and one SIGKILL of the whole process halfway (a new process
//! takes over). A `read_committed` reader of the output then sees every input record exactly
//! once (total == distinct origins == produced), and a `read_uncommitted` reader sees more: the
//! kills really aborted transactions whose records the broker keeps.
//!
//! The pipeline raises the restart intensity to 50 in 30 s (chaos), and lowers the session
//! timeout to 6 s so that the new process is assigned the partitions soon after the SIGKILL.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use crate::kafka;
use crate::kills;
use crate::program::{self, Isolation, Program};

const RECORDS: usize = 30_000;
const PARTITIONS: i32 = 4;
/// Kills before the SIGKILL, and as many after it.
const KILLS_EACH_RUN: usize = 10;
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
transaction_interval = "50ms"
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
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let mut rng = fastrand::Rng::with_seed(seed);
    let done = Arc::new(AtomicUsize::new(0));
    let total_kills = 2 * KILLS_EACH_RUN;
    let producer =
        kills::produce_during_kills(&broker.brokers, &input, RECORDS, 5, total_kills, &done);
    let targets = ["/pipelines/eos/stages/pass/", "/pipelines/eos/sinks/out"];
    let flowing = || program::lag(&broker.brokers, &group, &input, PARTITIONS) > 0;

    let mut first = Program::start(&dir, &file, Some(&broker.brokers), "first");
    first.wait_ready(WAIT);
    let mut killed =
        kills::kill_randomly(&first, &targets, KILLS_EACH_RUN, &mut rng, &done, flowing);
    first.assert_alive();
    first.signal("KILL");
    assert_eq!(
        first.wait_exit(Duration::from_secs(10)).code(),
        None,
        "killed by a signal"
    );

    let mut second = Program::start(&dir, &file, Some(&broker.brokers), "second");
    second.wait_ready(WAIT);
    let more = kills::kill_randomly(&second, &targets, KILLS_EACH_RUN, &mut rng, &done, flowing);
    killed.paths.extend(more.paths);
    producer.join().expect("the producer thread");
    let log = second.log_file();
    program::wait_until_or(
        "every input offset committed by a transaction",
        WAIT,
        || {
            second.assert_alive();
            program::lag(&broker.brokers, &group, &input, PARTITIONS) == 0
        },
        || program::tail_of(&log),
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
        "eos: produced={RECORDS} committed_total={} distinct={} uncommitted_total={} kills={} sigkills=1 seed={seed}",
        committed.len(),
        origins.len(),
        uncommitted.len(),
        killed.paths.len()
    );
    assert_eq!(
        origins.len(),
        RECORDS,
        "each input record in a committed transaction; kills: {:#?}",
        killed.paths
    );
    assert_eq!(
        committed.len(),
        RECORDS,
        "no input record twice under read_committed; kills: {:#?}",
        killed.paths
    );
    assert!(
        uncommitted.len() > committed.len(),
        "the kills aborted transactions: read_uncommitted sees {} records, read_committed {}",
        uncommitted.len(),
        committed.len()
    );
}
