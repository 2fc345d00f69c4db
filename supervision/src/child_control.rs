//! How a supervisor (and the registry) reaches a running child, worker or supervisor.

use std::any::Any;
use std::sync::Arc;

use crate::policy::KillMode;

/// The supervisor-side handle on one incarnation of a child, worker or supervisor.
pub(crate) trait ChildControl: Send + Sync + 'static {
    /// Sends a kill; false when the child is already gone.
    fn kill(&self, mode: KillMode) -> bool;
    /// Asks the child to stop (children first, for a supervisor); it reports `Shutdown`.
    fn shutdown(&self);
    /// Messages waiting in the child's mailbox (counted by this crate).
    fn mailbox_len(&self) -> usize;
    /// The mailbox capacity.
    fn mailbox_capacity(&self) -> usize;
    /// The concrete handle, for lookups of supervisors (`start_child`, `stop_child`).
    fn as_any(&self) -> &dyn Any;
    /// A boxed `ActorRef<M>` for a worker whose messages are `M`; `None` for a supervisor.
    fn actor_ref_any(self: Arc<Self>) -> Option<Box<dyn Any + Send>>;
}
