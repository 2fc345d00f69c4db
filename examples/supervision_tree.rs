//! Builds a small supervision tree, kills a worker by path, and prints the restart.
//!
//! Run: `cargo run --example supervision_tree`
//!
//! ```text
//! /                            root supervisor
//! └── /pipelines               supervisor (OneForOne)
//!     └── /pipelines/demo      supervisor (RestForOne)
//!         ├── .../source       worker
//!         ├── .../stage        worker   <- killed: it and .../sink restart, .../source does not
//!         └── .../sink         worker
//! ```
#![allow(clippy::print_stdout)]

use std::time::Duration;

use anyhow::Context as _;
use streamvisor::supervision::{
    ChildSpec, Failure, KillMode, Lifecycle, RuntimeSettings, SupervisionRuntime,
    SupervisionStrategy, SupervisorSpec, Worker, WorkerContext,
};

/// A worker that counts what it is sent; a restart starts it again from zero.
struct Counter {
    seen: u64,
}

impl Worker for Counter {
    type Message = u64;

    fn started(&mut self, ctx: &mut WorkerContext<'_, Self>) -> Result<(), Failure> {
        println!(
            "  started {} (incarnation {})",
            ctx.path(),
            ctx.incarnation()
        );
        Ok(())
    }

    fn handle(&mut self, n: u64, _ctx: &mut WorkerContext<'_, Self>) -> Result<(), Failure> {
        self.seen += n;
        Ok(())
    }
}

#[actix::main]
async fn main() -> anyhow::Result<()> {
    // One line per panic instead of a backtrace: the kill below panics on purpose.
    std::panic::set_hook(Box::new(|info| eprintln!("  (panic: {info})")));
    let worker = ChildSpec::worker("worker", || Counter { seen: 0 });
    let demo = SupervisorSpec::builder()
        .strategy(SupervisionStrategy::RestForOne)
        .children(["source", "stage", "sink"].map(|name| worker.named(name)))
        .build()?;
    let pipelines = SupervisorSpec::builder()
        .child(ChildSpec::supervisor("demo", demo))
        .build()?;

    println!("starting the tree:");
    let runtime = SupervisionRuntime::start(
        RuntimeSettings::default(),
        vec![ChildSpec::supervisor("pipelines", pipelines)],
    )
    .await?;
    let stage = runtime
        .registry()
        .actor_ref::<u64>("/pipelines/demo/stage")
        .context("the stage worker is listed")?;
    stage.try_send(42)?;

    let mut events = runtime.subscribe();
    println!("killing /pipelines/demo/stage (mode=panic):");
    runtime.kill("/pipelines/demo/stage", KillMode::Panic)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut restarted = 0;
    while restarted < 2 {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .context("waiting for the stage and the sink to restart")??;
        match &event.event {
            Lifecycle::Failed { reason } => println!("  failed {}: {reason}", event.path),
            Lifecycle::Restarted {
                incarnation,
                restarts,
            } => {
                restarted += 1;
                println!(
                    "  restarted {} (incarnation {incarnation}, restarts {restarts})",
                    event.path
                );
            }
            _ => {}
        }
    }

    println!("the tree now:");
    println!(
        "  {:<28} {:<10} {:<8} {:>8} {:>11}",
        "path", "kind", "state", "restarts", "incarnation"
    );
    for actor in runtime.registry().list() {
        println!(
            "  {:<28} {:<10} {:<8} {:>8} {:>11}",
            actor.path.as_str(),
            actor.kind,
            actor.state.as_str(),
            actor.restarts,
            actor.incarnation
        );
    }
    runtime.shutdown(Duration::from_secs(5)).await?;
    println!("shut down: children before parents");
    Ok(())
}
