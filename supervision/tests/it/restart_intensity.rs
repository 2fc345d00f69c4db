//! Restart intensity and backoff: a child that always fails is started exactly max_restarts + 1
//! times, with growing gaps, then its supervisor escalates once.

use std::time::Duration;

use streamvisor_supervision::{
    Backoff, ChildSpec, Lifecycle, RestartPolicy, StopReason, SupervisionRuntime, SupervisorSpec,
};

use crate::support::{drain, next_event, settings, wait_until, Journal, Probe, WAIT};

#[actix_rt::test]
async fn always_failing_child_starts_six_times_then_escalates_once() {
    let journal = Journal::default();
    let always_fails = {
        let journal = journal.clone();
        move || Probe {
            name: "always".to_owned(),
            journal: journal.clone(),
            fail_on_start: true,
        }
    };
    let backoff = Backoff {
        min: Duration::from_millis(20),
        max: Duration::from_secs(10),
        factor: 2.0,
        jitter: 0.1,
        reset_after: Duration::from_secs(30),
    };
    let flaky = SupervisorSpec::builder()
        .intensity(5, Duration::from_secs(10))
        .backoff(backoff)
        .child(ChildSpec::worker("always", always_fails))
        .build()
        .expect("valid spec");
    // Temporary: once it escalates, its parent lets it go, so the count stays exact.
    let runtime = SupervisionRuntime::start(
        settings(),
        vec![ChildSpec::supervisor("flaky", flaky).policy(RestartPolicy::Temporary)],
    )
    .await
    .expect("runtime starts");
    let mut events = runtime.subscribe();

    let escalated = next_event(&mut events, "escalation of /flaky", |event| {
        event.path.as_str() == "/flaky" && event.event == Lifecycle::Escalated
    })
    .await;
    assert_eq!(escalated.kind, "supervisor");
    let parent_saw = next_event(&mut events, "/flaky failing with Escalated", |event| {
        event.path.as_str() == "/flaky"
            && event.event
                == Lifecycle::Failed {
                    reason: StopReason::Escalated,
                }
    })
    .await;
    assert_eq!(parent_saw.kind, "supervisor");
    wait_until("/flaky leaving the registry", WAIT, || {
        runtime.registry().get("/flaky").is_none()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let starts = journal.start_times();
    assert_eq!(starts.len(), 6, "1 start + 5 restarts, then escalation");
    let escalations = drain(&mut events)
        .into_iter()
        .filter(|event| event.event == Lifecycle::Escalated)
        .count();
    assert_eq!(
        escalations, 0,
        "escalated exactly once (the one awaited above)"
    );

    let gaps: Vec<Duration> = starts.windows(2).map(|pair| pair[1] - pair[0]).collect();
    for (i, gap) in gaps.iter().enumerate() {
        let base = Duration::from_millis(20 << i);
        assert!(*gap >= base, "gap {i} was {gap:?}, below its base {base:?}");
        assert!(
            *gap < base * 10,
            "gap {i} was {gap:?}, not under 10x its base {base:?}"
        );
    }
    println!("restart gaps: {gaps:?}");
    runtime.shutdown(WAIT).await.expect("clean shutdown");
}

#[actix_rt::test]
async fn root_escalation_under_stay_stops_everything_and_reports() {
    let journal = Journal::default();
    let mut runtime_settings = settings();
    runtime_settings.root.max_restarts = 2;
    runtime_settings.root.within = Duration::from_secs(10);
    let runtime = SupervisionRuntime::start(
        runtime_settings,
        vec![
            ChildSpec::worker("steady", Probe::factory("steady", &journal)),
            ChildSpec::worker("doomed", {
                let journal = journal.clone();
                move || Probe {
                    name: "doomed".to_owned(),
                    journal: journal.clone(),
                    fail_on_start: true,
                }
            }),
        ],
    )
    .await
    .expect("runtime starts");
    let reason = tokio::time::timeout(WAIT, runtime.stopped())
        .await
        .expect("root escalated in time");
    assert_eq!(reason, StopReason::Escalated);
    assert!(
        runtime.registry().is_empty(),
        "{:?}",
        runtime.registry().list()
    );
    let doomed_starts = journal
        .start_names()
        .iter()
        .filter(|name| *name == "doomed")
        .count();
    assert_eq!(doomed_starts, 3);
    assert!(journal
        .stop_log()
        .contains(&("steady".to_owned(), StopReason::Shutdown)));
}

/// Set in the child process of `root_escalation_under_exit_ends_the_process_with_code_1`.
const EXIT_CHILD: &str = "STREAMVISOR_TEST_EXIT_CHILD";

#[actix_rt::test]
async fn root_escalation_under_exit_ends_the_process_with_code_1() {
    if std::env::var_os(EXIT_CHILD).is_some() {
        // The child: a root that must give up and take the process with it.
        let journal = Journal::default();
        let mut runtime_settings = settings();
        runtime_settings.on_escalation = streamvisor_supervision::OnEscalation::Exit;
        runtime_settings.root.max_restarts = 1;
        runtime_settings.root.within = Duration::from_secs(10);
        let runtime = SupervisionRuntime::start(
            runtime_settings,
            vec![ChildSpec::worker("doomed", {
                let journal = journal.clone();
                move || Probe {
                    name: "doomed".to_owned(),
                    journal: journal.clone(),
                    fail_on_start: true,
                }
            })],
        )
        .await
        .expect("runtime starts");
        let _ = tokio::time::timeout(WAIT, runtime.stopped()).await;
        // Reaching this line means the process did not exit: exit 0 so the parent fails.
        std::process::exit(0);
    }
    let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "restart_intensity::root_escalation_under_exit_ends_the_process_with_code_1",
            "--test-threads=1",
        ])
        .env(EXIT_CHILD, "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("child test process runs");
    assert_eq!(
        status.code(),
        Some(1),
        "on_escalation = exit ends the process with code 1"
    );
}
