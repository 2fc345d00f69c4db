//! The HTTP chaos test: `streamvisor run examples/passthrough.toml --brokers <tansu>` as a child
//! process; 100,000 records written with `streamvisor produce` (ten rounds of NDJSON on stdin,
//! interleaved with the kills, so that records flow while actors die); 30 kills of random actors
//! in both modes through `POST /api/actors/kill`; SIGTERM at the end exits 0; the file, deduped
//! by (partition, offset), holds every record exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::program::{self, Program, SinkFile};
use crate::tansu;

const RECORDS: usize = 100_000;
const ROUNDS: usize = 10;
const KILLS: usize = 30;
/// Kills per supervisor stay under the default restart intensity (20 in 30 s).
const KILLS_PER_SUPERVISOR: usize = 15;
const WAIT: Duration = Duration::from_secs(240);

/// Writes records `first..first + count` (`{"key": "k<i % 1000>", "seq": i}`) to `events`
/// through `streamvisor produce`'s stdin.
fn produce_round(brokers: &str, first: usize, count: usize) {
    let mut command = program::streamvisor();
    command.args(["produce", "--brokers", brokers, "--topic", "events"]);
    let mut lines = String::new();
    for seq in first..first + count {
        lines.push_str(&format!("{{\"key\":\"k{}\",\"seq\":{seq}}}\n", seq % 1000));
    }
    let output = program::output_within(
        &mut command,
        Some(lines.into_bytes()),
        program::COMMAND_TIMEOUT,
    );
    assert!(
        output.status.success(),
        "produce failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// (path, incarnation, state) of every actor.
fn actors(program: &Program) -> Vec<(String, u64, String)> {
    let Some(answer) = program.get("/api/actors").filter(|a| a.status == 200) else {
        return Vec::new();
    };
    let list: Vec<serde_json::Value> = serde_json::from_str(&answer.body).expect("actors JSON");
    list.iter()
        .map(|actor| {
            (
                actor["path"].as_str().unwrap_or_default().to_owned(),
                actor["incarnation"].as_u64().unwrap_or_default(),
                actor["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/')
        .map(|(parent, _)| parent)
        .unwrap_or("/")
}

#[test]
fn thirty_http_kills_and_a_sigterm_lose_nothing() {
    let broker = tansu::broker();
    let _one_at_a_time = tansu::group_tests_one_at_a_time();
    let dir = program::test_dir("http-chaos");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/passthrough.toml");
    // The first round makes the topic (8 partitions) before the pipeline subscribes.
    program::produce_count(&broker.brokers, "events", 0, 8);
    let mut program = Program::start(&dir, &example, Some(&broker.brokers), "passthrough");
    program.wait_ready(Duration::from_secs(60));

    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let mut rng = fastrand::Rng::with_seed(seed);
    let kills_done = Arc::new(AtomicUsize::new(0));
    let producer = {
        let brokers = broker.brokers.clone();
        let kills_done = Arc::clone(&kills_done);
        std::thread::spawn(move || {
            let per_round = RECORDS / ROUNDS;
            for round in 0..ROUNDS {
                // Round k waits for 3k kills: the kills are spread over the whole intake.
                let began = std::time::Instant::now();
                while kills_done.load(Ordering::Acquire) < round * KILLS / ROUNDS {
                    assert!(
                        began.elapsed() < WAIT,
                        "the kills stalled before round {round}"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                produce_round(&brokers, round * per_round, per_round);
            }
        })
    };

    let file = dir.join("out/passthrough.jsonl");
    let base = "/pipelines/passthrough";
    let mut per_supervisor: BTreeMap<String, usize> = BTreeMap::new();
    let mut killed = Vec::new();
    let mut killed_while_flowing = 0;
    let began = std::time::Instant::now();
    while killed.len() < KILLS {
        program.assert_alive();
        assert!(
            began.elapsed() < WAIT,
            "only {} kills landed in {WAIT:?}: {killed:#?}",
            killed.len()
        );
        std::thread::sleep(Duration::from_millis(100));
        let listed = actors(&program);
        let targets: Vec<&(String, u64, String)> = listed
            .iter()
            .filter(|(path, _, state)| path.starts_with(&format!("{base}/")) && state == "running")
            .filter(|(path, _, _)| {
                per_supervisor.get(parent(path)).copied().unwrap_or(0) < KILLS_PER_SUPERVISOR
            })
            .collect();
        if targets.is_empty() {
            continue;
        }
        let (target, before, _) = targets[rng.usize(..targets.len())].clone();
        let mode = if rng.bool() { "stop" } else { "panic" };
        let body = format!(r#"{{"path": "{target}", "mode": "{mode}"}}"#);
        let Some(answer) = program.post("/api/actors/kill", &body) else {
            continue;
        };
        if answer.status != 202 {
            // Restarting or stopping under an earlier kill's restart: pick again.
            assert!(
                answer.status == 409,
                "kill {target}: {} {}",
                answer.status,
                answer.body
            );
            continue;
        }
        if SinkFile::count_lines(&file) < RECORDS {
            killed_while_flowing += 1;
        }
        *per_supervisor
            .entry(parent(&target).to_owned())
            .or_default() += 1;
        killed.push(format!("{target} ({mode})"));
        kills_done.store(killed.len(), Ordering::Release);
        // One kill at a time: wait until the target runs its next incarnation and every
        // actor runs again.
        program::wait_until(&format!("{target} to run again"), WAIT, || {
            let now = actors(&program);
            now.iter().any(|(path, incarnation, state)| {
                *path == target && *incarnation > before && state == "running"
            }) && now.iter().all(|(_, _, state)| state == "running")
        });
    }
    producer.join().expect("the producer thread");

    program::wait_until("every record in the file", WAIT, || {
        SinkFile::read(&file).records.len() >= RECORDS
    });
    let restarts = program.metric_sum("streamvisor_actor_restarts_total");
    let escalations = program.metric_sum("streamvisor_supervisor_escalations_total");
    program.signal("TERM");
    let status = program.wait_exit(Duration::from_secs(60));
    let log = program.log();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM exits 0; log:\n{}",
        program.log_tail()
    );
    assert!(log.contains("summary: in="), "a summary at exit");

    let output = SinkFile::read(&file);
    let seqs: BTreeSet<i64> = output.records.values().copied().collect();
    let duplicates = output.lines - output.records.len();
    println!(
        "chaos: produced={RECORDS} distinct={} lost={} duplicates={duplicates} kills={} restarts={restarts} seed={seed}",
        output.records.len(),
        RECORDS.saturating_sub(seqs.len()),
        killed.len(),
    );
    assert_eq!(
        output.records.len(),
        RECORDS,
        "one line per record after dedupe"
    );
    assert_eq!(
        seqs,
        (0..RECORDS as i64).collect::<BTreeSet<i64>>(),
        "every record, once"
    );
    assert_eq!(
        restarts, KILLS as f64,
        "each kill restarted one actor: {killed:#?}"
    );
    assert_eq!(escalations, 0.0);
    assert!(
        killed_while_flowing >= KILLS / 2,
        "only {killed_while_flowing} kills landed while records flowed"
    );
}
