//! Restart policies: Permanent always, Transient only after a failure, Temporary never.

use std::time::Duration;

use streamvisor_supervision::{
    ChildSpec, Lifecycle, RestartPolicy, StopReason, SupervisionRuntime,
};

use crate::support::{drain, next_event, settings, wait_until, Journal, Order, Probe, WAIT};

async fn run_policy(policy: RestartPolicy, order: Order) -> (Journal, Vec<Lifecycle>, bool) {
    let journal = Journal::default();
    let runtime = SupervisionRuntime::start(
        settings(),
        vec![ChildSpec::worker("w", Probe::factory("w", &journal)).policy(policy)],
    )
    .await
    .expect("runtime starts");
    let mut events = runtime.subscribe();
    wait_until("w started", WAIT, || journal.start_names().len() == 1).await;
    runtime
        .registry()
        .actor_ref::<Order>("/w")
        .expect("w listed")
        .try_send(order)
        .expect("order sent");
    next_event(&mut events, "w stopping or restarting", |event| {
        matches!(
            event.event,
            Lifecycle::Stopped { .. } | Lifecycle::Restarted { .. }
        )
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let listed = runtime.registry().get("/w").is_some();
    let seen = drain(&mut events)
        .into_iter()
        .map(|event| event.event)
        .collect();
    runtime.shutdown(WAIT).await.expect("clean shutdown");
    (journal, seen, listed)
}

#[actix_rt::test]
async fn permanent_restarts_even_after_a_normal_stop() {
    let (journal, _, listed) = run_policy(RestartPolicy::Permanent, Order::Finish).await;
    assert_eq!(journal.start_names().len(), 2);
    assert!(listed);
}

#[actix_rt::test]
async fn transient_stays_stopped_after_a_normal_stop_but_restarts_after_a_failure() {
    let (journal, _, listed) = run_policy(RestartPolicy::Transient, Order::Finish).await;
    assert_eq!(journal.start_names().len(), 1);
    assert_eq!(
        journal.stop_log(),
        vec![("w".to_owned(), StopReason::Normal)]
    );
    assert!(!listed, "a child stopped for good leaves the registry");

    let (journal, _, listed) = run_policy(RestartPolicy::Transient, Order::Fail).await;
    assert_eq!(journal.start_names().len(), 2);
    assert!(listed);
}

#[actix_rt::test]
async fn temporary_is_never_restarted() {
    let (journal, _, listed) = run_policy(RestartPolicy::Temporary, Order::Fail).await;
    assert_eq!(journal.start_names().len(), 1);
    assert_eq!(
        journal.stop_log(),
        vec![(
            "w".to_owned(),
            StopReason::Failed("told to fail".to_owned())
        )]
    );
    assert!(!listed);
}
