//! The polling thread against the embedded broker (rdkafka's mock cluster): every record
//! delivered in order within demand, commits after acks, rewinds replaying from the committed
//! offset, nothing delivered without demand, a partition paused before its revoke flowing when
//! it is assigned again.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::*;

const WAIT: Duration = Duration::from_secs(30);

#[derive(Debug)]
enum Seen {
    Assigned(i32, u64),
    Rewound(i32, u64),
    Revoked(i32),
    Batch(Batch),
}

struct ChannelOutlet(Sender<Seen>);

impl PartitionOutlet for ChannelOutlet {
    fn assigned(&mut self, partition: i32, incarnation: u64) {
        let _ = self.0.send(Seen::Assigned(partition, incarnation));
    }
    fn rewound(&mut self, partition: i32, incarnation: u64) -> bool {
        self.0.send(Seen::Rewound(partition, incarnation)).is_ok()
    }
    fn revoked(&mut self, partition: i32) {
        let _ = self.0.send(Seen::Revoked(partition));
    }
    fn dispatch(&mut self, batch: Batch) -> Result<(), Batch> {
        self.0
            .send(Seen::Batch(batch))
            .map_err(|error| match error.0 {
                Seen::Batch(batch) => batch,
                _ => unreachable!("only batches are dispatched"),
            })
    }
}

fn cluster_with_topic(
    topic: &str,
    partitions: i32,
) -> MockCluster<'static, DefaultProducerContext> {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(topic, partitions, 1).expect("topic");
    cluster
}

fn produce(brokers: &str, topic: &str, partitions: i32, count: usize) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer");
    for i in 0..count {
        let key = format!("k{i}");
        let value = format!("{{\"seq\":{i}}}");
        let partition = (i % partitions as usize) as i32;
        let mut record = BaseRecord::to(topic)
            .key(&key)
            .payload(&value)
            .partition(partition);
        let queued_since = std::time::Instant::now();
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((error, returned)) => {
                    assert!(
                        queued_since.elapsed() < Duration::from_secs(60),
                        "the producer queue stayed full for a minute: {error}"
                    );
                    record = returned;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(WAIT).expect("every record delivered");
}

fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .expect("offset reader");
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(topic, partition);
    }
    let offsets = consumer
        .committed_offsets(list, WAIT)
        .expect("committed offsets");
    (0..partitions)
        .map(
            |partition| match offsets.find_partition(topic, partition).map(|e| e.offset()) {
                Some(Offset::Offset(offset)) => offset,
                _ => -1,
            },
        )
        .collect()
}

