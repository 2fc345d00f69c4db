//! The lifecycle event stream: every start, failure, restart, escalation and stop in the tree.

use tokio::sync::broadcast;

use crate::path::ActorPath;
use crate::reason::StopReason;

/// What happened to an actor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// First start under its supervisor (incarnation 1).
    Started {
        /// Always 1 for a first start.
        incarnation: u64,
    },
    /// It stopped with a failure; a restart or a stop follows.
    Failed {
        /// Why it stopped.
        reason: StopReason,
    },
    /// Started again from its recipe after a failure (or a sibling's, under OneForAll/RestForOne).
    Restarted {
        /// The new incarnation.
        incarnation: u64,
        /// Restarts of this child so far.
        restarts: u32,
    },
    /// This supervisor passed its restart intensity and gave up; its parent decides.
    Escalated,
    /// It stopped for good and left the registry.
    Stopped {
        /// Why it stopped.
        reason: StopReason,
    },
}

/// One lifecycle event: which actor, of which kind, and what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecycleEvent {
    /// The actor's path.
    pub path: ActorPath,
    /// The actor's kind (`supervisor`, `partition`, ...).
    pub kind: &'static str,
    /// What happened.
    pub event: Lifecycle,
}

/// The broadcast channel behind the event stream. Slow subscribers see
/// `RecvError::Lagged(n)` rather than slowing the tree down.
#[derive(Clone, Debug)]
pub(crate) struct Events {
    sender: broadcast::Sender<LifecycleEvent>,
}

impl Events {
    pub(crate) fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Events { sender }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<LifecycleEvent> {
        self.sender.subscribe()
    }

    pub(crate) fn emit(&self, path: &ActorPath, kind: &'static str, event: Lifecycle) {
        tracing::debug!(path = %path, kind, event = ?event, "lifecycle");
        // No subscriber is fine: the stream is for whoever listens.
        let _ = self.sender.send(LifecycleEvent {
            path: path.clone(),
            kind,
            event,
        });
    }
}
