//! Exactly-once never passes the acknowledged prefix, on Apache Kafka through the library: an
//! unordered map_async holds the record at offset 5 back (until the test lets it go) while
//! offsets 0 to 4 and 6 to 99 reach the exactly-once sink. While 5 is in flight, the group's
//! committed offset stays at 5 and a `read_committed` reader sees exactly the records 0 to 4;
//! once 5 is through, the next transaction commits exactly 100 and the reader sees every record
//! once. (A SIGKILL mid-run is `exactly_once.rs`'s.)

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::Message;
use streamvisor::actors::{AsyncRecord, AsyncValue, KafkaSinkSettings, Operation, SinkTarget};
use streamvisor::config::PipelineConfig;
use streamvisor::graph::Pipeline;
use streamvisor::runtime::{Overrides, Runtime};

use crate::support::kafka;
use crate::support::program::{self, Isolation};
use crate::support::wait::wait_for;

const RECORDS: usize = 100;
/// The offset (and seq) held back.
const GAP: i64 = 5;

/// seq -> how many times a `read_committed` reader sees it in `topic`.
fn committed_seqs(brokers: &str, topic: &str) -> BTreeMap<i64, usize> {
    let mut seen = BTreeMap::new();
    for message in program::read_to_end(brokers, topic, 1, Isolation::ReadCommitted) {
        let value: serde_json::Value =
            serde_json::from_slice(message.payload().unwrap_or_default()).expect("JSON");
        *seen.entry(value["seq"].as_i64().expect("seq")).or_default() += 1;
    }
    seen
}

#[actix_rt::test]
async fn a_transaction_commits_no_further_than_a_record_still_in_flight() {
    crate::show_warnings();
    let broker = kafka::broker();
    let id = fastrand::u32(..);
    let (input, output) = (format!("gap-in-{id}"), format!("gap-out-{id}"));
    kafka::create_topic(&broker.brokers, &input, 1).await;
    kafka::create_topic(&broker.brokers, &output, 1).await;
    kafka::produce(&broker.brokers, &input, 1, RECORDS);

    let released = Arc::new(AtomicBool::new(false));
    let held_back = Arc::clone(&released);
    let lookup = Operation::MapAsync {
        function: Arc::new(move |record: AsyncRecord| -> AsyncValue {
            let released = Arc::clone(&held_back);
            Box::pin(async move {
                if record.offset == GAP {
                    while !released.load(Ordering::Acquire) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                Ok(record.value.to_vec())
            })
        }),
        parallelism: 16,
        ordered: false,
    };
    let graph = Pipeline::builder()
        .source("events")
        .stage("lookup", ["events"], lookup)
        .sink(
            "out",
            ["lookup"],
            SinkTarget::KafkaExactlyOnce {
                settings: KafkaSinkSettings {
                    brokers: broker.brokers.clone(),
                    topic: output.clone(),
                    properties: Default::default(),
                },
                max_records: 10_000,
                interval: Duration::from_millis(100),
            },
        )
        .build()
        .expect("a valid graph");
    let settings = format!(
        "name = \"gap-{id}\"\n[flow]\nbatch_size = 10\nmax_unacked_per_partition = 1000\n[kafka]\ngroup = \"{input}\"\n[sources.events]\nkind = \"kafka\"\ntopic = \"{input}\"\n"
    );
    let config = PipelineConfig::parse_settings(&settings, "gap.toml").expect("settings");
    let overrides = Overrides {
        brokers: Some(broker.brokers.clone()),
    };
    let runtime = Runtime::start_graph(config, graph, overrides)
        .await
        .expect("the graph starts");

    // -2: the broker did not answer (its group coordinator loading).
    let committed = || {
        program::committed(&broker.brokers, &input, &input, 1)
            .first()
            .copied()
            .unwrap_or(-2)
    };
    wait_for(
        "offsets 0 to 4 committed",
        Duration::from_secs(60),
        async || match committed() {
            GAP => Ok(()),
            other => Err(format!("committed {other}")),
        },
    )
    .await;
    // Twenty transaction intervals with 6 to 99 at the sink: none passes the gap.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = runtime.partitions().await;
    assert_eq!(
        status
            .iter()
            .map(|partition| (partition.next_offset, partition.unacked))
            .collect::<Vec<_>>(),
        [(100, 95)],
        "every record went on; 5 to 99 wait for their acks"
    );
    assert_eq!(committed(), GAP, "no commit past the record in flight");
    let seen = committed_seqs(&broker.brokers, &output);
    assert_eq!(
        seen,
        (0..GAP)
            .map(|seq| (seq, 1))
            .collect::<BTreeMap<i64, usize>>(),
        "a read_committed reader sees the records before the gap only"
    );

    released.store(true, Ordering::Release);
    wait_for(
        "every offset committed",
        Duration::from_secs(60),
        async || match committed() {
            100 => Ok(()),
            other => Err(format!("committed {other}")),
        },
    )
    .await;
    let seen = committed_seqs(&broker.brokers, &output);
    println!(
        "exactly-once gap: committed 5 while offset 5 was in flight, then 100; read_committed {} records, {} distinct",
        seen.values().sum::<usize>(),
        seen.len()
    );
    assert_eq!(
        seen,
        (0..RECORDS as i64)
            .map(|seq| (seq, 1))
            .collect::<BTreeMap<i64, usize>>(),
        "each record once"
    );
    runtime.shutdown().await.expect("a clean shutdown");
}
