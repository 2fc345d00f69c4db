//! Poison records on the embedded broker: 1% of the records are not JSON. Each goes to the
//! dead-letter topic with its origin headers, exactly once by origin; the sink gets the rest;
//! sink + dead letters = produced; commits reach the end (dead letters are acknowledged).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;
use streamvisor_actors::Format;
use streamvisor_actors::KafkaSourceSettings;
use streamvisor_actors::Operation;
use streamvisor_actors::PipelineRecipe;
use streamvisor_actors::Topology;
use streamvisor_supervision::{ChildSpec, RuntimeSettings, SupervisionRuntime, SupervisorSpec};

const WAIT: Duration = Duration::from_secs(60);
const RECORDS: usize = 2_000;
const PARTITIONS: i32 = 2;

#[actix_rt::test]
async fn undecodable_records_go_to_the_dead_letters_once_each_and_are_acknowledged() {
    let metrics = crate::metrics();
    let cluster = MockCluster::new(1).expect("embedded broker");
    cluster
        .create_topic("orders", PARTITIONS, 1)
        .expect("topic");
    cluster
        .create_topic("poison.dead-letters", 1, 1)
        .expect("dead-letter topic");
    let brokers = cluster.bootstrap_servers();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    let mut poisoned = BTreeSet::new();
    for i in 0..RECORDS {
        let partition = (i % PARTITIONS as usize) as i32;
        let offset = (i / PARTITIONS as usize) as i64;
        let value = if i % 100 == 7 {
            poisoned.insert((partition, offset));
            format!("{{\"seq\": {i}, broken")
        } else {
            format!("{{\"seq\":{i}}}")
        };
        producer
            .send(
                BaseRecord::<(), _>::to("orders")
                    .payload(&value)
                    .partition(partition),
            )
            .map_err(|(error, _)| error)
            .expect("queued");
    }
    producer.flush(Duration::from_secs(30)).expect("delivered");
    assert_eq!(poisoned.len(), RECORDS / 100);

    let dir = std::env::temp_dir().join(format!("streamvisor-poison-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let file = dir.join("good.jsonl");
    let mut source = KafkaSourceSettings::new(brokers.clone(), "poison", "orders");
    source.batch_size = 64;
    source.max_unacked = 512;
    source.commit_interval = Duration::from_millis(100);
    let recipe = PipelineRecipe {
        name: "poison".to_owned(),
        source: ("s".to_owned(), source),
        topology: Topology::line(
            vec![("pass".to_owned(), Operation::Passthrough)],
            ("out".to_owned(), file.clone().into()),
        ),
        format: Format::Json,
        dead_letter_topic: "poison.dead-letters".to_owned(),
        readiness: Default::default(),
        sink_faults: Default::default(),
        supervision: Default::default(),
        acks: Default::default(),
        embedded_broker: true,
    };
    let pipelines = SupervisorSpec::builder()
        .child(recipe.child_spec().expect("valid pipeline"))
        .build()
        .expect("valid /pipelines");
    let runtime = SupervisionRuntime::start(
        RuntimeSettings {
            arbiters: 2,
            ..RuntimeSettings::default()
        },
        vec![ChildSpec::supervisor("pipelines", pipelines)],
    )
    .await
    .expect("runtime starts");

    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "dead-letter-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("dead-letter reader");
    reader
        .subscribe(&["poison.dead-letters"])
        .expect("subscribe");
    let mut dead: BTreeMap<(i32, i64), (String, String)> = BTreeMap::new();
    let wanted = poisoned.len();
    crate::wait::wait_for(
        "a dead letter for every poisoned record",
        WAIT,
        async || {
            if dead.len() >= wanted {
                return Ok(());
            }
            let message = match reader.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => message,
                Some(Err(error)) => panic!("dead-letter reader: {error}"),
                None => return Err(format!("{} of {wanted} dead letters", dead.len())),
            };
            let headers = message.headers().expect("dead letters carry headers");
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|header| header.key == name)
                    .and_then(|header| header.value)
                    .map(|value| String::from_utf8_lossy(value).into_owned())
                    .unwrap_or_else(|| panic!("header {name} missing"))
            };
            assert_eq!(header("streamvisor.origin.topic"), "orders");
            let origin = (
                header("streamvisor.origin.partition")
                    .parse()
                    .expect("partition"),
                header("streamvisor.origin.offset").parse().expect("offset"),
            );
            dead.insert(
                origin,
                (header("streamvisor.error"), header("streamvisor.actor")),
            );
            Err(format!("{} of {wanted} dead letters", dead.len()))
        },
    )
    .await;
    let origins: BTreeSet<(i32, i64)> = dead.keys().copied().collect();
    assert_eq!(
        origins, poisoned,
        "every poisoned record, and only those, by origin"
    );
    let (error, actor) = dead.values().next().expect("one dead letter at least");
    assert!(error.starts_with("not JSON"), "{error}");
    assert!(
        actor.starts_with("/pipelines/poison/sources/s/p"),
        "{actor}"
    );

    let good = crate::wait::wait_for("every record written or dead-lettered", WAIT, async || {
        let seen: BTreeSet<(i64, i64)> = crate::lines::json_lines(&file)
            .iter()
            .map(|record| {
                (
                    record["partition"].as_i64().expect("partition"),
                    record["offset"].as_i64().expect("offset"),
                )
            })
            .collect();
        match seen.len() + dead.len() >= RECORDS {
            true => Ok(seen),
            false => Err(format!("sink {} + dead letters {}", seen.len(), dead.len())),
        }
    })
    .await;
    assert_eq!(
        good.len() + dead.len(),
        RECORDS,
        "sink + dead letters = produced"
    );
    let snapshot = metrics.snapshot().into_vec();
    let pipeline = [("pipeline", "poison")];
    let value = |name: &str, labels: &[(&str, &str)]| crate::metric_value(&snapshot, name, labels);
    use streamvisor_actors::metrics::{DEAD_LETTERS, RECORDS_IN, RECORDS_OUT};
    assert_eq!(
        value(RECORDS_IN, &pipeline),
        Some(RECORDS as f64),
        "every record read once"
    );
    // The gauges and histograms of the core are there, with the pipeline's label.
    use streamvisor_actors::metrics::{
        CONSUMER_LAG, DEMAND_OUTSTANDING, OLDEST_UNACKED_AGE, SINK_WRITE_SECONDS, STAGE_LATENCY,
    };
    for name in [
        CONSUMER_LAG,
        DEMAND_OUTSTANDING,
        OLDEST_UNACKED_AGE,
        SINK_WRITE_SECONDS,
        STAGE_LATENCY,
    ] {
        let present = snapshot.iter().any(|(key, _, _, _)| {
            key.key().name() == name
                && key
                    .key()
                    .labels()
                    .any(|label| label.key() == "pipeline" && label.value() == "poison")
        });
        assert!(present, "{name} is emitted");
    }
    // Undecodable records are the source's dead letters (the sink's count refusals).
    assert_eq!(
        value(DEAD_LETTERS, &[("pipeline", "poison"), ("source", "s")]),
        Some(poisoned.len() as f64)
    );
    assert_eq!(
        value(RECORDS_OUT, &pipeline),
        Some((RECORDS - poisoned.len()) as f64)
    );
    println!(
        "poison: produced={RECORDS} sink={} dead_letters={} injected={}",
        good.len(),
        dead.len(),
        poisoned.len()
    );
    runtime
        .shutdown(Duration::from_secs(30))
        .await
        .expect("clean shutdown");
}
