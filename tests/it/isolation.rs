//! The actor tree is real, not decoration (on Apache Kafka): killing the stage actor of partition 3 once
//! replays partition 3 only (at most its unacked cap), the other partitions show no duplicate and
//! are not revoked (no rebalance: their partition actors keep their incarnation), and partition 3
//! resumes; the time from the kill to its next record is printed.

use std::path::Path;
use std::time::{Duration, Instant};

use streamvisor::supervision::{KillMode, Lifecycle};

use crate::support::kafka;
use crate::support::program::SinkFile;
use crate::support::wait::wait_for;

const RECORDS: usize = 40_000;
const PARTITIONS: i32 = 4;
const MAX_UNACKED: usize = 1_000;
const WAIT: Duration = Duration::from_secs(120);

#[actix_rt::test]
async fn killing_one_partitions_stage_replays_that_partition_only() {
    crate::quiet_intended_panics();
    let broker = kafka::broker();
    let name = format!("isolation-{}", std::process::id());
    kafka::create_topic(&broker.brokers, &name, PARTITIONS).await;
    kafka::produce(&broker.brokers, &name, PARTITIONS, RECORDS);
    let file = broker.dir.join(format!("{name}.jsonl"));
    let text = format!(
        r#"
name = "isolation"
[flow]
batch_size = 250
max_unacked_per_partition = {MAX_UNACKED}
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
delay_per_batch = "25ms"
"#,
        file = file.display()
    );
    let runtime = broker.run(&text, "isolation.toml").await;
    let registry = runtime.handle().registry().clone();
    wait_for(
        "a tenth of the records in the file",
        WAIT,
        async || match SinkFile::read(&file).records.len() {
            written if written >= RECORDS / 10 => Ok(()),
            written => Err(format!("{written} written")),
        },
    )
    .await;
    let partition_actor = |p: i32| format!("/pipelines/isolation/sources/events/p{p}");
    let before: Vec<u64> = (0..PARTITIONS)
        .map(|p| {
            registry
                .get(&partition_actor(p))
                .expect("partition actor listed")
                .incarnation
        })
        .collect();
    let mut events = runtime.handle().subscribe();

    let killed_at = Instant::now();
    runtime
        .kill("/pipelines/isolation/stages/pass/p3", KillMode::Stop)
        .expect("kill partition 3's stage actor");
    // Partition 3's next record through the new stage incarnation: a line of partition 3 written
    // after the restart (replays count: they are processed again).
    let p3_lines = |file: &Path| {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("\"partition\":3,"))
            .count()
    };
    while registry
        .get("/pipelines/isolation/stages/pass/p3")
        .is_none_or(|actor| actor.incarnation < 2)
    {
        assert!(
            killed_at.elapsed() < WAIT,
            "partition 3's stage never restarted"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let restarted_after = killed_at.elapsed();
    let lines_at_restart = p3_lines(&file);
    let resumed = loop {
        if p3_lines(&file) > lines_at_restart {
            break killed_at.elapsed();
        }
        assert!(
            killed_at.elapsed() < WAIT,
            "partition 3 never resumed after the kill"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    wait_for(
        "every record in the file",
        WAIT,
        async || match SinkFile::read(&file).records.len() {
            RECORDS => Ok(()),
            written => Err(format!("{written} of {RECORDS} written")),
        },
    )
    .await;
    let output = SinkFile::read(&file);
    let duplicates = |partition: i32| output.duplicates(partition);
    for partition in 0..PARTITIONS {
        if partition != 3 {
            assert_eq!(
                duplicates(partition),
                0,
                "partition {partition} replayed nothing"
            );
        }
    }
    assert!(
        duplicates(3) <= MAX_UNACKED,
        "partition 3 replayed {} > its cap {MAX_UNACKED}",
        duplicates(3)
    );
    let after: Vec<u64> = (0..PARTITIONS)
        .map(|p| {
            registry
                .get(&partition_actor(p))
                .expect("partition actor listed")
                .incarnation
        })
        .collect();
    assert_eq!(
        after, before,
        "no rebalance: every partition actor kept its incarnation"
    );
    let mut restarted = Vec::new();
    while let Ok(event) = events.try_recv() {
        match event.event {
            Lifecycle::Restarted { .. } => restarted.push(event.path.to_string()),
            Lifecycle::Stopped { .. } => panic!("{} stopped: a revoke happened", event.path),
            _ => {}
        }
    }
    assert_eq!(restarted, ["/pipelines/isolation/stages/pass/p3"]);
    println!(
        "isolation: kill->restart {restarted_after:?}, kill->next record of partition 3 {resumed:?}; \
         partition 3 replayed {} (cap {MAX_UNACKED}); others 0",
        duplicates(3)
    );
    runtime.shutdown().await.expect("clean shutdown");
}

#[actix_rt::test]
async fn with_the_sink_stopped_every_partition_pauses_within_its_cap() {
    crate::show_warnings();
    let broker = kafka::broker();
    let name = format!("stalled-{}", std::process::id());
    kafka::create_topic(&broker.brokers, &name, PARTITIONS).await;
    kafka::produce(&broker.brokers, &name, PARTITIONS, RECORDS);
    let file = broker.dir.join(format!("{name}.jsonl"));
    let batch = 250;
    let text = format!(
        r#"
name = "stalled"
[flow]
batch_size = {batch}
max_unacked_per_partition = {MAX_UNACKED}
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
"#,
        file = file.display()
    );
    let runtime = broker.run(&text, "stalled.toml").await;
    // The sink stops writing before anything flows.
    runtime
        .sink_faults()
        .fail_writes_for(Duration::from_secs(3_600));
    let stalled = wait_for("every partition paused and not moving", WAIT, async || {
        let partitions = runtime.partitions().await;
        if partitions.len() == PARTITIONS as usize
            && partitions.iter().all(|p| p.paused && p.unacked > 0)
        {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if runtime.partitions().await == partitions {
                return Ok(partitions);
            }
        }
        Err(format!("{partitions:?}"))
    })
    .await;
    for partition in &stalled {
        let read_ahead =
            usize::try_from(partition.next_offset - partition.position).expect("ahead");
        assert!(partition.unacked <= MAX_UNACKED, "{partition:?}");
        assert!(
            read_ahead <= MAX_UNACKED + batch,
            "read {read_ahead} past the acked prefix: {partition:?}"
        );
    }
    assert_eq!(
        SinkFile::read(&file).records.len(),
        0,
        "nothing written while the sink fails"
    );
    println!("stalled: {stalled:?}");
    // The sink recovers: everything flows, nothing lost.
    runtime.sink_faults().fail_writes_for(Duration::ZERO);
    wait_for(
        "every record after the sink recovered",
        WAIT,
        async || match SinkFile::read(&file).records.len() {
            RECORDS => Ok(()),
            written => Err(format!("{written} of {RECORDS} written")),
        },
    )
    .await;
    runtime.shutdown().await.expect("clean shutdown");
}
