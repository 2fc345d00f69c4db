//! Kill by path: both modes restart the actor and count as restarts; 1,000 random kills across a
//! 3-level tree of 100 actors leave it whole.

use std::time::Duration;

use streamvisor_supervision::{
    ActorState, Backoff, ChildSpec, KillMode, Lifecycle, StopReason, SupervisionError,
    SupervisionRuntime, SupervisorSpec,
};

use crate::support::{
    drain, is_restart_of, next_event, quiet_intended_panics, settings, wait_until, Journal, Probe,
    WAIT,
};

#[actix_rt::test]
async fn kill_in_both_modes_restarts_and_counts() {
    quiet_intended_panics();
    let journal = Journal::default();
    let runtime = SupervisionRuntime::start(
        settings(),
        vec![ChildSpec::worker("w", Probe::factory("w", &journal)).kind("probe")],
    )
    .await
    .expect("runtime starts");
    let mut events = runtime.subscribe();
    wait_until("w started", WAIT, || journal.start_names().len() == 1).await;

    runtime
        .kill("/w", KillMode::Stop)
        .expect("kill in stop mode");
    let failed = next_event(&mut events, "/w failing after stop-kill", |event| {
        event.path.as_str() == "/w" && matches!(event.event, Lifecycle::Failed { .. })
    })
    .await;
    assert_eq!(
        failed.event,
        Lifecycle::Failed {
            reason: StopReason::Killed
        }
    );
    assert_eq!(failed.kind, "probe");
    next_event(&mut events, "/w restart 1", |event| {
        is_restart_of(event, "/w")
    })
    .await;
    let info = runtime.registry().get("/w").expect("listed");
    assert_eq!(
        (info.restarts, info.incarnation, info.state),
        (1, 2, ActorState::Running)
    );

    runtime
        .kill("/w", KillMode::Panic)
        .expect("kill in panic mode");
    let failed = next_event(&mut events, "/w failing after panic-kill", |event| {
        event.path.as_str() == "/w" && matches!(event.event, Lifecycle::Failed { .. })
    })
    .await;
    assert_eq!(
        failed.event,
        Lifecycle::Failed {
            reason: StopReason::Panicked("killed by request at /w (mode=panic)".to_owned())
        }
    );
    next_event(&mut events, "/w restart 2", |event| {
        is_restart_of(event, "/w")
    })
    .await;
    let info = runtime.registry().get("/w").expect("listed");
    assert_eq!((info.restarts, info.incarnation), (2, 3));
    assert_eq!(journal.start_names().len(), 3);

    assert_eq!(
        runtime.kill("/nope", KillMode::Stop),
        Err(SupervisionError::UnknownPath("/nope".to_owned()))
    );
    assert_eq!(
        runtime.kill("/", KillMode::Stop),
        Err(SupervisionError::KillRoot)
    );
    assert!(matches!(
        runtime.kill("w", KillMode::Stop),
        Err(SupervisionError::InvalidPath { .. })
    ));
    runtime.shutdown(WAIT).await.expect("clean shutdown");
}

/// Root -> 4 supervisors -> 4 supervisors each -> 5 workers each: 4 + 16 + 80 = 100 actors.
fn three_level_tree(journal: &Journal) -> (Vec<ChildSpec>, Vec<String>) {
    let mut paths = Vec::new();
    let mut top = Vec::new();
    for i in 0..4 {
        let mut middle = SupervisorSpec::builder()
            .backoff(Backoff::none())
            .intensity(100_000, Duration::from_secs(1));
        paths.push(format!("/s{i}"));
        for j in 0..4 {
            let mut leaf = SupervisorSpec::builder()
                .backoff(Backoff::none())
                .intensity(100_000, Duration::from_secs(1));
            paths.push(format!("/s{i}/m{j}"));
            for k in 0..5 {
                let name = format!("w{k}");
                paths.push(format!("/s{i}/m{j}/{name}"));
                leaf = leaf.child(ChildSpec::worker(
                    name.clone(),
                    Probe::factory(&name, journal),
                ));
            }
            middle = middle.child(ChildSpec::supervisor(
                format!("m{j}"),
                leaf.build().expect("leaf spec"),
            ));
        }
        top.push(ChildSpec::supervisor(
            format!("s{i}"),
            middle.build().expect("middle spec"),
        ));
    }
    (top, paths)
}

pub(crate) fn tree_paths_running(runtime: &SupervisionRuntime, paths: &[String]) -> bool {
    paths.iter().all(|path| {
        runtime
            .registry()
            .get(path)
            .is_some_and(|info| info.state == ActorState::Running)
    })
}

