//! The scale-out test, under each consumer-group protocol: a second `streamvisor run` process
//! joins the group of a first; the two share the 8 partitions of a topic (both write records);
//! one of them is SIGKILLed mid-run (under the classic protocol the first, the group's leader,
//! which assigns the partitions; under KIP-848, where the broker assigns them, either, chosen by
//! a seed); the survivor takes its partitions over
//! once the broker has timed the dead member out (6 s: the pipeline's `session.timeout.ms` under
//! the classic protocol, the broker's `group.consumer.session.timeout.ms` under KIP-848) and
//! finishes them. Nothing is lost: the two files together, deduped, hold every record; and the
//! broker reports the group's type as the protocol asked for.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::kafka;
use crate::support::program::{self, Program, SinkFile};
use crate::support::wait;

const RECORDS: usize = 100_000;
const PARTITIONS: i32 = 8;
const WAIT: Duration = Duration::from_secs(300);

#[test]
fn classic_a_second_process_shares_the_partitions_and_takes_over_when_the_leader_dies() {
    scale_out(
        "classic",
        program::QUICK_GROUP_FAILOVER,
        "Classic",
        Some(true),
    );
}

#[test]
fn consumer_a_second_process_shares_the_partitions_and_either_takes_over_when_the_other_dies() {
    // KIP-848: the session timeout and heartbeat interval are the broker's.
    scale_out("consumer", "", "Consumer", None);
}

/// Runs the test under `protocol`; kills the first process when `kill_first` says so, else the
/// one a seed picks.
fn scale_out(protocol: &str, kafka_properties: &str, group_type: &str, kill_first: Option<bool>) {
    let broker = kafka::broker();
    let name = format!("scale-{protocol}");
    let dir = program::test_dir(&name);
    let topic = format!("{name}-{}", std::process::id());
    let group = topic.clone();
    program::produce_count(&broker.brokers, &topic, RECORDS, PARTITIONS);
    let group_protocol = format!("group_protocol = \"{protocol}\"");
    let pipeline = program::Passthrough {
        name: &name,
        group: &group,
        topic: &topic,
        tables: "[flow]\nbatch_size = 250\nmax_unacked_per_partition = 1000\n\
                 [commit]\ninterval = \"500ms\"",
        kafka: &group_protocol,
        kafka_properties,
        // About 5,000 records a second per process: both are still at work when one dies.
        sink: "delay_per_batch = \"50ms\"",
        ..Default::default()
    }
    .write(&dir);
    let seed = program::chaos_seed();
    let kill_first = kill_first.unwrap_or_else(|| fastrand::Rng::with_seed(seed).bool());
    let dirs = [dir.join("first"), dir.join("second")];
    let files = dirs
        .clone()
        .map(|dir| dir.join(format!("out/{name}.jsonl")));
    for dir in &dirs {
        std::fs::create_dir_all(dir).expect("a process's folder");
    }
    let count = |index: usize| SinkFile::count_lines(&files[index]);

    // The first starts alone and gets every partition; the second joins it, as a second
    // process does when an operator scales out.
    let first = Program::start(&dirs[0], &pipeline, Some(&broker.brokers), "first");
    let mut processes = vec![first];
    wait::wait_until("the first writing records", WAIT, || {
        processes[0].assert_alive();
        count(0) > 0
    });
    processes.push(Program::start(
        &dirs[1],
        &pipeline,
        Some(&broker.brokers),
        "second",
    ));
    wait::wait_until("both processes writing records", WAIT, || {
        processes.iter_mut().for_each(Program::assert_alive);
        count(0) > 0 && count(1) > 0
    });
    assert_eq!(broker.group_type(&group), group_type, "the group's type");
    let (victim, survivor) = if kill_first { (0, 1) } else { (1, 0) };
    // Let both work a little, then kill the victim mid-run.
    let at = count(victim) + 2_000;
    wait::wait_until(&format!("the victim to write {at} records"), WAIT, || {
        processes.iter_mut().for_each(Program::assert_alive);
        count(victim) >= at
    });
    processes[victim].signal("KILL");
    processes[victim].wait_exit(Duration::from_secs(10));
    let from_victim = SinkFile::read(&files[victim]);
    let victim_partitions: BTreeSet<i32> = from_victim.records.keys().map(|(p, _)| *p).collect();
    assert!(
        from_victim.records.len() < RECORDS / 2,
        "the victim was killed mid-run ({} records written)",
        from_victim.records.len()
    );

    wait::wait_until_or(
        "every record in the two files",
        WAIT,
        || {
            processes[survivor].assert_alive();
            let mut all = SinkFile::read(&files[0]).records;
            all.extend(SinkFile::read(&files[1]).records);
            all.len() >= RECORDS
        },
        || {
            format!(
                "first's log:\n{}\nsecond's log:\n{}",
                program::tail_of(&dirs[0].join("first.log")),
                program::tail_of(&dirs[1].join("second.log"))
            )
        },
    );
    wait::wait_until("commits at every partition's end", WAIT, || {
        program::lag(&broker.brokers, &group, &topic, PARTITIONS) == 0
    });
    processes[survivor].signal("TERM");
    let status = processes[survivor].wait_exit(Duration::from_secs(60));
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM exits 0; log:\n{}",
        processes[survivor].log_tail()
    );

    let from_survivor = SinkFile::read(&files[survivor]);
    let mut all = from_survivor.records.clone();
    all.extend(from_victim.records.clone());
    let seqs: BTreeSet<i64> = all.values().copied().collect();
    // The survivor finished the victim's partitions: it holds the last record of each.
    let last_offset = (RECORDS / PARTITIONS as usize) as i64 - 1;
    let taken_over: Vec<i32> = victim_partitions
        .iter()
        .copied()
        .filter(|partition| {
            from_survivor
                .records
                .contains_key(&(*partition, last_offset))
        })
        .collect();
    println!(
        "scale-out ({protocol}): produced={RECORDS} distinct={} lost={} killed={} seed={seed} \
         from_survivor={} from_victim={} victim_partitions={victim_partitions:?} taken_over={taken_over:?}",
        all.len(),
        RECORDS.saturating_sub(seqs.len()),
        if kill_first { "first" } else { "second" },
        from_survivor.records.len(),
        from_victim.records.len(),
    );
    assert_eq!(all.len(), RECORDS);
    assert_eq!(seqs, (0..RECORDS as i64).collect::<BTreeSet<i64>>());
    assert!(!victim_partitions.is_empty(), "the victim received records");
    assert_eq!(
        taken_over.len(),
        victim_partitions.len(),
        "the survivor finished every partition the victim held"
    );
}
