//! Panic containment: a panicking actor restarts with reason Panicked while its siblings on the
//! same arbiter thread go on; deaths outside any handler are still seen.

use std::time::Duration;

use streamvisor_supervision::{ChildSpec, Lifecycle, StopReason, SupervisionRuntime};

use crate::support::{
    lock, next_event, quiet_intended_panics, settings, wait_until, Journal, Order, Probe, WAIT,
};

#[actix_rt::test]
async fn panic_restarts_the_actor_and_its_sibling_on_the_same_arbiter_handles_everything() {
    quiet_intended_panics();
    let panicky = Journal::default();
    let sibling = Journal::default();
    let runtime = SupervisionRuntime::start(
        settings(),
        vec![
            ChildSpec::worker("panicky", Probe::factory("panicky", &panicky)).on_arbiter(0),
            ChildSpec::worker("sibling", Probe::factory("sibling", &sibling))
                .on_arbiter(0)
                .mailbox_capacity(2_000),
        ],
    )
    .await
    .expect("runtime starts");
    let mut events = runtime.subscribe();
    wait_until("both started", WAIT, || {
        panicky.start_names().len() == 1 && sibling.start_names().len() == 1
    })
    .await;
    let panicky_thread = lock(&panicky.starts)[0].2;
    let sibling_thread = lock(&sibling.starts)[0].2;
    assert_eq!(panicky_thread, sibling_thread, "both run on arbiter 0");

    let to_panicky = runtime
        .registry()
        .actor_ref::<Order>("/panicky")
        .expect("panicky listed");
    let to_sibling = runtime
        .registry()
        .actor_ref::<Order>("/sibling")
        .expect("sibling listed");
    to_panicky.try_send(Order::Panic).expect("panic order sent");
    for i in 0..1_000 {
        to_sibling
            .try_send(Order::Count)
            .unwrap_or_else(|error| panic!("message {i} to the sibling: {error}"));
    }

    let failed = next_event(&mut events, "/panicky failing", |event| {
        event.path.as_str() == "/panicky" && matches!(event.event, Lifecycle::Failed { .. })
    })
    .await;
    assert_eq!(
        failed.event,
        Lifecycle::Failed {
            reason: StopReason::Panicked("intended panic in panicky".to_owned())
        }
    );
    next_event(&mut events, "/panicky restarting", |event| {
        event.path.as_str() == "/panicky"
            && event.event
                == Lifecycle::Restarted {
                    incarnation: 2,
                    restarts: 1,
                }
    })
    .await;
    wait_until("the sibling handling all 1,000 messages", WAIT, || {
        sibling.handled() == 1_000
    })
    .await;
    assert_eq!(
        sibling.start_names().len(),
        1,
        "the sibling never restarted"
    );
    let restarted_thread = lock(&panicky.starts)[1].2;
    assert_eq!(
        restarted_thread, panicky_thread,
        "the arbiter thread lives on"
    );
    runtime.shutdown(WAIT).await.expect("clean shutdown");
}

#[actix_rt::test]
async fn a_panic_outside_any_handler_is_still_seen_and_restarted() {
    quiet_intended_panics();
    let journal = Journal::default();
    let runtime = SupervisionRuntime::start(
        settings(),
        vec![ChildSpec::worker("w", Probe::factory("w", &journal))],
    )
    .await
    .expect("runtime starts");
    let mut events = runtime.subscribe();
    wait_until("w started", WAIT, || journal.start_names().len() == 1).await;
    let to_w = runtime
        .registry()
        .actor_ref::<Order>("/w")
        .expect("w listed");
    to_w.try_send(Order::PanicInFuture).expect("order sent");
    let failed = next_event(&mut events, "/w failing", |event| {
        event.path.as_str() == "/w" && matches!(event.event, Lifecycle::Failed { .. })
    })
    .await;
    assert!(
        matches!(
            &failed.event,
            Lifecycle::Failed {
                reason: StopReason::Panicked(_)
            }
        ),
        "{failed:?}"
    );
    wait_until("w restarted", WAIT, || journal.start_names().len() == 2).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(runtime.registry().get("/w").expect("listed").restarts, 1);
    runtime.shutdown(WAIT).await.expect("clean shutdown");
}

#[actix_rt::test]
async fn a_panicking_factory_is_a_failure_not_a_crash() {
    quiet_intended_panics();
    let mut runtime_settings = settings();
    runtime_settings.root.max_restarts = 3;
    runtime_settings.root.within = Duration::from_secs(10);
    let runtime = SupervisionRuntime::start(
        runtime_settings,
        vec![ChildSpec::worker("broken", || -> Probe {
            panic!("intended panic in a factory")
        })],
    )
    .await
    .expect("runtime starts");
    let reason = tokio::time::timeout(WAIT, runtime.stopped())
        .await
        .expect("root gave up in time");
    assert_eq!(reason, StopReason::Escalated);
}
