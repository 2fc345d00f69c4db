//! Memory per actor: 100,000 idle supervised workers (100 supervisors x 1,000) against 100,000
//! raw actix actors with the same mailbox capacity, on the same number of arbiters, each measured
//! from the RSS growth of a fresh child process of this same run.
//!
//! Run: `cargo bench -p streamvisor-supervision --bench actor_memory` (goal: ratio <= 1.25).
#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, Arbiter, Context};
use streamvisor_supervision::{
    ChildSpec, Failure, RuntimeSettings, SupervisionRuntime, SupervisorSpec, Worker, WorkerContext,
    DEFAULT_MAILBOX_CAPACITY,
};

const ACTORS: usize = 100_000;
const PER_SUPERVISOR: usize = 1_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(position) = args.iter().position(|arg| arg == "--measure") {
        let mode = args.get(position + 1).map(String::as_str).unwrap_or("");
        let bytes = match mode {
            "raw" => actix::System::new().block_on(measure_raw()),
            "supervised" => actix::System::new().block_on(measure_supervised()),
            other => panic!("unknown mode {other:?}"),
        };
        println!("bytes_per_actor={bytes:.0}");
        return;
    }
    let raw = run_child("raw");
    let supervised = run_child("supervised");
    println!(
        "actor_memory: actors={ACTORS} mailbox_capacity={DEFAULT_MAILBOX_CAPACITY} \
         raw={raw:.0} B/actor supervised={supervised:.0} B/actor ratio={:.2} (goal <= 1.25)",
        supervised / raw
    );
}

fn run_child(mode: &str) -> f64 {
    let exe = std::env::current_exe().unwrap();
    let output = Command::new(exe)
        .args(["--measure", mode])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{mode}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix("bytes_per_actor="))
        .unwrap_or_else(|| panic!("{mode} printed no figure: {text}"));
    value.trim().parse().unwrap()
}

fn rss_bytes() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let resident: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    resident * 4096.0
}

fn arbiter_count() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

struct RawIdle {
    started: Arc<AtomicUsize>,
}

impl Actor for RawIdle {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(DEFAULT_MAILBOX_CAPACITY);
        self.started.fetch_add(1, Ordering::Relaxed);
    }
}

async fn measure_raw() -> f64 {
    let arbiters: Vec<Arbiter> = (0..arbiter_count()).map(|_| Arbiter::new()).collect();
    let started = Arc::new(AtomicUsize::new(0));
    settle().await;
    let before = rss_bytes();
    let began = Instant::now();
    let mut addresses = Vec::with_capacity(ACTORS);
    for i in 0..ACTORS {
        let started = Arc::clone(&started);
        let arbiter = arbiters[i % arbiters.len()].handle();
        addresses.push(RawIdle::start_in_arbiter(&arbiter, move |_| RawIdle {
            started,
        }));
    }
    while started.load(Ordering::Relaxed) < ACTORS {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    settle().await;
    let grown = rss_bytes() - before;
    eprintln!("raw: {ACTORS} actors started in {:?}", began.elapsed());
    // The addresses stay alive until measured: dropping them would stop the actors.
    drop(addresses);
    grown / ACTORS as f64
}

struct SupervisedIdle;

impl Worker for SupervisedIdle {
    type Message = ();

    fn handle(&mut self, (): (), _ctx: &mut WorkerContext<'_, Self>) -> Result<(), Failure> {
        Ok(())
    }
}

async fn measure_supervised() -> f64 {
    let settings = RuntimeSettings {
        arbiters: arbiter_count(),
        ..RuntimeSettings::default()
    };
    let runtime = SupervisionRuntime::start(settings, Vec::new())
        .await
        .unwrap();
    let recipe = ChildSpec::worker("w", || SupervisedIdle);
    settle().await;
    let before = rss_bytes();
    let began = Instant::now();
    for s in 0..ACTORS / PER_SUPERVISOR {
        let children = (0..PER_SUPERVISOR).map(|w| recipe.named(format!("w{w}")));
        let spec = SupervisorSpec::builder()
            .children(children)
            .build()
            .unwrap();
        runtime
            .start_child("/", ChildSpec::supervisor(format!("s{s}"), spec))
            .await
            .unwrap();
    }
    settle().await;
    let grown = rss_bytes() - before;
    let listed = runtime.registry().len();
    eprintln!(
        "supervised: {listed} listed actors started in {:?}",
        began.elapsed()
    );
    assert_eq!(listed, ACTORS + ACTORS / PER_SUPERVISOR + 1);
    grown / ACTORS as f64
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}
