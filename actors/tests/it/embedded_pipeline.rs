//! A passthrough pipeline on the embedded broker (rdkafka's mock cluster), under kills of its
//! partition actors, stage actors and sink in both modes: the file holds every record, committed
//! offsets reach the end of every partition.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use streamvisor_actors::Format;
use streamvisor_actors::KafkaSourceSettings;
use streamvisor_actors::Operation;
use streamvisor_actors::PipelineRecipe;
use streamvisor_actors::Topology;
use streamvisor_supervision::{
    ChildSpec, KillMode, Lifecycle, RuntimeSettings, SupervisionRuntime, SupervisorSettings,
    SupervisorSpec,
};

const WAIT: Duration = Duration::from_secs(60);
const PARTITIONS: i32 = 4;
const RECORDS: usize = 20_000;
const MAX_UNACKED: usize = 200;

fn produce(brokers: &str, topic: &str) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer");
    for i in 0..RECORDS {
        let key = format!("k{}", i % 1000);
        let value = format!("{{\"key\":\"{key}\",\"seq\":{i}}}");
        let mut record = BaseRecord::to(topic)
            .key(&key)
            .payload(&value)
            .partition((i % PARTITIONS as usize) as i32);
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
    producer
        .flush(Duration::from_secs(30))
        .expect("every record delivered");
}

/// (partition, offset) -> seq, from the sink's file (duplicates collapse).
fn distinct_lines(path: &Path) -> (BTreeMap<(i64, i64), i64>, usize) {
    let records = crate::lines::json_lines(path);
    let mut distinct = BTreeMap::new();
    for record in &records {
        let key = (
            record["partition"].as_i64().expect("partition"),
            record["offset"].as_i64().expect("offset"),
        );
        distinct.insert(key, record["value"]["seq"].as_i64().expect("seq"));
    }
    (distinct, records.len())
}

fn committed(brokers: &str, group: &str, topic: &str) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .expect("offset reader");
    let mut list = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        list.add_partition(topic, partition);
    }
    let offsets = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .expect("committed offsets");
    (0..PARTITIONS)
        .map(
            |partition| match offsets.find_partition(topic, partition).map(|e| e.offset()) {
                Some(Offset::Offset(offset)) => offset,
                _ => -1,
            },
        )
        .collect()
}

#[actix_rt::test]
async fn nothing_is_lost_under_kills_of_partition_stage_and_sink_actors() {
    let cluster = MockCluster::new(1).expect("embedded broker");
    cluster
        .create_topic("events", PARTITIONS, 1)
        .expect("topic");
    let brokers = cluster.bootstrap_servers();
    produce(&brokers, "events");

    let dir = std::env::temp_dir().join(format!("streamvisor-embedded-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let file = dir.join("out/passthrough.jsonl");
    let mut source = KafkaSourceSettings::new(brokers.clone(), "embedded-chaos", "events");
    source.batch_size = 50;
    source.max_unacked = MAX_UNACKED;
    source.commit_interval = Duration::from_millis(100);
    let recipe = PipelineRecipe {
        name: "p".to_owned(),
        source: ("s".to_owned(), source),
        topology: Topology::line(
            vec![("pass".to_owned(), Operation::Passthrough)],
            ("out".to_owned(), file.clone().into()),
        )
        .with_sink_delay(Duration::from_millis(2), None),
        format: Format::Json,
        dead_letter_topic: "p.dead-letters".to_owned(),
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
    // Kills are failures: raise the intensity for this test (DESIGN.md allows it, saying so).
    quiet_intended_panics();
    let runtime = SupervisionRuntime::start(
        settings_with_intensity(),
        vec![ChildSpec::supervisor("pipelines", pipelines)],
    )
    .await
    .expect("runtime starts");
    let mut events = runtime.subscribe();

    let seed = fastrand::u64(..);
    let mut rng = fastrand::Rng::with_seed(seed);
    let targets: Vec<String> = (0..PARTITIONS)
        .flat_map(|p| {
            [
                format!("/pipelines/p/sources/s/p{p}"),
                format!("/pipelines/p/stages/pass/p{p}"),
            ]
        })
        .chain(["/pipelines/p/sinks/out".to_owned()])
        .collect();
    // Kill while records flow: after the first reach the file, before the last.
    crate::wait::wait_for("a twentieth of the records in the file", WAIT, async || {
        match distinct_lines(&file).0.len() {
            written if written >= RECORDS / 20 => Ok(()),
            written => Err(format!("{written} written")),
        }
    })
    .await;
    let began = Instant::now();
    let mut kills = 0;
    let mut duplicate_bound = 0;
    while kills < 12 {
        assert!(
            began.elapsed() < WAIT,
            "only {kills} kills landed in {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
        let target = &targets[rng.usize(..targets.len())];
        let mode = if rng.bool() {
            KillMode::Stop
        } else {
            KillMode::Panic
        };
        if runtime.kill(target, mode).is_ok() {
            kills += 1;
            // A rewind replays at most the unacked cap of each partition it rewinds.
            let rewound = if target.contains("/sinks/") {
                PARTITIONS as usize
            } else {
                1
            };
            duplicate_bound += MAX_UNACKED * rewound;
        }
    }
    let (flowed, _) = distinct_lines(&file);
    assert!(
        flowed.len() < RECORDS,
        "the kills landed while records still flowed"
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let (distinct, _) = distinct_lines(&file);
        if distinct.len() == RECORDS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {RECORDS} records reached the file",
            distinct.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + WAIT;
    while committed(&brokers, "embedded-chaos", "events")
        != vec![(RECORDS / PARTITIONS as usize) as i64; PARTITIONS as usize]
    {
        assert!(
            Instant::now() < deadline,
            "commits never reached the end: {:?}",
            committed(&brokers, "embedded-chaos", "events")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (distinct, lines) = distinct_lines(&file);
    for ((partition, offset), seq) in &distinct {
        assert_eq!(
            *seq,
            offset * i64::from(PARTITIONS) + partition,
            "the value of {partition}/{offset}"
        );
    }
    let mut restarts = 0;
    let mut escalations = 0;
    while let Ok(event) = events.try_recv() {
        match event.event {
            Lifecycle::Restarted { .. } => restarts += 1,
            Lifecycle::Escalated => escalations += 1,
            _ => {}
        }
    }
    println!(
        "chaos(embedded): produced={RECORDS} distinct={} lost=0 duplicates={} kills={kills} \
         restarts={restarts} seed={seed}",
        distinct.len(),
        lines - distinct.len()
    );
    assert_eq!(escalations, 0);
    assert!(
        lines - distinct.len() <= duplicate_bound,
        "duplicates {} above the bound {duplicate_bound} (unacked cap x partitions rewound)",
        lines - distinct.len()
    );
    assert!(
        restarts >= kills,
        "every kill restarted its actor: {restarts} restarts, {kills} kills"
    );
    runtime
        .shutdown(Duration::from_secs(30))
        .await
        .expect("clean shutdown");
}

/// Silences the panic hook for the panics the kills cause on purpose.
fn quiet_intended_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let text = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !text.starts_with("killed by request") {
                default(info);
            }
        }));
    });
}

fn settings_with_intensity() -> RuntimeSettings {
    // Kills are failures: raise the intensity for this test (DESIGN.md allows it, saying so).
    RuntimeSettings {
        arbiters: 2,
        root: SupervisorSettings {
            max_restarts: 1_000,
            within: Duration::from_secs(10),
            ..SupervisorSettings::default()
        },
        ..RuntimeSettings::default()
    }
}
