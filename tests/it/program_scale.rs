//! The scale-out test: a second `streamvisor run` process joins the group of a first; the two
//! share the 8 partitions of a topic (both write records); the second is SIGKILLed mid-run; the
//! first takes its partitions over (the pipeline lowers session.timeout.ms) and finishes them. Nothing is lost:
//! the two files together, deduped, hold every record.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::program::{self, Program, SinkFile};
use crate::tansu;

const RECORDS: usize = 100_000;
const PARTITIONS: i32 = 8;
const WAIT: Duration = Duration::from_secs(300);

#[test]
fn a_second_process_shares_the_partitions_and_takes_them_over_when_the_first_dies() {
    let broker = tansu::broker();
    let _one_at_a_time = tansu::group_tests_one_at_a_time();
    let dir = program::test_dir("scale");
    let topic = format!("scale-{}", std::process::id());
    let group = format!("scale-{}", std::process::id());
    program::produce_count(&broker.brokers, &topic, RECORDS, PARTITIONS);
    let pipeline = program::Passthrough {
        name: "scale",
        group: &group,
        topic: &topic,
        tables: "[flow]\nbatch_size = 250\nmax_unacked_per_partition = 1000\n\
                 [commit]\ninterval = \"500ms\"",
        kafka_properties: program::QUICK_GROUP_FAILOVER,
        // About 5,000 records a second per process: both are still at work when one dies.
        sink: "delay_per_batch = \"50ms\"",
        ..Default::default()
    }
    .write(&dir);
    let (dir_a, dir_b) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&dir_a).expect("a's folder");
    std::fs::create_dir_all(&dir_b).expect("b's folder");
    let (file_a, file_b) = (dir_a.join("out/scale.jsonl"), dir_b.join("out/scale.jsonl"));

    // a starts first and leads the group; b joins it, as a second process does when an operator
    // scales out. (tansu 0.6 does not reassign a group whose leader died while another member
    // waits: here the follower dies.)
    let mut a = Program::start(&dir_a, &pipeline, Some(&broker.brokers), "a");
    program::wait_until("a writing records", WAIT, || {
        a.assert_alive();
        SinkFile::count_lines(&file_a) > 0
    });
    let mut b = Program::start(&dir_b, &pipeline, Some(&broker.brokers), "b");
    program::wait_until("both processes writing records", WAIT, || {
        a.assert_alive();
        b.assert_alive();
        SinkFile::count_lines(&file_a) > 0 && SinkFile::count_lines(&file_b) > 0
    });
    // Let both work a little, then kill b mid-run.
    program::wait_until("b to write 2,000 records", WAIT, || {
        b.assert_alive();
        SinkFile::count_lines(&file_b) >= 2_000
    });
    b.signal("KILL");
    b.wait_exit(Duration::from_secs(10));
    let from_b = SinkFile::read(&file_b);
    let b_partitions: BTreeSet<i32> = from_b.records.keys().map(|(p, _)| *p).collect();
    let a_partitions_before: BTreeSet<i32> = SinkFile::read(&file_a)
        .records
        .keys()
        .map(|(p, _)| *p)
        .collect();
    assert!(
        from_b.records.len() < RECORDS / 2,
        "b was killed mid-run ({} records written)",
        from_b.records.len()
    );

    program::wait_until_or(
        "every record in the two files",
        WAIT,
        || {
            a.assert_alive();
            let mut all = SinkFile::read(&file_a).records;
            all.extend(SinkFile::read(&file_b).records);
            all.len() >= RECORDS
        },
        || {
            let tail = |path: std::path::PathBuf| {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(30)..].join("\n")
            };
            format!(
                "a's log:\n{}\nb's log:\n{}",
                tail(dir_a.join("a.log")),
                tail(dir_b.join("b.log"))
            )
        },
    );
    program::wait_until("commits at every partition's end", WAIT, || {
        program::lag(&broker.brokers, &group, &topic, PARTITIONS) == 0
    });
    a.signal("TERM");
    let status = a.wait_exit(Duration::from_secs(60));
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM exits 0; log:\n{}",
        a.log_tail()
    );

    let from_a = SinkFile::read(&file_a);
    let mut all = from_a.records.clone();
    all.extend(from_b.records.clone());
    let seqs: BTreeSet<i64> = all.values().copied().collect();
    // a finished b's partitions: it holds the last record of each.
    let last_offset = (RECORDS / PARTITIONS as usize) as i64 - 1;
    let taken_over: Vec<i32> = b_partitions
        .iter()
        .copied()
        .filter(|partition| from_a.records.contains_key(&(*partition, last_offset)))
        .collect();
    println!(
        "scale-out: produced={RECORDS} distinct={} lost={} from_a={} from_b={} b_partitions={b_partitions:?} \
         a_partitions_before_kill={a_partitions_before:?} taken_over={taken_over:?}",
        all.len(),
        RECORDS.saturating_sub(seqs.len()),
        from_a.records.len(),
        from_b.records.len(),
    );
    assert_eq!(all.len(), RECORDS);
    assert_eq!(seqs, (0..RECORDS as i64).collect::<BTreeSet<i64>>());
    assert!(!b_partitions.is_empty(), "b received records");
    assert_eq!(
        taken_over.len(),
        b_partitions.len(),
        "a finished every partition b held"
    );
}
