//! What the embedded broker (librdkafka's mock cluster) does with transactions, pinned down
//! because the exactly-once sink is tested on it: it commits them, but a `read_committed`
//! reader also sees the records of an aborted transaction. So the exactly-once sink never
//! aborts for its own reasons (it drops records of rewound partitions before a transaction
//! begins), and its test proves exactly-once only as long as no transaction is aborted.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn a_read_committed_reader_of_the_embedded_broker_sees_aborted_records_too() {
    let cluster = MockCluster::new(1).expect("a mock cluster");
    cluster.create_topic("t", 1, 1).expect("a topic");
    let brokers = cluster.bootstrap_servers();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("transactional.id", "probe")
        .create()
        .expect("a transactional producer");
    producer.init_transactions(TIMEOUT).expect("init");
    for (payload, commit) in [("aborted", false), ("committed", true)] {
        producer.begin_transaction().expect("begin");
        producer
            .send(BaseRecord::<str, str>::to("t").payload(payload))
            .expect("send");
        producer.flush(TIMEOUT).expect("flush");
        if commit {
            producer.commit_transaction(TIMEOUT).expect("commit");
        } else {
            producer.abort_transaction(TIMEOUT).expect("abort");
        }
    }
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "reader")
        .set("isolation.level", "read_committed")
        .create()
        .expect("a reader");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("t", 0, Offset::Beginning)
        .expect("a partition");
    reader.assign(&assignment).expect("assign");
    let mut seen = Vec::new();
    crate::wait::wait_until("both records", TIMEOUT, || {
        if let Some(message) = reader.poll(Duration::from_millis(100)) {
            let message = message.expect("a record");
            seen.push(String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned());
        }
        seen.len() >= 2
    });
    assert_eq!(seen, ["aborted", "committed"]);
}
