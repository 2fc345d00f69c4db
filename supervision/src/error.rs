//! The supervision crate's one error type: invalid settings and specs, bad paths, refused kills.

use std::time::Duration;

use thiserror::Error;

/// Everything that can go wrong when building or driving a supervision tree. Messages name the
/// setting, path or child at fault.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SupervisionError {
    /// A setting is out of range (`supervision.within`, `supervision.backoff.min`, ...).
    #[error("invalid setting `{setting}`: {why}")]
    InvalidSetting {
        /// The setting's name, as in the TOML pipeline.
        setting: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// A child name that cannot be a path segment.
    #[error("invalid child name {name:?}: {why}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Two children of one supervisor share a name.
    #[error("duplicate child name {name:?} under supervisor {supervisor}")]
    DuplicateChild {
        /// The supervisor's path.
        supervisor: String,
        /// The repeated name.
        name: String,
    },
    /// A path that is not an absolute actor path.
    #[error("invalid actor path {path:?}: {why}")]
    InvalidPath {
        /// The text given.
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// No live actor has this path.
    #[error("no actor at path {0}")]
    UnknownPath(String),
    /// The path names a worker where a supervisor is needed (to add or remove children).
    #[error("actor {0} is not a supervisor")]
    NotASupervisor(String),
    /// The actor is between incarnations (or being stopped); a kill would have nothing to kill.
    #[error("actor {0} is restarting or stopping; try again when it runs")]
    Restarting(String),
    /// The root supervisor is the runtime itself: shut the runtime down instead.
    #[error("the root supervisor cannot be killed; shut the runtime down instead")]
    KillRoot,
    /// A kill mode other than `stop` or `panic`.
    #[error("invalid kill mode {0:?}: expected \"stop\" or \"panic\"")]
    InvalidKillMode(String),
    /// The actor stopped before it could take the request.
    #[error("actor {0} stopped before taking the request")]
    Stopped(String),
    /// The supervisor's control queue is full (it is busy restarting or stopping children).
    #[error("supervisor {0} is busy; try again")]
    Busy(String),
    /// There is no actix System on this thread (start the runtime inside one).
    #[error("no actix System is running on this thread")]
    NoSystem,
    /// Starting an arbiter thread failed.
    #[error("could not start arbiter thread: {0}")]
    Arbiter(String),
    /// Shutdown passed its deadline; the listed actors had not stopped.
    #[error("shutdown passed its deadline of {deadline:?}; still running: {still_running:?}")]
    ShutdownTimeout {
        /// The deadline that passed.
        deadline: Duration,
        /// Actors still listed when it passed.
        still_running: Vec<String>,
    },
}
