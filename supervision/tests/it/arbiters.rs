//! Actors spread over the runtime's arbiters (round-robin), never on the caller's thread.

use std::collections::HashSet;

use streamvisor_supervision::{ChildSpec, SupervisionRuntime};

use crate::support::{lock, settings, Journal, Probe, WAIT};

#[actix_rt::test]
async fn children_spread_round_robin_over_the_arbiters() {
    let journal = Journal::default();
    let children = (0..6)
        .map(|i| {
            let name = format!("w{i}");
            ChildSpec::worker(name.clone(), Probe::factory(&name, &journal))
        })
        .collect();
    let runtime = SupervisionRuntime::start(settings(), children)
        .await
        .expect("runtime starts");
    // Started in order, synchronously: all six ran `started` before `start` returned.
    let starts = lock(&journal.starts).clone();
    assert_eq!(starts.len(), 6);
    let threads: HashSet<_> = starts.iter().map(|(_, _, thread)| *thread).collect();
    assert_eq!(threads.len(), 2, "two arbiters, both used");
    assert!(!threads.contains(&std::thread::current().id()));
    // Round-robin: neighbours in start order run on different arbiters.
    for pair in starts.windows(2) {
        assert_ne!(
            pair[0].2, pair[1].2,
            "{} and {} share an arbiter",
            pair[0].0, pair[1].0
        );
    }
    runtime.shutdown(WAIT).await.expect("clean shutdown");
}
