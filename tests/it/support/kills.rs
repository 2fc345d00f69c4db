//! Random kills through `POST /api/actors/kill` of a running program, one at a time, in both
//! modes, each waited on until the victim runs its next incarnation (the chaos tests).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::program::{self, Program};
use crate::support::wait;

/// Kills per supervisor stay under the default restart intensity (20 in 30 s).
const KILLS_PER_SUPERVISOR: usize = 15;
/// How long the kills (and each restart) may take.
const WAIT: Duration = Duration::from_secs(240);

/// What the kills did.
#[derive(Debug)]
pub(crate) struct Kills {
    /// Each victim and mode (`/pipelines/p/sinks/out (panic)`).
    pub paths: Vec<String>,
    /// Kills made while `flowing` said records were still flowing.
    pub while_flowing: usize,
}

/// (path, incarnation, state) of every actor.
pub(crate) fn actors(program: &Program) -> Vec<(String, u64, String)> {
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

/// Kills `count` random actors whose paths start with one of `prefixes` (at most
/// [`KILLS_PER_SUPERVISOR`] per supervisor), adding one to `done` after each; asserts at least
/// half landed while `flowing()` was true.
pub(crate) fn kill_randomly(
    program: &Program,
    prefixes: &[&str],
    count: usize,
    rng: &mut fastrand::Rng,
    done: &AtomicUsize,
    flowing: impl Fn() -> bool,
) -> Kills {
    let mut per_supervisor: BTreeMap<String, usize> = BTreeMap::new();
    let mut kills = Kills {
        paths: Vec::new(),
        while_flowing: 0,
    };
    let began = Instant::now();
    while kills.paths.len() < count {
        assert!(
            began.elapsed() < WAIT,
            "only {} kills landed in {WAIT:?}: {kills:#?}",
            kills.paths.len()
        );
        std::thread::sleep(Duration::from_millis(100));
        let listed = actors(program);
        let targets: Vec<&(String, u64, String)> = listed
            .iter()
            .filter(|(path, _, state)| {
                prefixes.iter().any(|prefix| path.starts_with(prefix)) && state == "running"
            })
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
        if flowing() {
            kills.while_flowing += 1;
        }
        *per_supervisor
            .entry(parent(&target).to_owned())
            .or_default() += 1;
        kills.paths.push(format!("{target} ({mode})"));
        done.fetch_add(1, Ordering::AcqRel);
        // One kill at a time: wait until the target runs its next incarnation and every
        // actor runs again.
        wait::wait_until(&format!("{target} to run again"), WAIT, || {
            let now = actors(program);
            now.iter().any(|(path, incarnation, state)| {
                *path == target && *incarnation > before && state == "running"
            }) && now.iter().all(|(_, _, state)| state == "running")
        });
    }
    assert!(
        kills.while_flowing >= count / 2,
        "only {} kills landed while records flowed",
        kills.while_flowing
    );
    kills
}

/// Writes records `first..first + count` (`{"key": "k<i % 1000>", "seq": i}`) to `events`
/// through `streamvisor produce`'s stdin.
pub(crate) fn produce_round(brokers: &str, topic: &str, first: usize, count: usize) {
    let mut command = program::streamvisor();
    command.args(["produce", "--brokers", brokers, "--topic", topic]);
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

/// Writes `records` records in `rounds` rounds on a thread of its own; round k waits for
/// k * kills / rounds kills, so that the kills spread over the whole intake.
pub(crate) fn produce_during_kills(
    brokers: &str,
    topic: &str,
    records: usize,
    rounds: usize,
    kills: usize,
    done: &Arc<AtomicUsize>,
) -> std::thread::JoinHandle<()> {
    let brokers = brokers.to_owned();
    let topic = topic.to_owned();
    let done = Arc::clone(done);
    std::thread::spawn(move || {
        let per_round = records / rounds;
        for round in 0..rounds {
            wait::wait_until(&format!("the kills before round {round}"), WAIT, || {
                done.load(Ordering::Acquire) >= round * kills / rounds
            });
            produce_round(&brokers, &topic, round * per_round, per_round);
        }
    })
}