fn next(seen: &Receiver<Seen>, what: &str) -> Seen {
    seen.recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

fn settings(brokers: &str, group: &str, topic: &str) -> KafkaSourceSettings {
    let mut settings = KafkaSourceSettings::new(brokers, group, topic);
    settings.batch_size = 64;
    settings.max_unacked = 256;
    settings.commit_interval = Duration::from_millis(50);
    settings
}

#[test]
fn every_record_arrives_in_order_within_demand_and_is_committed_after_its_ack() {
    let (topic, partitions, count) = ("events", 4, 2_000);
    let cluster = cluster_with_topic(topic, partitions);
    let brokers = cluster.bootstrap_servers();
    produce(&brokers, topic, partitions, count);
    let (tx, seen) = mpsc::channel();
    let source = KafkaSource::start(
        settings(&brokers, "in-order", topic),
        Box::new(ChannelOutlet(tx)),
    )
    .expect("source starts");
    let handle = source.handle();

    let mut next_offset: BTreeMap<i32, i64> = BTreeMap::new();
    let mut granted: BTreeMap<i32, u64> = BTreeMap::new();
    let mut received = 0;
    while received < count {
        match next(&seen, &format!("records ({received} of {count} so far)")) {
            Seen::Assigned(partition, incarnation) => {
                assert_eq!(incarnation, 1);
                next_offset.insert(partition, 0);
                granted.insert(partition, 100);
                handle.send(SourceInput::Grant {
                    partition,
                    incarnation,
                    records: 100,
                });
            }
            Seen::Batch(batch) => {
                let partition = batch.partition();
                let len = batch.len() as u64;
                let left = granted.get_mut(&partition).expect("assigned first");
                assert!(len <= *left, "a batch of {len} with only {left} granted");
                *left -= len;
                let expected = next_offset.get_mut(&partition).expect("assigned first");
                for record in batch.iter() {
                    assert_eq!(record.offset, *expected, "partition {partition} in order");
                    assert_eq!(
                        record.key,
                        Some(format!("k{}", record.offset * 4 + i64::from(partition)).as_bytes())
                    );
                    *expected += 1;
                }
                received += batch.len();
                handle.send(SourceInput::Ack {
                    partition,
                    incarnation: batch.incarnation(),
                    offsets: batch.offsets().collect(),
                    paths: 1,
                });
                *left += len;
                handle.send(SourceInput::Grant {
                    partition,
                    incarnation: batch.incarnation(),
                    records: len,
                });
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(received, count);
    let deadline = Instant::now() + WAIT;
    while committed(&brokers, "in-order", topic, partitions) != vec![500; 4] {
        assert!(
            Instant::now() < deadline,
            "commits never reached the end of every partition"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    source.shutdown().expect("clean shutdown");
}

#[test]
fn nothing_arrives_without_demand_and_a_rewind_replays_from_the_committed_offset() {
    let (topic, partitions) = ("rewind", 1);
    let cluster = cluster_with_topic(topic, partitions);
    let brokers = cluster.bootstrap_servers();
    produce(&brokers, topic, partitions, 300);
    let (tx, seen) = mpsc::channel();
    let mut source_settings = settings(&brokers, "rewinder", topic);
    source_settings.batch_size = 10;
    source_settings.commit_max_records = 20;
    source_settings.commit_interval = Duration::from_secs(60);
    // Records stay unacknowledged at the end on purpose: do not wait the default 5 s for them.
    source_settings.drain_timeout = Duration::from_millis(200);
    let source =
        KafkaSource::start(source_settings, Box::new(ChannelOutlet(tx))).expect("source starts");
    let handle = source.handle();

    let Seen::Assigned(0, 1) = next(&seen, "assignment") else {
        panic!("expected partition 0 assigned at incarnation 1");
    };
    assert!(
        seen.recv_timeout(Duration::from_millis(500)).is_err(),
        "nothing may arrive before demand is granted"
    );
    handle.send(SourceInput::Grant {
        partition: 0,
        incarnation: 1,
        records: 50,
    });
    let mut batches = Vec::new();
    while batches.iter().map(Batch::len).sum::<usize>() < 50 {
        match next(&seen, "the first 50 records") {
            Seen::Batch(batch) => batches.push(batch),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        seen.recv_timeout(Duration::from_millis(300)).is_err(),
        "no record beyond the 50 granted"
    );
    // Acknowledge offsets 0..30 (batch by batch, last first), keep 30..50 in flight, then fail.
    // (Batch sizes vary: a partial batch leaves after a poll timeout.)
    for batch in batches.iter().rev() {
        let offsets: Vec<i64> = batch.offsets().filter(|offset| *offset < 30).collect();
        if !offsets.is_empty() {
            handle.send(SourceInput::Ack {
                partition: 0,
                incarnation: 1,
                offsets,
                paths: 1,
            });
        }
    }
    let deadline = Instant::now() + WAIT;
    while committed(&brokers, "rewinder", topic, 1) != vec![30] {
        assert!(
            Instant::now() < deadline,
            "the acknowledged prefix was never committed: {:?}",
            committed(&brokers, "rewinder", topic, 1)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    handle.send(SourceInput::Rewind {
        partition: 0,
        incarnation: Some(1),
    });
    let Seen::Rewound(0, 2) = next(&seen, "the rewind") else {
        panic!("expected partition 0 rewound to incarnation 2");
    };
    // A late ack from the failed incarnation changes nothing.
    handle.send(SourceInput::Ack {
        partition: 0,
        incarnation: 1,
        offsets: (30..40).collect(),
        paths: 1,
    });
    handle.send(SourceInput::Grant {
        partition: 0,
        incarnation: 1,
        records: 1_000,
    });
    // A stale grant gives no demand; it tells the partition's actor its incarnation again
    // (its actor missed the rewind), and nothing else.
    let Seen::Rewound(0, 2) = next(&seen, "the rewind told again") else {
        panic!("expected partition 0's incarnation 2 told again");
    };
    // A failure reported late about incarnation 1 does not rewind incarnation 2.
    handle.send(SourceInput::Rewind {
        partition: 0,
        incarnation: Some(1),
    });
    assert!(
        seen.recv_timeout(Duration::from_millis(300)).is_err(),
        "stale grants give no demand, and a stale failure no rewind"
    );
    handle.send(SourceInput::Grant {
        partition: 0,
        incarnation: 2,
        records: 10,
    });
    // The replay: the 10 granted records from the acknowledged prefix, in order (possibly in
    // several batches: a partial batch leaves after a poll timeout).
    let mut replayed = Vec::new();
    while replayed.len() < 10 {
        let Seen::Batch(batch) = next(&seen, "the replay") else {
            panic!("expected a replayed batch");
        };
        assert_eq!(batch.incarnation(), 2);
        replayed.extend(batch.offsets());
    }
    assert_eq!(replayed, (30..40).collect::<Vec<_>>());
    assert!(
        seen.recv_timeout(Duration::from_millis(300)).is_err(),
        "no record beyond the 10 granted"
    );
    source.shutdown().expect("clean shutdown");
    assert_eq!(
        committed(&brokers, "rewinder", topic, 1),
        vec![30],
        "never ahead of an ack"
    );
}

/// Waits until the source holds partition 0 back (`want`) or lets it flow, or fails naming
/// `what`.
fn wait_held_back(handle: &SourceHandle, want: bool, what: &str) {
    let deadline = Instant::now() + WAIT;
    while handle.holds_back(0) != want {
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_paused_partition_is_held_back_until_demand_and_acks_let_it_flow() {
    let (topic, partitions) = ("held-back", 1);
    let cluster = cluster_with_topic(topic, partitions);
    let brokers = cluster.bootstrap_servers();
    produce(&brokers, topic, partitions, 300);
    let (tx, seen) = mpsc::channel();
    let source = KafkaSource::start(
        settings(&brokers, "held-back", topic),
        Box::new(ChannelOutlet(tx)),
    )
    .expect("source starts");
    let handle = source.handle();
    let Seen::Assigned(0, 1) = next(&seen, "assignment") else {
        panic!("expected partition 0 assigned at incarnation 1");
    };
    // No demand: the read-ahead fills (the cap, 256 records) and the partition pauses.
    wait_held_back(&handle, true, "partition 0 held back without demand");
    handle.send(SourceInput::Grant {
        partition: 0,
        incarnation: 1,
        records: 300,
    });
    let mut received = 0;
    while received < 300 {
        let Seen::Batch(batch) = next(&seen, "the 300 records") else {
            panic!("expected a batch");
        };
        received += batch.len();
        handle.send(SourceInput::Ack {
            partition: 0,
            incarnation: 1,
            offsets: batch.offsets().collect(),
            paths: 1,
        });
    }
    // More than the cap came: the partition resumed, and with every record acknowledged it
    // flows (nothing is left to hold it back).
    wait_held_back(
        &handle,
        false,
        "partition 0 flowing once demand and acks made room",
    );
    source.shutdown().expect("clean shutdown");
}

/// librdkafka keeps a partition's pause across a revoke and a new assignment: a partition that
/// was paused (read-ahead full, no demand) when it was revoked must flow when it comes back.
#[test]
fn a_partition_paused_before_its_revoke_flows_when_it_is_assigned_again() {
    let (topic, partitions, group) = ("reassigned", 2, "reassigned");
    let cluster = cluster_with_topic(topic, partitions);
    let brokers = cluster.bootstrap_servers();
    produce(&brokers, topic, partitions, 2_000);
    let (tx, seen) = mpsc::channel();
    let mut source_settings = settings(&brokers, group, topic);
    source_settings.drain_timeout = Duration::from_millis(200);
    for (key, value) in [
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "500"),
        ("max.poll.interval.ms", "10000"),
    ] {
        source_settings
            .properties
            .insert(key.to_owned(), value.to_owned());
    }
    let source =
        KafkaSource::start(source_settings, Box::new(ChannelOutlet(tx))).expect("source starts");
    let handle = source.handle();
    let mut assigned = 0;
    while assigned < partitions {
        match next(&seen, "the first assignment") {
            Seen::Assigned(_, 1) => assigned += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    // No demand: each partition reads ahead to its cap, drops the next record and pauses.
    std::thread::sleep(Duration::from_millis(500));

    // A second member joins: cooperative-sticky moves one partition to it.
    let other: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", group)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("max.poll.interval.ms", "10000")
        .create()
        .expect("a second member");
    other.subscribe(&[topic]).expect("it subscribes");
    let deadline = Instant::now() + WAIT;
    while other.assignment().map_or(0, |list| list.count()) == 0 {
        let _ = other.poll(Duration::from_millis(50));
        assert!(
            Instant::now() < deadline,
            "the second member never got a partition"
        );
    }
    let moved = match next(&seen, "the revoke of one partition") {
        Seen::Revoked(partition) => partition,
        other => panic!("unexpected {other:?}"),
    };
    // It leaves: the partition comes back, at its next incarnation.
    drop(other);
    let incarnation = match next(&seen, "the partition assigned again") {
        Seen::Assigned(partition, incarnation) if partition == moved => incarnation,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(incarnation, 2);
    handle.send(SourceInput::Grant {
        partition: moved,
        incarnation,
        records: 100,
    });
    let batch = match next(&seen, "records of the partition assigned again") {
        Seen::Batch(batch) if batch.partition() == moved => batch,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(batch.incarnation(), 2);
    assert_eq!(
        batch.offsets().next(),
        Some(0),
        "nothing was committed: from the start"
    );
    source.shutdown().expect("clean shutdown");
}

#[test]
fn a_missing_topic_is_a_clear_error() {
    let cluster = cluster_with_topic("present", 1);
    let brokers = cluster.bootstrap_servers();
    let (tx, _seen) = mpsc::channel();
    let error = KafkaSource::start(
        settings(&brokers, "missing", "absent"),
        Box::new(ChannelOutlet(tx)),
    )
    .err()
    .expect("a missing topic is refused");
    assert!(
        error
            .to_string()
            .contains("topic \"absent\" does not exist"),
        "{error}"
    );
}
