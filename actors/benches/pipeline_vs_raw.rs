//! streamvisor consume -> passthrough -> file sink -> commit, against a raw rdkafka consumer loop
//! writing the same lines with the same commit policy, on the same pre-filled topic (1,000,000
//! records over 8 partitions on the embedded broker), in one run. Prints both rates (timed from
//! the first record written to the last) and CPU-seconds per million records, and the ratios.
//!
//! Run: `cargo bench -p streamvisor-actors --bench pipeline_vs_raw` (goals: rate >= 0.85x raw,
//! CPU per record <= 1.3x raw). Three rounds of each side in turn (fresh consumer groups); the
//! best rate and the least CPU of each side count. The in-process broker bounds both rates; CPU is the real cost
//! (the broker's own CPU is in both figures).
#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use streamvisor_actors::encode_line;
use streamvisor_actors::Format;
use streamvisor_actors::KafkaSourceSettings;
use streamvisor_actors::Operation;
use streamvisor_actors::PipelineRecipe;
use streamvisor_actors::RecordRef;
use streamvisor_actors::Topology;
use streamvisor_supervision::{ChildSpec, RuntimeSettings, SupervisionRuntime, SupervisorSpec};

#[path = "support/cpu.rs"]
mod cpu;
use cpu::cpu_seconds;

const RECORDS: usize = 1_000_000;
const PARTITIONS: i32 = 8;
const TOPIC: &str = "bench";
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
const COMMIT_MAX_RECORDS: usize = 5_000;
/// Rounds of each side, in turn; the best figures count.
const ROUNDS: usize = 3;

fn fill(brokers: &str) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    for i in 0..RECORDS {
        let key = format!("k{}", i % 1000);
        let value = format!("{{\"key\":\"{key}\",\"seq\":{i}}}");
        let mut record = BaseRecord::to(TOPIC)
            .key(&key)
            .payload(&value)
            .partition((i % PARTITIONS as usize) as i32);
        while let Err((_, returned)) = producer.send(record) {
            record = returned;
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
}

/// The baseline: one consumer, lines appended and fsynced every 256 KiB, commits by interval
/// and count after the write.
fn raw(brokers: &str, group: &str, path: &Path) -> (Duration, f64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[TOPIC]).unwrap();
    let mut file = File::create(path).unwrap();
    let mut buffer = Vec::new();
    let mut next: Vec<i64> = vec![0; PARTITIONS as usize];
    let (mut written, mut since_commit) = (0, 0);
    let mut last_commit = Instant::now();
    let mut first: Option<(Instant, f64)> = None;
    while written < RECORDS {
        let Some(message) = consumer.poll(Duration::from_millis(10)) else {
            continue;
        };
        let message = message.unwrap();
        first.get_or_insert_with(|| (Instant::now(), cpu_seconds()));
        let record = RecordRef {
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            key: message.key(),
            value: message.payload().unwrap_or_default(),
            index: None,
        };
        encode_line(&mut buffer, TOPIC, message.partition(), &record, None);
        next[message.partition() as usize] = message.offset() + 1;
        written += 1;
        since_commit += 1;
        if buffer.len() > 256 * 1024 || written == RECORDS {
            file.write_all(&buffer).unwrap();
            file.sync_data().unwrap();
            buffer.clear();
            let due =
                since_commit >= COMMIT_MAX_RECORDS || last_commit.elapsed() >= COMMIT_INTERVAL;
            if due || written == RECORDS {
                let mut offsets = TopicPartitionList::new();
                for (partition, offset) in next.iter().enumerate() {
                    offsets
                        .add_partition_offset(TOPIC, partition as i32, Offset::Offset(*offset))
                        .unwrap();
                }
                consumer.commit(&offsets, CommitMode::Async).unwrap();
                since_commit = 0;
                last_commit = Instant::now();
            }
        }
    }
    let (began, cpu) = first.unwrap();
    (began.elapsed(), cpu_seconds() - cpu)
}

