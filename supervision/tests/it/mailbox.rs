//! The registry's mailbox figures: lengths counted by the crate, capacity as configured, and
//! sends refused (message handed back) at capacity.

use streamvisor_supervision::{ChildSpec, SupervisionRuntime, TrySendError};

use crate::support::{settings, wait_until, Journal, Order, Probe, WAIT};

#[actix_rt::test]
async fn mailbox_length_is_counted_and_capacity_reported() {
    let journal = Journal::default();
    let runtime = SupervisionRuntime::start(
        settings(),
        vec![ChildSpec::worker("w", Probe::factory("w", &journal))
            .mailbox_capacity(8)
            .on_arbiter(1)],
    )
    .await
    .expect("runtime starts");
    wait_until("w started", WAIT, || journal.start_names().len() == 1).await;
    let to_w = runtime
        .registry()
        .actor_ref::<Order>("/w")
        .expect("w listed");
    let (release, blocked) = std::sync::mpsc::channel();
    to_w.try_send(Order::Block(blocked))
        .expect("block order sent");
    wait_until("the block order taken", WAIT, || to_w.mailbox_len() == 0).await;
    for _ in 0..5 {
        to_w.try_send(Order::Count).expect("room in the mailbox");
    }
    let info = runtime.registry().get("/w").expect("listed");
    assert_eq!((info.mailbox_len, info.mailbox_capacity), (5, 8));

    let mut refused = 0;
    let mut accepted = 5;
    for _ in 0..20 {
        match to_w.try_send(Order::Count) {
            Ok(()) => accepted += 1,
            Err(TrySendError::Full(Order::Count)) => refused += 1,
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    assert!(
        accepted <= 9,
        "actix allows one message past capacity per sender: {accepted}"
    );
    assert_eq!(accepted + refused, 25);
    release.send(()).expect("release the block");
    wait_until("every accepted message handled", WAIT, || {
        journal.handled() == accepted
    })
    .await;
    assert_eq!(runtime.registry().get("/w").expect("listed").mailbox_len, 0);
    runtime.shutdown(WAIT).await.expect("clean shutdown");
}
