//! Ordered shutdown: every actor of a 3-level tree stops, children before their parents, within
//! the deadline.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use streamvisor_supervision::{
    ChildSpec, Lifecycle, StopReason, SupervisionRuntime, SupervisorSpec,
};

use crate::support::{drain, settings, wait_until, Journal, Probe, WAIT};

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
