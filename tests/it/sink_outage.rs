//! A sink that cannot write for 5 s, on a real broker (Apache Kafka): it retries in place holding the
//! records (no restart), the runtime is unready meanwhile and ready after; then a killed sink
//! rewinds the partitions it held records for. Nothing is lost either way. And an outage longer
//! than a window's idle timeout makes no record late: the paused partition is not idle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use streamvisor::supervision::{KillMode, Lifecycle};

use crate::support::kafka;
use crate::support::program::SinkFile;
use crate::support::wait::wait_for;

const RECORDS: usize = 20_000;
const PARTITIONS: i32 = 4;
const WAIT: Duration = Duration::from_secs(120);

/// (partition, offset) of every record in the file.
fn distinct(path: &Path) -> BTreeSet<(i32, i64)> {
    SinkFile::read(path).records.into_keys().collect()
}

#[actix_rt::test]
async fn a_sink_outage_is_retried_in_place_and_a_killed_sink_rewinds() {
    crate::quiet_intended_panics();
    let broker = kafka::broker();
    let name = format!("outage-{}", std::process::id());
    kafka::create_topic(&broker.brokers, &name, PARTITIONS).await;
    kafka::produce(&broker.brokers, &name, PARTITIONS, RECORDS);
    let file = broker.dir.join(format!("{name}.jsonl"));
    let text = format!(
        r#"
name = "outage"
[flow]
batch_size = 200
max_unacked_per_partition = 1000
[kafka]
group = "{name}"
[sources.events]
kind = "kafka"
topic = "{name}"
[stages.pass]
inputs = ["events"]
op = "passthrough"
[sinks.out]
inputs = ["pass"]
kind = "file"
path = "{file}"
delay_per_batch = "20ms"
"#,
        file = file.display()
    );
    let runtime = broker.run(&text, "outage.toml").await;
    let mut events = runtime.handle().subscribe();
    wait_for(
        "a tenth of the records in the file",
        WAIT,
        async || match distinct(&file).len() {
            written if written >= RECORDS / 10 => Ok(()),
            written => Err(format!("{written} written")),
        },
    )
    .await;
    assert_eq!(
        runtime.readiness().await,
        Ok(()),
        "ready while the sink writes"
    );

    // The outage: every write fails for 5 s.
    runtime
        .sink_faults()
        .fail_writes_for(Duration::from_secs(5));
    let outage = Instant::now();
    let reasons = wait_for(
        "unready during the outage",
        Duration::from_secs(5),
        async || match runtime.readiness().await {
            Ok(()) => Err("ready".to_owned()),
            Err(reasons) => Ok(reasons),
        },
    )
    .await;
    assert!(
        reasons
            .iter()
            .any(|reason| reason.contains("/sinks/out") && reason.contains("retrying")),
        "{reasons:?}"
    );
    let during = distinct(&file).len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        distinct(&file).len(),
        during,
        "nothing written during the outage"
    );
    wait_ready(&runtime, "ready again after the outage").await;
    assert!(outage.elapsed() >= Duration::from_secs(5));
    let mut restarts = 0;
    while let Ok(event) = events.try_recv() {
        if matches!(
            event.event,
            Lifecycle::Restarted { .. } | Lifecycle::Failed { .. }
        ) {
            restarts += 1;
        }
    }
    assert_eq!(restarts, 0, "an outage is retried in place, not restarted");

    // Then the sink is killed: its partitions rewind.
    runtime
        .kill("/pipelines/outage/sinks/out", KillMode::Panic)
        .expect("kill the sink");
    wait_for("every record in the file", WAIT, async || {
        match distinct(&file).len() {
            RECORDS => Ok(()),
            written => Err(format!("{written} of {RECORDS} written")),
        }
    })
    .await;
    wait_ready(&runtime, "ready after the sink's restart").await;
    let expected: BTreeSet<(i32, i64)> = (0..PARTITIONS)
        .flat_map(|partition| {
            (0..(RECORDS as i64 / i64::from(PARTITIONS))).map(move |offset| (partition, offset))
        })
        .collect();
    assert_eq!(distinct(&file), expected, "every record, nothing lost");
    runtime.shutdown().await.expect("clean shutdown");
}

/// Readings of 4 sensors, 10 ms of event time apart, from this start.
const IDLE_START_MS: u64 = 1_700_000_000_000;
const IDLE_READINGS: u64 = 4_000;