#[actix_rt::test]
async fn a_thousand_random_kills_leave_the_tree_whole() {
    quiet_intended_panics();
    let seed = std::env::var("KILL_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("random kills: seed={seed} (KILL_SEED={seed} repeats this run)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let journal = Journal::default();
    let (children, paths) = three_level_tree(&journal);
    assert_eq!(paths.len(), 100);
    let runtime = SupervisionRuntime::start(settings(), children)
        .await
        .expect("runtime starts");
    let mut events = runtime.subscribe();
    let mut everything = runtime.subscribe();
    wait_until("all 100 actors running", WAIT, || {
        tree_paths_running(&runtime, &paths)
    })
    .await;

    let mut kills = 0;
    while kills < 1_000 {
        let path = &paths[rng.usize(..paths.len())];
        let mode = if rng.bool() {
            KillMode::Stop
        } else {
            KillMode::Panic
        };
        match runtime.kill(path, mode) {
            Ok(()) => kills += 1,
            // Its supervisor is being restarted by an earlier kill: choose again.
            Err(SupervisionError::UnknownPath(_) | SupervisionError::Restarting(_)) => {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
            Err(error) => panic!("kill {kills} of {path}: {error}"),
        }
        next_event(
            &mut events,
            &format!("restart of {path} after kill {kills}"),
            |event| is_restart_of(event, path),
        )
        .await;
    }
    wait_until("all 100 actors running after the kills", WAIT, || {
        tree_paths_running(&runtime, &paths)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let all = drain(&mut everything);
    let restarts = all
        .iter()
        .filter(|event| matches!(event.event, Lifecycle::Restarted { .. }))
        .count();
    let failures = all
        .iter()
        .filter(|event| matches!(event.event, Lifecycle::Failed { .. }))
        .count();
    let escalations = all
        .iter()
        .filter(|event| event.event == Lifecycle::Escalated)
        .count();
    let listed = runtime.registry().list();
    println!(
        "random kills: kills={kills} failures={failures} restarts={restarts} \
         escalations={escalations} listed={}",
        listed.len()
    );
    assert_eq!(restarts, kills, "restarts counted equal the kills");
    assert_eq!(failures, kills, "every kill was one failure");
    assert_eq!(escalations, 0);
    assert_eq!(listed.len(), 101, "root + 100 actors listed");
    runtime.shutdown(WAIT).await.expect("clean shutdown");
}

#[actix_rt::test]
async fn a_restarting_actor_stays_listed_and_refuses_kills_until_it_runs() {
    let journal = Journal::default();
    let mut runtime_settings = settings();
    runtime_settings.root.backoff = Backoff {
        min: Duration::from_millis(400),
        max: Duration::from_secs(1),
        factor: 2.0,
        jitter: 0.0,
        reset_after: Duration::from_secs(30),
    };
    let runtime = SupervisionRuntime::start(
        runtime_settings,
        vec![ChildSpec::worker("slow", Probe::factory("slow", &journal))],
    )
    .await
    .expect("runtime starts");
    runtime.kill("/slow", KillMode::Stop).expect("first kill");
    wait_until("/slow listed as restarting", WAIT, || {
        runtime
            .registry()
            .get("/slow")
            .is_some_and(|info| info.state == ActorState::Restarting)
    })
    .await;
    assert_eq!(
        runtime.kill("/slow", KillMode::Stop),
        Err(SupervisionError::Restarting("/slow".to_owned()))
    );
    wait_until("/slow running again", WAIT, || {
        runtime
            .registry()
            .get("/slow")
            .is_some_and(|info| info.state == ActorState::Running && info.incarnation == 2)
    })
    .await;
    assert_eq!(journal.start_names().len(), 2);
    runtime.shutdown(WAIT).await.expect("clean shutdown");
}

#[actix_rt::test]
async fn killing_a_supervisor_restarts_it_with_a_fresh_subtree_in_both_modes() {
    quiet_intended_panics();
    let journal = Journal::default();
    let sub = SupervisorSpec::builder()
        .backoff(Backoff::none())
        .child(ChildSpec::worker("x", Probe::factory("x", &journal)))
        .child(ChildSpec::worker("y", Probe::factory("y", &journal)))
        .build()
        .expect("valid spec");
    let runtime = SupervisionRuntime::start(settings(), vec![ChildSpec::supervisor("sub", sub)])
        .await
        .expect("runtime starts");
    let mut events = runtime.subscribe();
    for (round, mode) in [KillMode::Stop, KillMode::Panic].into_iter().enumerate() {
        runtime.kill("/sub", mode).expect("kill the supervisor");
        let failed = next_event(&mut events, "/sub failing", |event| {
            event.path.as_str() == "/sub" && matches!(event.event, Lifecycle::Failed { .. })
        })
        .await;
        let expected = match mode {
            KillMode::Stop => StopReason::Killed,
            KillMode::Panic => {
                StopReason::Panicked("killed by request at /sub (mode=panic)".to_owned())
            }
        };
        assert_eq!(failed.event, Lifecycle::Failed { reason: expected });
        next_event(&mut events, "/sub restarting", |event| {
            is_restart_of(event, "/sub")
        })
        .await;
        let info = runtime.registry().get("/sub").expect("listed");
        assert_eq!(
            (info.restarts, info.incarnation),
            (round as u32 + 1, round as u64 + 2)
        );
        // Its children stopped (children first) and started fresh: incarnation 1 again.
        for child in ["/sub/x", "/sub/y"] {
            let info = runtime.registry().get(child).expect("child listed");
            assert_eq!(
                (info.incarnation, info.state),
                (1, ActorState::Running),
                "{child}"
            );
        }
    }
    assert_eq!(journal.start_names(), ["x", "y", "x", "y", "x", "y"]);
    let stops: Vec<StopReason> = journal
        .stop_log()
        .into_iter()
        .map(|(_, reason)| reason)
        .collect();
    assert_eq!(stops, vec![StopReason::Shutdown; 4]);
    runtime.shutdown(WAIT).await.expect("clean shutdown");
}
