//! Erlang/OTP-style supervision for actix actors.
//!
//! actix gives actors and mailboxes but no real supervision: a panic in a handler ends the
//! actor's task, senders see "Mailbox has closed", and nobody is told why. This crate adds what
//! OTP users expect:
//!
//! - supervisors that start children from recipes ([`ChildSpec`], [`SupervisorSpec`]) with the
//!   strategies [`SupervisionStrategy::OneForOne`], `OneForAll` and `RestForOne`, and the
//!   per-child policies [`RestartPolicy::Permanent`], `Transient` and `Temporary`, nested to any
//!   depth;
//! - restart intensity (at most `max_restarts` within `within`, kills included; past it the
//!   supervisor stops its children and escalates), and exponential [`Backoff`] with a jitter that
//!   only adds;
//! - panic containment: every [`Worker`] call runs under `catch_unwind`, and a death watch reports
//!   any death nobody saw coming; the arbiter thread and every other actor keep running;
//! - [`ActorPath`]s and a [`Registry`] of live actors (kind, state, restarts, incarnation, counted
//!   mailbox length and capacity), kill by path in two [`KillMode`]s, ordered shutdown, and a
//!   [`LifecycleEvent`] stream.
//!
//! ```text
//!   /                         root supervisor (SupervisionRuntime)
//!   ├── /pipelines            supervisor
//!   │   └── /pipelines/p      supervisor
//!   │       ├── .../sources/s supervisor (owns the Kafka client)
//!   │       │   └── .../p3    worker, one per partition
//!   │       └── .../sinks/out worker
//!   └── /http                 worker
//! ```
//!
//! This crate knows nothing of Kafka; `streamvisor-actors` builds the stage actors on it.
//!
//! ```no_run
//! use streamvisor_supervision::{
//!     ChildSpec, Failure, KillMode, RuntimeSettings, SupervisionRuntime, Worker, WorkerContext,
//! };
//!
//! struct Counter(u64);
//!
//! impl Worker for Counter {
//!     type Message = u64;
//!     fn handle(&mut self, n: u64, _ctx: &mut WorkerContext<'_, Self>) -> Result<(), Failure> {
//!         self.0 += n;
//!         Ok(())
//!     }
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = SupervisionRuntime::start(
//!     RuntimeSettings::default(),
//!     vec![ChildSpec::worker("counter", || Counter(0))],
//! )
//! .await?;
//! let counter = runtime.registry().actor_ref::<u64>("/counter").ok_or("not started")?;
//! counter.try_send(1)?;
//! runtime.kill("/counter", KillMode::Panic)?; // restarted from its recipe: Counter(0)
//! runtime.shutdown(std::time::Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```

#[cfg(panic = "abort")]
compile_error!(
    "streamvisor-supervision contains panics with catch_unwind: build with panic = \"unwind\""
);

mod actor_ref;
mod backoff;
mod child_control;
mod death_watch;
mod error;
mod events;
mod handle;
mod intensity;
mod panic_log;
mod path;
mod policy;
mod reason;
mod registry;
mod resource;
mod runtime;
mod settings;
mod shared;
mod spec;
mod supervisor;
mod worker;

pub use actor_ref::{ActorRef, TrySendError};
pub use error::SupervisionError;
pub use events::{Lifecycle, LifecycleEvent};
pub use handle::TreeHandle;
pub use panic_log::log_panics_to_tracing;
pub use path::ActorPath;
pub use policy::{KillMode, OnEscalation, RestartPolicy, SupervisionStrategy};
pub use reason::{Failure, StopReason};
pub use registry::{ActorInfo, ActorState, Registry};
pub use resource::{OwnedResource, OwnerContext};
pub use runtime::{RuntimeSettings, SupervisionRuntime, MAX_EVENT_CAPACITY};
pub use settings::{Backoff, SupervisorSettings, MAX_BACKOFF};
pub use spec::{
    ChildSpec, SupervisorSpec, SupervisorSpecBuilder, DEFAULT_MAILBOX_CAPACITY,
    DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_SUPERVISOR_SHUTDOWN_TIMEOUT,
};
pub use worker::{Worker, WorkerActor, WorkerContext};
