//! No silent loss from offset resets, through the real program against Apache Kafka: while a
//! slow sink holds the partitions paused at their cap, the broker deletes the first 3,000
//! records of each partition (DeleteRecords, as retention would). The runtime, not librdkafka,
//! decides where the partitions go on: the range deleted before it was read is counted in
//! `streamvisor_records_lost_total` exactly, logged as an error, and skipped; everything else
//! reaches the file once; the commits reach the ends.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::support::kafka;
use crate::support::program::{self, Program, SinkFile};
use crate::support::wait;

const PARTITIONS: i32 = 2;
const PER_PARTITION: i64 = 5_000;
const DELETED_BELOW: i64 = 3_000;

/// `streamvisor_records_lost_total` by partition, from the program's `/metrics`.
fn lost(program: &Program) -> BTreeMap<i32, i64> {
    let body = program
        .get("/metrics")
        .map(|answer| answer.body)
        .unwrap_or_default();
    body.lines()
        .filter(|line| line.starts_with("streamvisor_records_lost_total{"))
        .filter_map(|line| {
            let partition = line
                .split("partition=\"")
                .nth(1)?
                .split('"')
                .next()?
                .parse()
                .ok()?;
            let value = line.rsplit(' ').next()?.parse::<f64>().ok()?;
            Some((partition, value as i64))
        })
        .collect()
}

#[test]
fn records_deleted_before_they_were_read_are_counted_lost_and_nothing_else_is() {
    crate::show_warnings();
    let broker = kafka::broker();
    let topic = format!("retention-{}", fastrand::u32(..));
    actix_rt::Runtime::new()
        .expect("a runtime")
        .block_on(kafka::create_topic(&broker.brokers, &topic, PARTITIONS));
    kafka::produce(
        &broker.brokers,
        &topic,
        PARTITIONS,
        (PER_PARTITION * i64::from(PARTITIONS)) as usize,
    );
    let dir = program::test_dir(&topic);
    let out = dir.join("out/retention.jsonl");
    let text = format!(
        "name = \"retention\"\n[flow]\nbatch_size = 100\nmax_unacked_per_partition = 500\n\
         [kafka]\ngroup = \"{topic}\"\n[sources.events]\nkind = \"kafka\"\ntopic = \"{topic}\"\n\
         partitions = {PARTITIONS}\n[stages.pass]\ninputs = [\"events\"]\nop = \"passthrough\"\n\
         [sinks.out]\ninputs = [\"pass\"]\nkind = \"file\"\npath = \"{}\"\n\
         delay_per_batch = \"100ms\"\n",
        out.display()
    );
    let pipeline = dir.join("retention.toml");
    std::fs::write(&pipeline, text).expect("pipeline file");
    let mut program = Program::start(&dir, &pipeline, Some(&broker.brokers), "retention");
    program.wait_ready(Duration::from_secs(60));
    wait::wait_until(
        "the first records in the file",
        Duration::from_secs(60),
        || SinkFile::count_lines(&out) >= 100,
    );
    assert!(
        lost(&program).values().all(|lost| *lost == 0),
        "present at zero from the assignment: {:?}",
        lost(&program)
    );

    // The broker deletes what the slow sink has not let the partitions read yet.
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.brokers)
        .create()
        .expect("an admin client");
    let mut below = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        below
            .add_partition_offset(&topic, partition, Offset::Offset(DELETED_BELOW))
            .expect("a partition");
    }
    let deleted = actix_rt::Runtime::new()
        .expect("a runtime")
        .block_on(admin.delete_records(&below, &AdminOptions::new()))
        .expect("records deleted");
    for element in deleted.elements() {
        assert_eq!(
            element.offset(),
            Offset::Offset(DELETED_BELOW),
            "{element:?}"
        );
    }
    let read_before = SinkFile::count_lines(&out);
    assert!(
        read_before < (DELETED_BELOW * i64::from(PARTITIONS)) as usize,
        "the deletion came before the partitions read that far: {read_before} lines"
    );

    let log_file = program.log_file();
    wait::wait_until_or(
        "the commits at the ends",
        Duration::from_secs(120),
        || {
            program.assert_alive();
            program::committed(&broker.brokers, &topic, &topic, PARTITIONS)
                == vec![PER_PARTITION; PARTITIONS as usize]
        },
        || program::tail_of(&log_file),
    );
    let lost = lost(&program);
    let log = program.log();
    program.signal("TERM");
    assert!(program.wait_exit(Duration::from_secs(60)).success());

    let written = SinkFile::read(&out);
    println!(
        "retention: lost by partition {lost:?}, {} distinct records written, {} lines",
        written.records.len(),
        written.lines
    );
    for partition in 0..PARTITIONS {
        let offsets: BTreeSet<i64> = written
            .records
            .keys()
            .filter(|(p, _)| *p == partition)
            .map(|(_, offset)| *offset)
            .collect();
        // Read before the deletion: a prefix from 0; after it, every record from 3,000 on.
        let before: Vec<i64> = offsets.range(..DELETED_BELOW).copied().collect();
        let read = before.len() as i64;
        assert_eq!(
            before,
            (0..read).collect::<Vec<_>>(),
            "partition {partition}: a prefix"
        );
        assert_eq!(
            offsets.range(DELETED_BELOW..).count() as i64,
            PER_PARTITION - DELETED_BELOW,
            "partition {partition}: everything the broker kept"
        );
        assert_eq!(
            lost.get(&partition).copied(),
            Some(DELETED_BELOW - read),
            "partition {partition}: exactly the range deleted before it was read"
        );
        assert!(
            read < DELETED_BELOW,
            "partition {partition} lost nothing: the test tested nothing"
        );
    }
    assert!(
        log.contains("records deleted by the broker before they were read"),
        "the loss is an error in the log"
    );
}

