//! The one way the tests wait: poll a condition until it holds, and past a deadline fail
//! naming what was awaited and what was seen last. [`wait_until`] for code on threads,
//! [`wait_for`] inside async tests (whose probe may await and hands back what it found).

use std::time::{Duration, Instant};

/// How often an async probe runs.
const ASYNC_POLL: Duration = Duration::from_millis(20);

/// Polls `done` every 100 ms until it holds; panics naming `what` past `within`.
pub(crate) fn wait_until(what: &str, within: Duration, done: impl FnMut() -> bool) {
    wait_until_or(what, within, done, String::new);
}

/// As [`wait_until`], adding `context()` (logs, counts) to the failure message.
pub(crate) fn wait_until_or(
    what: &str,
    within: Duration,
    mut done: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let began = Instant::now();
    while !done() {
        assert!(
            began.elapsed() < within,
            "waited {within:?} for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `probe` every 20 ms until it returns `Ok`, and returns that; `Err` says what it saw
/// instead. Panics past `within`, naming `what` and the last thing seen.
pub(crate) async fn wait_for<T>(
    what: &str,
    within: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let began = Instant::now();
    loop {
        match probe().await {
            Ok(found) => return found,
            Err(seen) => assert!(
                began.elapsed() < within,
                "waited {within:?} for {what}; last seen: {seen}"
            ),
        }
        tokio::time::sleep(ASYNC_POLL).await;
    }
}
