//! The handle on a running supervisor: its bounded command queue.

use std::any::Any;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::control::ChildControl;
use crate::error::SupervisionError;
use crate::path::ActorPath;
use crate::policy::KillMode;
use crate::spec::ChildSpec;

/// Requests a supervisor takes, between handling its children's exits.
pub(crate) enum Command {
    Kill(KillMode),
    Shutdown,
    StartChild {
        spec: ChildSpec,
        reply: oneshot::Sender<Result<ActorPath, SupervisionError>>,
    },
    StopChild {
        name: String,
        reply: oneshot::Sender<Result<(), SupervisionError>>,
    },
}

/// The parent's (and the registry's) handle on one supervisor incarnation.
#[derive(Clone)]
pub(crate) struct SupervisorControl {
    pub(crate) path: ActorPath,
    pub(crate) commands: mpsc::Sender<Command>,
}

impl SupervisorControl {
    pub(crate) fn send(&self, command: Command) -> Result<(), SupervisionError> {
        self.commands
            .try_send(command)
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => SupervisionError::Busy(self.path.to_string()),
                mpsc::error::TrySendError::Closed(_) => {
                    SupervisionError::Stopped(self.path.to_string())
                }
            })
    }
}

impl ChildControl for SupervisorControl {
    fn kill(&self, mode: KillMode) -> bool {
        self.send(Command::Kill(mode)).is_ok()
    }

    fn shutdown(&self) {
        if let Err(error) = self.send(Command::Shutdown) {
            tracing::warn!(path = %self.path, %error, "could not ask supervisor to shut down");
        }
    }

    fn mailbox_len(&self) -> usize {
        self.commands.max_capacity() - self.commands.capacity()
    }

    fn mailbox_capacity(&self) -> usize {
        self.commands.max_capacity()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn actor_ref_any(self: Arc<Self>) -> Option<Box<dyn Any + Send>> {
        None
    }
}
