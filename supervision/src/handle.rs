//! [`TreeHandle`]: a cheap, cloneable handle on a running tree, for code that lives outside the
//! actors (a Kafka polling thread, an HTTP handler): look actors up, kill them, add and remove
//! children (waiting, or fire-and-forget from threads that must not wait), follow events.

use std::sync::Arc;

use tokio::sync::{broadcast, oneshot};

use crate::error::SupervisionError;
use crate::events::LifecycleEvent;
use crate::path::ActorPath;
use crate::policy::KillMode;
use crate::registry::Registry;
use crate::shared::Shared;
use crate::spec::ChildSpec;
use crate::supervisor::control::{Command, SupervisorControl};

/// A handle on a running supervision tree.
#[derive(Clone)]
pub struct TreeHandle {
    pub(crate) shared: Arc<Shared>,
}

impl TreeHandle {
    /// The registry of live actors.
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// Subscribes to lifecycle events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LifecycleEvent> {
        self.shared.events.subscribe()
    }

    /// Kills the actor at `path` (see [`Registry::kill`]).
    pub fn kill(&self, path: &str, mode: KillMode) -> Result<(), SupervisionError> {
        self.shared.registry.kill(path, mode)
    }

    /// Adds a child under the supervisor at `parent` and waits until it has started.
    pub async fn start_child(
        &self,
        parent: &str,
        spec: ChildSpec,
    ) -> Result<ActorPath, SupervisionError> {
        let (reply, answer) = oneshot::channel();
        self.supervisor(parent)?
            .send(Command::StartChild { spec, reply })?;
        answer
            .await
            .map_err(|_| SupervisionError::Stopped(parent.to_owned()))?
    }

    /// Asks the supervisor at `parent` to add a child, without waiting (for threads that must
    /// not block, such as a Kafka rebalance callback). Errors the supervisor finds later (a
    /// duplicate name) are logged by it.
    pub fn start_child_detached(
        &self,
        parent: &str,
        spec: ChildSpec,
    ) -> Result<(), SupervisionError> {
        let (reply, _) = oneshot::channel();
        self.supervisor(parent)?
            .send(Command::StartChild { spec, reply })
    }

    /// Stops the child `name` of the supervisor at `parent` for good (subtree first) and waits.
    pub async fn stop_child(&self, parent: &str, name: &str) -> Result<(), SupervisionError> {
        let (reply, answer) = oneshot::channel();
        self.supervisor(parent)?.send(Command::StopChild {
            name: name.to_owned(),
            reply,
        })?;
        answer
            .await
            .map_err(|_| SupervisionError::Stopped(parent.to_owned()))?
    }

    /// Asks the supervisor at `parent` to stop its child `name`, without waiting.
    pub fn stop_child_detached(&self, parent: &str, name: &str) -> Result<(), SupervisionError> {
        let (reply, _) = oneshot::channel();
        self.supervisor(parent)?.send(Command::StopChild {
            name: name.to_owned(),
            reply,
        })
    }

    fn supervisor(&self, path: &str) -> Result<SupervisorControl, SupervisionError> {
        let parsed = ActorPath::parse(path)?;
        let control = self
            .shared
            .registry
            .control(&parsed)
            .ok_or_else(|| SupervisionError::UnknownPath(path.to_owned()))?;
        control
            .as_any()
            .downcast_ref::<SupervisorControl>()
            .cloned()
            .ok_or_else(|| SupervisionError::NotASupervisor(path.to_owned()))
    }
}
