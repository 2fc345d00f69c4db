//! The root crate exposes the supervision layer as `streamvisor::supervision`: a tree built
//! through it restarts a killed worker, as the `supervision_tree` example shows.

use std::time::Duration;

use streamvisor::supervision::{
    ActorState, ChildSpec, Failure, KillMode, Lifecycle, RuntimeSettings, SupervisionRuntime,
    SupervisionStrategy, SupervisorSpec, Worker, WorkerContext,
};

struct Idle;

impl Worker for Idle {
    type Message = ();

    fn handle(&mut self, (): (), _ctx: &mut WorkerContext<'_, Self>) -> Result<(), Failure> {
        Ok(())
    }
}

#[actix_rt::test]
async fn killing_the_stage_restarts_it_and_the_sink_under_rest_for_one() {
    let worker = ChildSpec::worker("worker", || Idle);
    let demo = SupervisorSpec::builder()
        .strategy(SupervisionStrategy::RestForOne)
        .children(["source", "stage", "sink"].map(|name| worker.named(name)))
        .build()
        .expect("valid demo spec");
    let runtime = SupervisionRuntime::start(
        RuntimeSettings::default(),
        vec![ChildSpec::supervisor("demo", demo)],
    )
    .await
    .expect("runtime starts");
    let mut events = runtime.subscribe();
    runtime
        .kill("/demo/stage", KillMode::Stop)
        .expect("kill the stage");
    let mut restarted = Vec::new();
    while restarted.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("timed out waiting for the stage and the sink to restart")
            .expect("event stream open");
        if matches!(event.event, Lifecycle::Restarted { .. }) {
            restarted.push(event.path.to_string());
        }
    }
    assert_eq!(restarted, ["/demo/stage", "/demo/sink"]);
    let restarts: Vec<(String, u32, ActorState)> = runtime
        .registry()
        .list()
        .into_iter()
        .filter(|actor| actor.path.as_str().starts_with("/demo/"))
        .map(|actor| (actor.path.to_string(), actor.restarts, actor.state))
        .collect();
    assert_eq!(
        restarts,
        [
            ("/demo/sink".to_owned(), 1, ActorState::Running),
            ("/demo/source".to_owned(), 0, ActorState::Running),
            ("/demo/stage".to_owned(), 1, ActorState::Running),
        ]
    );
    runtime
        .shutdown(Duration::from_secs(10))
        .await
        .expect("clean shutdown");
}
