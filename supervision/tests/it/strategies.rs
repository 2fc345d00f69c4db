//! Each strategy restarts exactly the right children, in the right order.

use std::time::Duration;

use streamvisor_supervision::{
    Backoff, ChildSpec, KillMode, StopReason, SupervisionRuntime, SupervisionStrategy,
    SupervisorSpec,
};

use crate::support::{settings, wait_until, Journal, Probe, WAIT};

const NAMES: [&str; 4] = ["a", "b", "c", "d"];

/// Starts `/s` with children a, b, c, d under `strategy`, kills `/s/b`, and returns the journal
/// once the expected starts have happened (and a quiet period showed nothing more).
async fn kill_b_under(strategy: SupervisionStrategy, expected_starts: usize) -> Journal {
    let journal = Journal::default();
    let spec = SupervisorSpec::builder()
        .strategy(strategy)
        .backoff(Backoff::none())
        .children(
            NAMES
                .iter()
                .map(|name| ChildSpec::worker(*name, Probe::factory(name, &journal))),
        )
        .build()
        .expect("valid spec");
    let runtime = SupervisionRuntime::start(settings(), vec![ChildSpec::supervisor("s", spec)])
        .await
        .expect("runtime starts");
    wait_until("four children started", WAIT, || {
        journal.start_names().len() == 4
    })
    .await;
    runtime.kill("/s/b", KillMode::Stop).expect("kill b");
    wait_until("restarts after killing b", WAIT, || {
        journal.start_names().len() >= expected_starts
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    wait_until("all four listed as running", WAIT, || {
        NAMES.iter().all(|name| {
            runtime
                .registry()
                .get(&format!("/s/{name}"))
                .is_some_and(|info| info.state == streamvisor_supervision::ActorState::Running)
        })
    })
    .await;
    runtime.shutdown(WAIT).await.expect("clean shutdown");
    journal
}

fn stops_before_shutdown(journal: &Journal, count: usize) -> Vec<(String, StopReason)> {
    journal.stop_log().into_iter().take(count).collect()
}

#[actix_rt::test]
async fn one_for_one_restarts_only_the_failed_child() {
    let journal = kill_b_under(SupervisionStrategy::OneForOne, 5).await;
    let starts = journal.start_names();
    assert_eq!(&starts[..5], ["a", "b", "c", "d", "b"]);
    assert_eq!(starts.len(), 5, "no other child restarted: {starts:?}");
    assert_eq!(
        stops_before_shutdown(&journal, 1),
        vec![("b".to_owned(), StopReason::Killed)]
    );
}

#[actix_rt::test]
async fn one_for_all_stops_the_others_last_first_then_restarts_all_in_order() {
    let journal = kill_b_under(SupervisionStrategy::OneForAll, 8).await;
    let starts = journal.start_names();
    assert_eq!(starts, ["a", "b", "c", "d", "a", "b", "c", "d"]);
    assert_eq!(
        stops_before_shutdown(&journal, 4),
        vec![
            ("b".to_owned(), StopReason::Killed),
            ("d".to_owned(), StopReason::Shutdown),
            ("c".to_owned(), StopReason::Shutdown),
            ("a".to_owned(), StopReason::Shutdown),
        ]
    );
}

#[actix_rt::test]
async fn rest_for_one_restarts_the_failed_child_and_those_started_after_it() {
    let journal = kill_b_under(SupervisionStrategy::RestForOne, 7).await;
    let starts = journal.start_names();
    assert_eq!(starts, ["a", "b", "c", "d", "b", "c", "d"]);
    assert_eq!(
        stops_before_shutdown(&journal, 3),
        vec![
            ("b".to_owned(), StopReason::Killed),
            ("d".to_owned(), StopReason::Shutdown),
            ("c".to_owned(), StopReason::Shutdown),
        ]
    );
}
