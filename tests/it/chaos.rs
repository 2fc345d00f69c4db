//! The no-loss core on a real broker (Apache Kafka), through the library handle: 100,000 records over 8
//! partitions; a passthrough pipeline to the file sink; 30 kills of random actors (partition
//! actors, stage actors, the sink, the source supervisor) in both modes while records flow. The
//! file, deduplicated by (topic, partition, offset), holds exactly the produced records with their
//! values; each kill restarted its actor once; nothing escalated; commits reach every partition's
//! end; duplicates stay within what the rewinds could replay.

use std::time::{Duration, Instant};

use streamvisor::config::PipelineConfig;
use streamvisor::runtime::{Overrides, Runtime};
use streamvisor::supervision::{ActorState, KillMode, Lifecycle, StopReason};

use crate::support::kafka;
use crate::support::program::{self, SinkFile};
use crate::support::wait::wait_for;

const RECORDS: usize = 100_000;
const PARTITIONS: i32 = 8;
const MAX_UNACKED: usize = 2_000;
const KILLS: usize = 30;
const WAIT: Duration = Duration::from_secs(240);

// The guard serialises test threads (each test has a runtime of its own): no task of this
// runtime waits for it.
#[allow(clippy::await_holding_lock)]
#[actix_rt::test]
async fn thirty_kills_lose_nothing_on_a_real_broker() {
    crate::show_warnings();
    crate::quiet_intended_panics();
    let broker = kafka::broker();
    let topic = format!("chaos-{}", std::process::id());
    let group = format!("chaos-{}", std::process::id());
    kafka::create_topic(&broker.brokers, &topic, PARTITIONS).await;
    kafka::produce(&broker.brokers, &topic, PARTITIONS, RECORDS);

    let file = broker.dir.join("chaos.jsonl");
    let text = format!(
        r#"
name = "chaos"
# Kills are failures: this test raises the restart intensity (DESIGN.md allows it, saying so).
[supervision]
max_restarts = 200
within = "60s"
backoff = {{ min = "10ms", max = "500ms", factor = 2.0 }}
[flow]
batch_size = 500
max_unacked_per_partition = {MAX_UNACKED}
[commit]
interval = "200ms"
[kafka]
group = "{group}"
[kafka.properties]
"session.timeout.ms" = "6000"
[sources.events]
kind = "kafka"
topic = "{topic}"
[stages.pass]
inputs = ["events"]
op = "passthrough"
[sinks.out]
inputs = ["pass"]
kind = "file"
path = "{file}"
# Slow enough that the kills land while records flow.
delay_per_batch = "100ms"
"#,
        file = file.display()
    );
    let config = PipelineConfig::parse(&text, "chaos.toml").expect("valid pipeline");
    let overrides = Overrides {
        brokers: Some(broker.brokers.clone()),
    };
    let runtime = Runtime::start(config, overrides)
        .await
        .expect("runtime starts");
    let mut events = runtime.handle().subscribe();

    let seed = program::chaos_seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let base = "/pipelines/chaos";
    let mut targets: Vec<String> = (0..PARTITIONS)
        .flat_map(|p| {
            [
                format!("{base}/sources/events/p{p}"),
                format!("{base}/stages/pass/p{p}"),
            ]
        })
        .collect();
    targets.push(format!("{base}/sinks/out"));
    targets.push(format!("{base}/sources/events"));

    wait_for(
        "a fiftieth of the records in the file",
        WAIT,
        async || match SinkFile::read(&file).records.len() {
            written if written >= RECORDS / 50 => Ok(()),
            written => Err(format!("{written} written")),
        },
    )
    .await;
    let began = Instant::now();
    let mut kills = 0;
    let mut killed: Vec<String> = Vec::new();
    let mut duplicate_bound = 0;
    while kills < KILLS {
        assert!(
            began.elapsed() < WAIT,
            "only {kills} kills landed in {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        let target = &targets[rng.usize(..targets.len())];
        let mode = if rng.bool() {
            KillMode::Stop
        } else {
            KillMode::Panic
        };
        let registry = runtime.handle().registry().clone();
        let Some(before) = registry.get(target).map(|actor| actor.incarnation) else {
            continue;
        };
        if runtime.kill(target, mode).is_ok() {
            kills += 1;
            killed.push(format!("{target} ({mode})"));
            let whole = target.ends_with("/sinks/out") || target.ends_with("/sources/events");
            duplicate_bound += MAX_UNACKED * if whole { PARTITIONS as usize } else { 1 };
            // One kill at a time: the next one waits until the killed actor runs its next
            // incarnation and every target runs again (a source restart rejoins the group
            // first), so that no kill races a restart or a revoke.
            let what = format!("{target} and every other target running again");
            wait_for(&what, WAIT, async || {
                let restarted = registry.get(target).is_some_and(|actor| {
                    actor.incarnation > before && actor.state == ActorState::Running
                });
                let stopped: Vec<&String> = targets
                    .iter()
                    .filter(|path| {
                        registry
                            .get(path)
                            .is_none_or(|actor| actor.state != ActorState::Running)
                    })
                    .collect();
                match restarted && stopped.is_empty() {
                    true => Ok(()),
                    false => Err(format!(
                        "{target} restarted: {restarted}; not running: {stopped:?}"
                    )),
                }
            })
            .await;
        }
    }
    let flowed = SinkFile::read(&file).records.len();
    assert!(
        flowed < RECORDS,
        "the kills landed while records flowed ({flowed} already written)"
    );

    loop {
        let written = SinkFile::read(&file).records.len();
        if written >= RECORDS {
            break;
        }
        if began.elapsed() >= WAIT {
            let partitions = runtime.partitions().await;
            let actors: Vec<String> = runtime
                .actors()
                .iter()
                .map(|actor| format!("{} {:?} #{}", actor.path, actor.state, actor.incarnation))
                .collect();
            panic!(
                "only {written} of {RECORDS} records reached the file (seed={seed}, replay with \
                 CHAOS_SEED); partitions: {partitions:#?}; actors: {actors:#?}; kills: {killed:#?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let end = vec![(RECORDS / PARTITIONS as usize) as i64; PARTITIONS as usize];
    wait_for("commits at every partition's end", WAIT, async || {
        let committed = program::committed(&broker.brokers, &group, &topic, PARTITIONS);
        match committed == end {
            true => Ok(()),
            false => Err(format!("{committed:?}")),
        }
    })
    .await;
    let SinkFile {
        records: distinct,
        lines,
        ..
    } = SinkFile::read(&file);
    for ((partition, offset), seq) in &distinct {
        assert_eq!(
            *seq,
            offset * i64::from(PARTITIONS) + i64::from(*partition),
            "the value at {partition}/{offset}"
        );
    }
    // Restart-after-kill events: a failure caused by a kill, then the restart of that path.
    let (mut restarts, mut escalations) = (0, 0);
    let mut killed_and_failed: Vec<String> = Vec::new();
    let mut other_failures = Vec::new();
    while let Ok(event) = events.try_recv() {
        match &event.event {
            Lifecycle::Failed { reason } => {
                let by_kill = matches!(reason, StopReason::Killed)
                    || matches!(reason, StopReason::Panicked(text) if text.starts_with("killed by request"));
                if by_kill {
                    killed_and_failed.push(event.path.to_string());
                } else {
                    other_failures.push(format!("{} {reason}", event.path));
                }
            }
            Lifecycle::Restarted { .. } => {
                if let Some(index) = killed_and_failed
                    .iter()
                    .position(|path| path == event.path.as_str())
                {
                    killed_and_failed.remove(index);
                    restarts += 1;
                }
            }
            Lifecycle::Escalated => escalations += 1,
            _ => {}
        }
    }
    if !other_failures.is_empty() {
        println!("chaos: failures other than the kills (restarted by their supervisors): {other_failures:?}");
    }
    let duplicates = lines - distinct.len();
    println!(
        "chaos: produced={RECORDS} distinct={} lost={} duplicates={duplicates} kills={kills} restarts={restarts} seed={seed}",
        distinct.len(),
        RECORDS - distinct.len(),
    );
    assert_eq!(distinct.len(), RECORDS);
    assert_eq!(
        restarts, kills,
        "each kill restarted its actor once; killed {killed:#?}; failed by a kill, never restarted: \
         {killed_and_failed:?}"
    );
    assert_eq!(escalations, 0);
    assert!(
        duplicates <= duplicate_bound,
        "duplicates {duplicates} above the bound {duplicate_bound}"
    );
    runtime.shutdown().await.expect("clean shutdown");
}
