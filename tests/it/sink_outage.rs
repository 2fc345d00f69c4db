//! A sink that cannot write for 5 s, on a real broker (tansu): it retries in place holding the
//! records (no restart), the runtime is unready meanwhile and ready after; then a killed sink
//! rewinds the partitions it held records for. Nothing is lost either way.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use streamvisor::config::PipelineConfig;
use streamvisor::runtime::{Overrides, Runtime};
use streamvisor::supervision::{KillMode, Lifecycle};

use crate::program::SinkFile;
use crate::tansu;

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
    let broker = tansu::broker();
    let name = format!("outage-{}", std::process::id());
    tansu::create_topic(&broker.brokers, &name, PARTITIONS).await;
    tansu::produce(&broker.brokers, &name, PARTITIONS, RECORDS);
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
    let config = PipelineConfig::parse(&text, "outage.toml").expect("valid pipeline");
    let runtime = Runtime::start(
        config,
        Overrides {
            brokers: Some(broker.brokers.clone()),
        },
    )
    .await
    .expect("runtime starts");
    let mut events = runtime.handle().subscribe();
    let began = Instant::now();
    while distinct(&file).len() < RECORDS / 10 {
        assert!(began.elapsed() < WAIT, "records never reached the file");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    while runtime.readiness().await.is_ok() {
        assert!(
            outage.elapsed() < Duration::from_secs(5),
            "never unready during the outage"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reasons = runtime.readiness().await.expect_err("unready");
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
    while runtime.readiness().await.is_err() {
        assert!(
            outage.elapsed() < Duration::from_secs(30),
            "never ready again after the outage: {:?}",
            runtime.readiness().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    loop {
        let written = distinct(&file).len();
        if written == RECORDS {
            break;
        }
        assert!(
            began.elapsed() < WAIT,
            "only {written} of {RECORDS} records reached the file"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered = Instant::now();
    while runtime.readiness().await.is_err() {
        assert!(
            recovered.elapsed() < Duration::from_secs(30),
            "never ready after the sink's restart: {:?}",
            runtime.readiness().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let expected: BTreeSet<(i32, i64)> = (0..PARTITIONS)
        .flat_map(|partition| {
            (0..(RECORDS as i64 / i64::from(PARTITIONS))).map(move |offset| (partition, offset))
        })
        .collect();
    assert_eq!(distinct(&file), expected, "every record, nothing lost");
    runtime.shutdown().await.expect("clean shutdown");
}
