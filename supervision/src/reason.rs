//! Why an actor stopped ([`StopReason`]) and what a worker returns when it fails ([`Failure`]).

use std::any::Any;
use std::fmt;

/// Why an actor stopped. Every variant but `Normal` and `Shutdown` is a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The actor finished its work and asked to stop.
    Normal,
    /// Its supervisor stopped it (shutdown, or a sibling's restart under OneForAll/RestForOne).
    Shutdown,
    /// It was killed by path in `stop` mode.
    Killed,
    /// A handler (or its factory) panicked, or the actor died in a way nobody reported; the message
    /// says which.
    Panicked(String),
    /// A handler returned an error that needs a fresh actor.
    Failed(String),
    /// A supervisor passed its restart intensity, stopped its children and gave up.
    Escalated,
}

impl StopReason {
    /// True for reasons that count as failures (and restart Transient children).
    pub fn is_failure(&self) -> bool {
        !matches!(self, StopReason::Normal | StopReason::Shutdown)
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Normal => f.write_str("normal"),
            StopReason::Shutdown => f.write_str("shutdown"),
            StopReason::Killed => f.write_str("killed"),
            StopReason::Panicked(message) => write!(f, "panicked: {message}"),
            StopReason::Failed(message) => write!(f, "failed: {message}"),
            StopReason::Escalated => f.write_str("escalated"),
        }
    }
}

/// The error a worker's handler returns to fail its actor (which its supervisor then restarts from
/// its recipe). Any `std::error::Error` converts into it with `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    message: String,
}

impl Failure {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure::new(error.to_string())
    }
}

/// The text of a panic payload (`&str` or `String`; anything else is named as such).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}