/// Gaps that are not loss never count: an input topic written in transactions (each commit
/// marker takes an offset, and an aborted transaction's records are skipped by the source's
/// `read_committed` consumer) gives `streamvisor_records_lost_total == 0` and every committed
/// record written once. (The commits stop before each partition's last marker: a lag of one.)
#[test]
fn a_transactional_input_topic_loses_nothing() {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

    crate::show_warnings();
    const TRANSACTIONS: i64 = 10;
    const PER_TRANSACTION: i64 = 100;
    let broker = kafka::broker();
    let topic = format!("txn-input-{}", fastrand::u32(..));
    actix_rt::Runtime::new()
        .expect("a runtime")
        .block_on(kafka::create_topic(&broker.brokers, &topic, PARTITIONS));
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.brokers)
        .set("transactional.id", format!("{topic}-writer"))
        .create()
        .expect("a transactional producer");
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout).expect("init");
    let mut committed = BTreeSet::new();
    for transaction in 0..TRANSACTIONS {
        producer.begin_transaction().expect("begin");
        for i in 0..PER_TRANSACTION {
            let seq = transaction * PER_TRANSACTION + i;
            let value = format!("{{\"seq\":{seq}}}");
            let key = format!("k{seq}");
            producer
                .send(
                    BaseRecord::to(&topic)
                        .key(&key)
                        .payload(&value)
                        .partition((seq % 2) as i32),
                )
                .map_err(|(error, _)| error)
                .expect("queued");
            if transaction != 3 {
                committed.insert(seq);
            }
        }
        if transaction == 3 {
            producer.abort_transaction(timeout).expect("abort");
        } else {
            producer.commit_transaction(timeout).expect("commit");
        }
    }
    let dir = program::test_dir(&topic);
    let out = dir.join(format!("out/{topic}.jsonl"));
    let pipeline = program::Passthrough {
        name: &topic,
        group: &topic,
        topic: &topic,
        ..program::Passthrough::default()
    }
    .write(&dir);
    let mut program = Program::start(&dir, &pipeline, Some(&broker.brokers), &topic);
    program.wait_ready(Duration::from_secs(60));
    wait::wait_until(
        "every committed record written",
        Duration::from_secs(120),
        || SinkFile::count_lines(&out) >= committed.len(),
    );
    let lost = program.metric_sum("streamvisor_records_lost_total");
    program.signal("INT");
    program.wait_exit(Duration::from_secs(60));
    let written = SinkFile::read(&out);
    let seqs: BTreeSet<i64> = written.records.values().copied().collect();
    println!(
        "transactional input: committed={} written={} lost={lost}",
        committed.len(),
        written.lines
    );
    assert_eq!(lost, 0.0, "markers and aborted records are no loss");
    assert_eq!(
        seqs, committed,
        "every committed record, and no aborted one"
    );
    assert_eq!(written.lines, committed.len(), "each once");
}
