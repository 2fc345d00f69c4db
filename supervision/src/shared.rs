//! [`Shared`]: what every supervisor of one runtime shares (the registry, lifecycle events, the
//! arbiters children run on, the children that did not stop in time).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use actix::ArbiterHandle;

use crate::events::Events;
use crate::path::ActorPath;
use crate::registry::Registry;

/// What every supervisor of one runtime shares.
pub(crate) struct Shared {
    pub(crate) registry: Registry,
    pub(crate) events: Events,
    pub(crate) arbiters: Vec<ArbiterHandle>,
    pub(crate) next_arbiter: AtomicUsize,
    pub(crate) stop_timeouts: Mutex<Vec<ActorPath>>,
}

impl Shared {
    /// The arbiter for a new child: the pinned one, or the next round-robin.
    pub(crate) fn arbiter(&self, pinned: Option<usize>) -> ArbiterHandle {
        let index = pinned.unwrap_or_else(|| self.next_arbiter.fetch_add(1, Ordering::Relaxed));
        self.arbiters[index % self.arbiters.len()].clone()
    }

    /// Records a child that did not stop within its timeout (reported by shutdown).
    pub(crate) fn note_stop_timeout(&self, path: &ActorPath, timeout: Duration) {
        tracing::error!(path = %path, ?timeout, "actor did not stop within its shutdown timeout");
        if let Ok(mut timeouts) = self.stop_timeouts.lock() {
            timeouts.push(path.clone());
        }
    }
}