fn idle_reading(i: u64) -> (String, String) {
    let sensor = format!("s{}", i % 4);
    let value = format!(r#"{{"sensor":"{sensor}","ts":{}}}"#, IDLE_START_MS + i * 10);
    (sensor, value)
}

/// A window's idle timeout counts only time during which records could come. A sink outage
/// longer than the timeout pauses the partition at its cap while readings keep arriving in
/// Kafka; the window must not take that pause for idleness (its watermark would run on with the
/// clock and the readings waiting in Kafka would come late). Every 1 s window of every sensor is
/// written with all its readings, and none as an update.
#[actix_rt::test]
async fn an_outage_longer_than_the_idle_timeout_makes_no_reading_late() {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

    let broker = kafka::broker();
    let name = format!("idle-outage-{}", std::process::id());
    kafka::create_topic(&broker.brokers, &name, 1).await;
    let file = broker.dir.join(format!("{name}.jsonl"));
    let text = format!(
        r#"
name = "idle-outage"
[flow]
batch_size = 50
max_unacked_per_partition = 200
[kafka]
group = "{name}"
[sources.readings]
kind = "kafka"
topic = "{name}"
[stages.win]
inputs = ["readings"]
op = "window"
window = "tumbling"
size = "1s"
key = "sensor"
time = "ts"
out_of_orderness = "0s"
idle_timeout = "2s"
[sinks.out]
inputs = ["win"]
kind = "file"
path = "{file}"
"#,
        file = file.display()
    );
    let runtime = broker.run(&text, "idle-outage.toml").await;

    // 500 readings a second for 8 s (event time runs 5 s a second); the outage takes 5 s of it.
    let brokers = broker.brokers.clone();
    let topic = name.clone();
    let producing = std::thread::spawn(move || {
        let producer: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("linger.ms", "5")
            // In order even when a send is retried: a reading out of order would be late.
            .set("enable.idempotence", "true")
            .create()
            .expect("producer");
        let began = Instant::now();
        for i in 0..IDLE_READINGS {
            let due = began + Duration::from_millis(i * 2);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            let (key, value) = idle_reading(i);
            producer
                .send(BaseRecord::to(&topic).key(&key).payload(&value))
                .map_err(|(error, _)| error)
                .expect("queued");
        }
        // Far ahead in event time: the watermark passes every window of the readings.
        let flush = format!(r#"{{"sensor":"flush","ts":{}}}"#, IDLE_START_MS + 1_000_000);
        producer
            .send(BaseRecord::to(&topic).key("flush").payload(&flush))
            .map_err(|(error, _)| error)
            .expect("queued");
        producer.flush(Duration::from_secs(60)).expect("flushed");
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    runtime
        .sink_faults()
        .fail_writes_for(Duration::from_secs(5));
    // The case under test: the partition pauses at its cap while readings keep coming.
    wait_for(
        "a paused partition during the outage (else nothing would be tested)",
        Duration::from_secs(4),
        async || {
            let partitions = runtime.partitions().await;
            match partitions.iter().any(|status| status.paused) {
                true => Ok(()),
                false => Err(format!("{partitions:?}")),
            }
        },
    )
    .await;
    tokio::task::spawn_blocking(move || producing.join())
        .await
        .expect("joined")
        .expect("the producer ran");

    // (sensor, window start) -> readings, as produced.
    let mut expected: BTreeMap<(String, u64), u64> = BTreeMap::new();
    for i in 0..IDLE_READINGS {
        let ts = IDLE_START_MS + i * 10;
        *expected
            .entry((format!("s{}", i % 4), ts - ts % 1_000))
            .or_default() += 1;
    }
    // The flush reading's own window closes last (after the idle timeout, once nothing more
    // comes): every reading's window is written by then.
    let windows = expected.len();
    let written = wait_for("the flush reading's window", WAIT, async || {
        let mut written: BTreeMap<(String, u64), u64> = BTreeMap::new();
        let mut flushed = false;
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        // Whole lines only: the sink may be writing the last one.
        for line in text
            .split_inclusive('\n')
            .filter(|line| line.ends_with('\n'))
        {
            let record: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let value = &record["value"];
            assert_eq!(value["update"], false, "no reading came late: {line}");
            let sensor = value["key"].as_str().expect("key").to_owned();
            if sensor == "flush" {
                flushed = true;
                continue;
            }
            let start = value["start_ms"].as_u64().expect("start");
            written.insert((sensor, start), value["count"].as_u64().expect("count"));
        }
        match flushed {
            true => Ok(written),
            false => Err(format!("{} of {windows} windows written", written.len())),
        }
    })
    .await;
    assert_eq!(
        written, expected,
        "every window with all its readings: none came late"
    );
    runtime.shutdown().await.expect("clean shutdown");
}

/// Waits up to 30 s for `runtime` to be ready, naming `what` was awaited.
async fn wait_ready(runtime: &streamvisor::runtime::Runtime, what: &str) {
    wait_for(what, Duration::from_secs(30), async || {
        runtime
            .readiness()
            .await
            .map_err(|reasons| format!("{reasons:?}"))
    })
    .await;
}
