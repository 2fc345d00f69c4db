//! Readiness and fault injection for a pipeline's actors.
//!
//! [`Readiness`] collects why parts of a pipeline are not ready (a sink retrying a failed write):
//! the runtime is ready when nothing is listed. [`SinkFaults`] lets tests make a file sink's
//! writes fail for a while (with the `test-util` feature), to prove the retry-in-place path.

#[cfg(feature = "test-util")]
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
#[cfg(feature = "test-util")]
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;

/// Why parts of a pipeline are not ready, by the component's path.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    reasons: Arc<DashMap<String, String>>,
}

impl Readiness {
    /// `component` is not ready, because of `reason`.
    pub fn unready(&self, component: &str, reason: String) {
        self.reasons.insert(component.to_owned(), reason);
    }

    /// `component` is ready again.
    pub fn ready(&self, component: &str) {
        self.reasons.remove(component);
    }

    /// `Ok` when every component is ready, else the reasons.
    pub fn check(&self) -> Result<(), Vec<String>> {
        let mut reasons: Vec<String> = self
            .reasons
            .iter()
            .map(|entry| format!("{}: {}", entry.key(), entry.value()))
            .collect();
        if reasons.is_empty() {
            Ok(())
        } else {
            reasons.sort();
            Err(reasons)
        }
    }
}

/// Injected file sink failures: a test hook. Without the `test-util` feature it injects
/// nothing and has no method; with it, [`SinkFaults::fail_writes_for`].
#[derive(Clone, Debug, Default)]
pub struct SinkFaults {
    /// Writes fail until this time (milliseconds since the Unix epoch); 0: never.
    #[cfg(feature = "test-util")]
    fail_until_ms: Arc<AtomicU64>,
}

impl SinkFaults {
    /// Makes every write fail for `duration` from now.
    #[cfg(feature = "test-util")]
    pub fn fail_writes_for(&self, duration: Duration) {
        self.fail_until_ms
            .store(now_ms() + duration.as_millis() as u64, Ordering::Release);
    }

    /// The failure a write must return now, if any.
    #[cfg(feature = "test-util")]
    pub(crate) fn injected(&self) -> Option<crate::error::SinkError> {
        (now_ms() < self.fail_until_ms.load(Ordering::Acquire))
            .then_some(crate::error::SinkError::Injected)
    }

    /// The failure a write must return now: none without the `test-util` feature.
    #[cfg(not(feature = "test-util"))]
    pub(crate) fn injected(&self) -> Option<crate::error::SinkError> {
        None
    }
}

#[cfg(feature = "test-util")]
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}
