//! Readiness and fault injection for a pipeline's actors.
//!
//! [`Readiness`] collects why parts of a pipeline are not ready (a sink retrying a failed write):
//! the runtime is ready when nothing is listed. [`SinkFaults`] lets tests make a sink's writes
//! fail for a while (documented, off unless a test turns it on), to prove the retry-in-place path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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

/// Injected sink failures (tests only).
#[derive(Clone, Debug, Default)]
pub struct SinkFaults {
    /// Writes fail until this time (milliseconds since the Unix epoch); 0: never.
    fail_until_ms: Arc<AtomicU64>,
}

impl SinkFaults {
    /// Makes every write fail for `duration` from now.
    pub fn fail_writes_for(&self, duration: Duration) {
        self.fail_until_ms
            .store(now_ms() + duration.as_millis() as u64, Ordering::Release);
    }

    /// True while writes must fail.
    pub fn failing(&self) -> bool {
        now_ms() < self.fail_until_ms.load(Ordering::Acquire)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}
