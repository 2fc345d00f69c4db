//! Bad input: invalid settings, duplicate names and unknown paths are typed errors naming what is
//! wrong, never panics.

use std::time::Duration;

use streamvisor_supervision::{
    Backoff, ChildSpec, RuntimeSettings, SupervisionError, SupervisionRuntime, SupervisorSpec,
};

use crate::support::{settings, wait_until, Journal, Probe, WAIT};

#[test]
fn invalid_settings_are_typed_errors_naming_the_setting() {
    let journal = Journal::default();
    let zero_window = SupervisorSpec::builder()
        .intensity(5, Duration::ZERO)
        .build();
    let error = zero_window.expect_err("zero window rejected");
    assert!(error.to_string().contains("supervision.within"), "{error}");

    let inverted = SupervisorSpec::builder()
        .backoff(Backoff {
            min: Duration::from_secs(3),
            max: Duration::from_secs(1),
            ..Backoff::default()
        })
        .build();
    let error = inverted.expect_err("min above max rejected");
    assert!(
        error.to_string().contains("supervision.backoff.min"),
        "{error}"
    );

    let duplicate = SupervisorSpec::builder()
        .child(ChildSpec::worker("same", Probe::factory("same", &journal)))
        .child(ChildSpec::worker("same", Probe::factory("same", &journal)))
        .build();
    let error = duplicate.expect_err("duplicate names rejected");
    assert!(matches!(error, SupervisionError::DuplicateChild { ref name, .. } if name == "same"));
    assert!(error.to_string().contains("\"same\""), "{error}");

    let slash = SupervisorSpec::builder()
        .child(ChildSpec::worker("a/b", Probe::factory("a/b", &journal)))
        .build();
    let error = slash.expect_err("a slash in a name rejected");
    assert!(matches!(error, SupervisionError::InvalidName { .. }));
    assert!(error.to_string().contains("\"a/b\""), "{error}");

    let no_mailbox = SupervisorSpec::builder()
        .child(ChildSpec::worker("m", Probe::factory("m", &journal)).mailbox_capacity(0))
        .build();
    let error = no_mailbox.expect_err("an empty mailbox rejected");
    assert!(error.to_string().contains("mailbox_capacity"), "{error}");
    assert!(error.to_string().contains("\"m\""), "{error}");

    let endless = SupervisorSpec::builder()
        .backoff(Backoff {
            max: Duration::MAX,
            ..Backoff::default()
        })
        .build();
    let error = endless.expect_err("an endless backoff rejected");
    assert!(
        error.to_string().contains("supervision.backoff.max"),
        "{error}"
    );
}

#[actix_rt::test]
async fn runtime_settings_are_checked() {
    let mut huge = settings();
    huge.event_capacity = usize::MAX;
    let error = SupervisionRuntime::start(huge, Vec::new())
        .await
        .err()
        .expect("rejected");
    assert!(
        error.to_string().contains("runtime.event_capacity"),
        "{error}"
    );
    let mut none = settings();
    none.arbiters = 0;
    let error = SupervisionRuntime::start(none, Vec::new())
        .await
        .err()
        .expect("rejected");
    assert!(error.to_string().contains("runtime.arbiters"), "{error}");
}

#[test]
fn a_runtime_needs_an_actix_system() {
    let plain_tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a plain tokio runtime");
    let error = plain_tokio
        .block_on(SupervisionRuntime::start(
            RuntimeSettings::default(),
            Vec::new(),
        ))
        .err();
    assert_eq!(error, Some(SupervisionError::NoSystem));
}

#[actix_rt::test]
async fn dynamic_children_are_checked_too() {
    let journal = Journal::default();
    let sub = SupervisorSpec::builder().build().expect("empty supervisor");
    let runtime =
        SupervisionRuntime::start(settings(), vec![ChildSpec::supervisor("sources", sub)])
            .await
            .expect("runtime starts");
    let path = runtime
        .start_child(
            "/sources",
            ChildSpec::worker("p0", Probe::factory("p0", &journal)),
        )
        .await
        .expect("p0 added");
    assert_eq!(path.as_str(), "/sources/p0");
    let again = runtime
        .start_child(
            "/sources",
            ChildSpec::worker("p0", Probe::factory("p0", &journal)),
        )
        .await;
    assert_eq!(
        again,
        Err(SupervisionError::DuplicateChild {
            supervisor: "/sources".to_owned(),
            name: "p0".to_owned()
        })
    );
    let under_worker = runtime
        .start_child(
            "/sources/p0",
            ChildSpec::worker("x", Probe::factory("x", &journal)),
        )
        .await;
    assert_eq!(
        under_worker,
        Err(SupervisionError::NotASupervisor("/sources/p0".to_owned()))
    );
    let nowhere = runtime
        .start_child(
            "/nowhere",
            ChildSpec::worker("x", Probe::factory("x", &journal)),
        )
        .await;
    assert_eq!(
        nowhere,
        Err(SupervisionError::UnknownPath("/nowhere".to_owned()))
    );

    wait_until("p0 started", WAIT, || journal.start_names().len() == 1).await;
    runtime
        .stop_child("/sources", "p0")
        .await
        .expect("p0 stopped");
    assert!(runtime.registry().get("/sources/p0").is_none());
    assert_eq!(
        runtime.stop_child("/sources", "p0").await,
        Err(SupervisionError::UnknownPath("/sources/p0".to_owned()))
    );
    runtime.shutdown(WAIT).await.expect("clean shutdown");
}
