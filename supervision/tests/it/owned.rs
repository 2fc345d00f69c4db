//! What a supervisor owns (a Kafka client, in the source supervisor): made after its children
//! started, dropped before they stop; a factory that fails fails the supervisor, which restarts.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use streamvisor_supervision::{
    Backoff, ChildSpec, Failure, Lifecycle, OwnedResource, StopReason, SupervisionRuntime,
    SupervisorSpec,
};

use crate::support::{lock, next_event, settings, Journal, Probe, WAIT};

/// Records its drop in the journal's stop log, as if it were a child called "resource".
struct Resource(Journal);

impl Drop for Resource {
    fn drop(&mut self) {
        lock(&self.0.stops).push(("resource".to_owned(), StopReason::Shutdown));
    }
}

#[actix_rt::test]
async fn the_resource_is_made_after_the_children_and_dropped_before_them() {
    let journal = Journal::default();
    let owner = {
        let journal = journal.clone();
        SupervisorSpec::builder()
            .child(ChildSpec::worker("a", Probe::factory("a", &journal)))
            .owning(move |context| {
                assert_eq!(context.path.as_str(), "/source");
                assert!(
                    context.tree.registry().get("/source/a").is_some(),
                    "children first"
                );
                Ok(Box::new(Resource(journal.clone())) as OwnedResource)
            })
            .build()
            .expect("valid spec")
    };
    let runtime =
        SupervisionRuntime::start(settings(), vec![ChildSpec::supervisor("source", owner)])
            .await
            .expect("runtime starts");
    runtime.shutdown(WAIT).await.expect("clean shutdown");
    let stops: Vec<String> = journal
        .stop_log()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        stops,
        ["resource", "a"],
        "the resource goes before the children stop"
    );
}

#[actix_rt::test]
async fn a_failing_factory_fails_the_supervisor_which_restarts_with_backoff() {
    let attempts = Arc::new(AtomicU32::new(0));
    let owner = {
        let attempts = Arc::clone(&attempts);
        SupervisorSpec::builder()
            .owning(move |_| {
                if attempts.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(Failure::new("broker unreachable"))
                } else {
                    Ok(Box::new(()) as OwnedResource)
                }
            })
            .build()
            .expect("valid spec")
    };
    let mut runtime_settings = settings();
    runtime_settings.root.backoff = Backoff {
        min: Duration::from_millis(10),
        ..Backoff::default()
    };
    let runtime = SupervisionRuntime::start(
        runtime_settings,
        vec![ChildSpec::supervisor("source", owner)],
    )
    .await
    .expect("runtime starts");
    let mut events = runtime.subscribe();
    next_event(&mut events, "the second restart of /source", |event| {
        event.path.as_str() == "/source"
            && matches!(event.event, Lifecycle::Restarted { restarts: 2, .. })
    })
    .await;
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    runtime.shutdown(WAIT).await.expect("clean shutdown");
}
