//! The handle on a running supervisor: a stop signal that can never be lost (a watch channel:
//! the latest request wins, a kill over a shutdown) and a bounded queue for adding and removing
//! children.

use std::any::Any;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use crate::child_control::ChildControl;
use crate::error::SupervisionError;
use crate::path::ActorPath;
use crate::policy::KillMode;
use crate::spec::ChildSpec;

/// Requests that change a supervisor's children.
pub(crate) enum Command {
    StartChild {
        spec: ChildSpec,
        reply: oneshot::Sender<Result<ActorPath, SupervisionError>>,
    },
    StopChild {
        name: String,
        reply: oneshot::Sender<Result<(), SupervisionError>>,
    },
}

/// A request to end a supervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StopSignal {
    /// Keep going.
    Run,
    /// Stop children in order, then exit with `Shutdown`.
    Shutdown,
    /// Fail (stop mode: `Killed`; panic mode: a panic in the handler).
    Kill(KillMode),
}

/// The parent's (and the registry's) handle on one supervisor incarnation.
#[derive(Clone)]
pub(crate) struct SupervisorControl {
    pub(crate) path: ActorPath,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) stop: Arc<watch::Sender<StopSignal>>,
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
        if self.stop.is_closed() {
            return false;
        }
        self.stop.send_replace(StopSignal::Kill(mode));
        true
    }

    fn shutdown(&self) {
        // A kill already requested stays: it is the stronger request.
        self.stop.send_if_modified(|signal| {
            let run = *signal == StopSignal::Run;
            if run {
                *signal = StopSignal::Shutdown;
            }
            run
        });
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