fn lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|bytes| bytes.iter().filter(|b| **b == b'\n').count())
        .unwrap_or(0)
}

/// `expected_bytes`: the raw run's file size (the same lines, so the same bytes): watching the
/// size costs nothing, counting lines would cost more CPU than the pipeline.
async fn streamvisor(
    brokers: &str,
    group: &str,
    path: &Path,
    expected_bytes: u64,
) -> (Duration, f64) {
    let mut source = KafkaSourceSettings::new(brokers, group, TOPIC);
    source.commit_interval = COMMIT_INTERVAL;
    source.commit_max_records = COMMIT_MAX_RECORDS as i64;
    let recipe = PipelineRecipe {
        name: "bench".to_owned(),
        source: ("s".to_owned(), source),
        topology: Topology::line(
            vec![("pass".to_owned(), Operation::Passthrough)],
            ("out".to_owned(), path.to_path_buf().into()),
        ),
        format: Format::Bytes,
        dead_letter_topic: "bench.dead-letters".to_owned(),
        readiness: Default::default(),
        sink_faults: Default::default(),
        supervision: Default::default(),
        acks: Default::default(),
        embedded_broker: true,
    };
    let pipelines = SupervisorSpec::builder()
        .child(recipe.child_spec().unwrap())
        .build()
        .unwrap();
    let runtime = SupervisionRuntime::start(
        RuntimeSettings::default(),
        vec![ChildSpec::supervisor("pipelines", pipelines)],
    )
    .await
    .unwrap();
    while std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (began, cpu) = (Instant::now(), cpu_seconds());
    while std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0) < expected_bytes {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let result = (began.elapsed(), cpu_seconds() - cpu);
    runtime.shutdown(Duration::from_secs(30)).await.unwrap();
    result
}

fn main() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, PARTITIONS, 1).unwrap();
    cluster.create_topic("bench.dead-letters", 1, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    fill(&brokers);
    let dir = std::env::temp_dir().join(format!("streamvisor-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // Rounds in turn, each side reading the whole topic with a fresh group; the best figures
    // of each side count (a shared 2-core machine is noisy).
    let (mut raw_time, mut raw_cpu) = (Duration::MAX, f64::MAX);
    let (mut sv_time, mut sv_cpu) = (Duration::MAX, f64::MAX);
    for round in 0..ROUNDS {
        let raw_file = dir.join(format!("raw-{round}.jsonl"));
        let (time, round_raw_cpu) = raw(&brokers, &format!("raw-{round}"), &raw_file);
        raw_time = raw_time.min(time);
        raw_cpu = raw_cpu.min(round_raw_cpu);
        let expected_bytes = std::fs::metadata(&raw_file).unwrap().len();
        let sv_file = dir.join(format!("streamvisor-{round}.jsonl"));
        let group = format!("streamvisor-{round}");
        let (time, cpu) =
            actix::System::new().block_on(streamvisor(&brokers, &group, &sv_file, expected_bytes));
        assert_eq!(
            lines(&sv_file),
            RECORDS,
            "streamvisor wrote every record once"
        );
        sv_time = sv_time.min(time);
        sv_cpu = sv_cpu.min(cpu);
        println!(
            "pipeline_vs_raw round {round}: raw {round_raw_cpu:.2} cpu-s streamvisor {cpu:.2} cpu-s"
        );
    }
    let million = RECORDS as f64 / 1e6;
    let rate = |time: Duration| RECORDS as f64 / time.as_secs_f64();
    println!(
        "pipeline_vs_raw: records={RECORDS} raw={:.0} rec/s {:.2} cpu-s/M streamvisor={:.0} rec/s \
         {:.2} cpu-s/M rate_ratio={:.2} (goal >= 0.85) cpu_ratio={:.2} (goal <= 1.3)",
        rate(raw_time),
        raw_cpu / million,
        rate(sv_time),
        sv_cpu / million,
        rate(sv_time) / rate(raw_time),
        (sv_cpu / million) / (raw_cpu / million),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
