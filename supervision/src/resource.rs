//! What a supervisor may own while it runs ([`OwnedResource`]), and what its factory gets
//! ([`OwnerContext`]).

use std::sync::Arc;

use crate::handle::TreeHandle;
use crate::path::ActorPath;
use crate::reason::Failure;

/// Something a supervisor owns while it runs (a Kafka client, say): made after its first
/// children have started, dropped (off the arbiter thread) before its children stop.
pub type OwnedResource = Box<dyn std::any::Any + Send>;

/// What a supervisor's resource factory gets: where it runs, and the tree (to add children).
#[derive(Clone)]
pub struct OwnerContext {
    /// The owning supervisor's path.
    pub path: ActorPath,
    /// The tree, for adding and removing the supervisor's children.
    pub tree: TreeHandle,
}

pub(crate) type ResourceFactory =
    Arc<dyn Fn(&OwnerContext) -> Result<OwnedResource, Failure> + Send + Sync>;
