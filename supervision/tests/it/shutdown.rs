//! Ordered shutdown: every actor of a 3-level tree stops, children before their parents, within
//! the deadline.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use streamvisor_supervision::{
    ChildSpec, Lifecycle, StopReason, SupervisionError, SupervisionRuntime, SupervisorSpec,
};

use crate::support::{drain, settings, wait_until, Journal, Order, Probe, WAIT};

#[actix_rt::test]
async fn shutdown_stops_children_before_parents_within_the_deadline() {
    let journal = Journal::default();
    let mut paths = vec!["/".to_owned()];
    let mut top = Vec::new();
    for i in 0..3 {
        let mut middle = SupervisorSpec::builder();
        paths.push(format!("/s{i}"));
        for j in 0..3 {
            let mut leaf = SupervisorSpec::builder();
            paths.push(format!("/s{i}/m{j}"));
            for k in 0..4 {
                let name = format!("w{i}{j}{k}");
                paths.push(format!("/s{i}/m{j}/{name}"));
                leaf = leaf.child(ChildSpec::worker(
                    name.clone(),
                    Probe::factory(&name, &journal),
                ));
            }
            middle = middle.child(ChildSpec::supervisor(
                format!("m{j}"),
                leaf.build().expect("leaf"),
            ));
        }
        top.push(ChildSpec::supervisor(
            format!("s{i}"),
            middle.build().expect("middle"),
        ));
    }
    let runtime = SupervisionRuntime::start(settings(), top)
        .await
        .expect("runtime starts");
    let mut events = runtime.subscribe();
    wait_until("every actor listed", WAIT, || {
        runtime.registry().len() == paths.len()
    })
    .await;

    let deadline = Duration::from_secs(5);
    let began = Instant::now();
    let registry = runtime.registry().clone();
    runtime
        .shutdown(deadline)
        .await
        .expect("shutdown within the deadline");
    let took = began.elapsed();
    assert!(took < deadline, "shutdown took {took:?}");
    assert!(
        registry.is_empty(),
        "nothing left listed: {:?}",
        registry.list()
    );

    let stopped: HashMap<String, usize> = drain(&mut events)
        .into_iter()
        .filter(|event| {
            matches!(
                event.event,
                Lifecycle::Stopped {
                    reason: StopReason::Shutdown
                }
            )
        })
        .enumerate()
        .map(|(order, event)| (event.path.to_string(), order))
        .collect();
    assert_eq!(
        stopped.len(),
        paths.len(),
        "every actor stopped once with reason Shutdown"
    );
    for path in &paths {
        let own = stopped[path];
        for other in &paths {
            let below = other != path && (path == "/" || other.starts_with(&format!("{path}/")));
            if below {
                assert!(
                    stopped[other] < own,
                    "{other} must stop before its ancestor {path}"
                );
            }
        }
    }
    let worker_stops = journal.stop_log();
    assert_eq!(worker_stops.len(), 36);
    assert!(worker_stops
        .iter()
        .all(|(_, reason)| *reason == StopReason::Shutdown));
    println!("shutdown of {} actors took {took:?}", paths.len());
}

#[actix_rt::test]
async fn a_child_that_will_not_stop_is_reported_and_the_rest_still_stops() {
    let journal = Journal::default();
    let runtime = SupervisionRuntime::start(
        settings(),
        vec![
            ChildSpec::worker("calm", Probe::factory("calm", &journal)),
            ChildSpec::worker("stuck", Probe::factory("stuck", &journal))
                .shutdown_timeout(Duration::from_millis(200)),
        ],
    )
    .await
    .expect("runtime starts");
    let (_release, blocked) = std::sync::mpsc::channel();
    runtime
        .registry()
        .actor_ref::<Order>("/stuck")
        .expect("stuck listed")
        .try_send(Order::Block(blocked))
        .expect("block order sent");
    wait_until("the block order taken", WAIT, || {
        runtime
            .registry()
            .get("/stuck")
            .is_some_and(|info| info.mailbox_len == 0)
    })
    .await;
    let began = Instant::now();
    let outcome = runtime.shutdown(Duration::from_secs(5)).await;
    let took = began.elapsed();
    match outcome {
        Err(SupervisionError::ShutdownTimeout { still_running, .. }) => {
            assert!(
                still_running.contains(&"/stuck".to_owned()),
                "{still_running:?}"
            );
            assert!(
                !still_running.contains(&"/calm".to_owned()),
                "{still_running:?}"
            );
        }
        other => panic!("expected a shutdown timeout naming /stuck, got {other:?}"),
    }
    assert!(
        took < Duration::from_secs(2),
        "gave up on /stuck after its 200 ms: {took:?}"
    );
    assert!(journal
        .stop_log()
        .contains(&("calm".to_owned(), StopReason::Shutdown)));
}
