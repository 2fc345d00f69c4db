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
    wait_until("w started", WAIT, || journal.start_names().len() == 1).await;
    let mut events = runtime.subscribe();
    runtime
        .registry()
        .actor_ref::<Order>("/w")
        .expect("w listed")
        .try_send(order)
        .expect("order sent");
    let first = next_event(&mut events, "w failing, stopping or restarting", |_| true).await;
    // A quiet period to see that nothing else follows (a second restart, a late stop).
    tokio::time::sleep(Duration::from_millis(150)).await;
    let listed = runtime.registry().get("/w").is_some();
    let mut seen = vec![first.event];
    seen.extend(drain(&mut events).into_iter().map(|event| event.event));
    runtime.shutdown(WAIT).await.expect("clean shutdown");
    (journal, seen, listed)
}

fn restarted(events: &[Lifecycle]) -> usize {
    events
        .iter()
        .filter(|event| matches!(event, Lifecycle::Restarted { .. }))
        .count()
}

#[actix_rt::test]
async fn permanent_restarts_even_after_a_normal_stop() {
    let (journal, events, listed) = run_policy(RestartPolicy::Permanent, Order::Finish).await;
    assert_eq!(journal.start_names().len(), 2);
    assert_eq!(restarted(&events), 1);
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
    let (journal, events, listed) = run_policy(RestartPolicy::Temporary, Order::Fail).await;
    assert_eq!(journal.start_names().len(), 1);
    let failure = StopReason::Failed("told to fail".to_owned());
    assert_eq!(
        events,
        [
            Lifecycle::Failed {
                reason: failure.clone()
            },
            Lifecycle::Stopped { reason: failure }
        ]
    );
    assert_eq!(
        journal.stop_log(),
        vec![(
            "w".to_owned(),
            StopReason::Failed("told to fail".to_owned())
        )]
    );
    assert!(!listed);
}

#[actix_rt::test]
async fn a_temporary_sibling_leaves_instead_of_restarting_with_the_group() {
    use streamvisor_supervision::{Backoff, SupervisionStrategy, SupervisorSpec};
    let journal = Journal::default();
    let group = SupervisorSpec::builder()
        .strategy(SupervisionStrategy::OneForAll)
        .backoff(Backoff::none())
        .child(ChildSpec::worker("a", Probe::factory("a", &journal)))
        .child(
            ChildSpec::worker("once", Probe::factory("once", &journal))
                .policy(RestartPolicy::Temporary),
        )
        .child(ChildSpec::worker("c", Probe::factory("c", &journal)))
        .build()
        .expect("valid spec");
    let runtime = SupervisionRuntime::start(settings(), vec![ChildSpec::supervisor("g", group)])
        .await
        .expect("runtime starts");
    runtime
        .kill("/g/c", streamvisor_supervision::KillMode::Stop)
        .expect("kill c");
    wait_until("a and c restarted", WAIT, || {
        journal.start_names().len() == 5
    })
    .await;
    tokio::time::sleep(Duration::from_millis(150)).await; // nothing more follows
    assert_eq!(journal.start_names(), ["a", "once", "c", "a", "c"]);
    assert!(runtime.registry().get("/g/once").is_none());
    runtime.shutdown(WAIT).await.expect("clean shutdown");
}
