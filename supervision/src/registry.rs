//! The registry of live actors, keyed by path: kind, state, restarts, incarnation, mailbox, and
//! how to kill each one. Owned by a runtime value (never a process global), so that several
//! runtimes and tests can share a process.

use std::sync::Arc;

use dashmap::DashMap;

use crate::actor_ref::ActorRef;
use crate::child_control::ChildControl;
use crate::error::SupervisionError;
use crate::path::ActorPath;
use crate::policy::KillMode;

/// Where an actor is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActorState {
    /// Running its current incarnation.
    Running,
    /// Failed; its supervisor will start it again (it stays listed meanwhile).
    Restarting,
    /// Being stopped by its supervisor.
    Stopping,
}

impl ActorState {
    /// `"running"`, `"restarting"` or `"stopping"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorState::Running => "running",
            ActorState::Restarting => "restarting",
            ActorState::Stopping => "stopping",
        }
    }
}

/// A snapshot of one registry entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActorInfo {
    /// The actor's path.
    pub path: ActorPath,
    /// Its kind (`supervisor`, `partition`, `sink`, ...).
    pub kind: &'static str,
    /// Running, restarting or stopping.
    pub state: ActorState,
    /// Restarts so far under its current supervisor incarnation.
    pub restarts: u32,
    /// Its incarnation (1 at first start, +1 per restart).
    pub incarnation: u64,
    /// Messages in its mailbox now.
    pub mailbox_len: usize,
    /// Its mailbox capacity.
    pub mailbox_capacity: usize,
}

pub(crate) struct Entry {
    pub(crate) kind: &'static str,
    pub(crate) state: ActorState,
    pub(crate) restarts: u32,
    pub(crate) incarnation: u64,
    pub(crate) control: Arc<dyn ChildControl>,
}

/// The live actors of one runtime. Clones share the same map.
#[derive(Clone, Default)]
pub struct Registry {
    entries: Arc<DashMap<ActorPath, Entry>>,
}

impl Registry {
    /// Every listed actor, sorted by path (parents before their children).
    pub fn list(&self) -> Vec<ActorInfo> {
        let mut infos: Vec<ActorInfo> = self
            .entries
            .iter()
            .map(|entry| info(entry.key(), entry.value()))
            .collect();
        infos.sort_by(|a, b| a.path.cmp(&b.path));
        infos
    }

    /// One actor's entry.
    pub fn get(&self, path: &str) -> Option<ActorInfo> {
        let path = ActorPath::parse(path).ok()?;
        self.entries
            .get(&path)
            .map(|entry| info(entry.key(), entry.value()))
    }

    /// How many actors are listed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no actor is listed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Kills the actor at `path`. The kill is a failure, handled by its supervisor's policy.
    pub fn kill(&self, path: &str, mode: KillMode) -> Result<(), SupervisionError> {
        let path = ActorPath::parse(path)?;
        if path.is_root() {
            return Err(SupervisionError::KillRoot);
        }
        let control = {
            let entry = self
                .entries
                .get(&path)
                .ok_or_else(|| SupervisionError::UnknownPath(path.to_string()))?;
            if entry.state != ActorState::Running {
                return Err(SupervisionError::Restarting(path.to_string()));
            }
            Arc::clone(&entry.control)
        };
        tracing::info!(path = %path, mode = %mode, "kill requested");
        if control.kill(mode) {
            Ok(())
        } else {
            Err(SupervisionError::Stopped(path.to_string()))
        }
    }

    /// A typed handle on the worker at `path` whose messages are `M`; `None` when no such worker
    /// runs there. Look it up again after a restart: each incarnation has its own mailbox.
    pub fn actor_ref<M: Send + 'static>(&self, path: &str) -> Option<ActorRef<M>> {
        let path = ActorPath::parse(path).ok()?;
        let control = Arc::clone(&self.entries.get(&path)?.control);
        let any = control.actor_ref_any()?;
        any.downcast::<ActorRef<M>>().ok().map(|boxed| *boxed)
    }

    pub(crate) fn control(&self, path: &ActorPath) -> Option<Arc<dyn ChildControl>> {
        self.entries
            .get(path)
            .map(|entry| Arc::clone(&entry.control))
    }

    pub(crate) fn insert(&self, path: ActorPath, entry: Entry) {
        self.entries.insert(path, entry);
    }

    /// Sets the state of the entry at `path` if it still belongs to the incarnation behind
    /// `control` (a newer incarnation's entry is left alone).
    pub(crate) fn set_state(
        &self,
        path: &ActorPath,
        control: &Arc<dyn ChildControl>,
        state: ActorState,
    ) {
        if let Some(mut entry) = self.entries.get_mut(path) {
            if same(&entry.control, control) {
                entry.state = state;
            }
        }
    }

    /// Removes the entry at `path` if it still belongs to the incarnation behind `control`.
    pub(crate) fn remove(&self, path: &ActorPath, control: &Arc<dyn ChildControl>) {
        self.entries
            .remove_if(path, |_, entry| same(&entry.control, control));
    }
}

fn info(path: &ActorPath, entry: &Entry) -> ActorInfo {
    ActorInfo {
        path: path.clone(),
        kind: entry.kind,
        state: entry.state,
        restarts: entry.restarts,
        incarnation: entry.incarnation,
        mailbox_len: entry.control.mailbox_len(),
        mailbox_capacity: entry.control.mailbox_capacity(),
    }
}

fn same(a: &Arc<dyn ChildControl>, b: &Arc<dyn ChildControl>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}
