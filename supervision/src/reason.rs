//! Why an actor stopped ([`StopReason`]) and what a worker returns when it fails ([`Failure`]).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

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
/// its recipe). Any `std::error::Error` converts into it with `?`, and stays inside: a
/// supervisor, a test or a log can still ask the typed error ([`Failure::downcast_ref`]) what
/// class of failure it was (`is_transient()`, say), not only read its text.
#[derive(Debug, Clone)]
pub struct Failure {
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Failure {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            source: None,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The typed error it came from, if it came from one.
    pub fn source_error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }

    /// The typed error it came from, as `E`, if it was one.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.source.as_deref()?.downcast_ref::<E>()
    }
}

/// Failures are equal when their messages are (the typed errors inside need not compare).
impl PartialEq for Failure {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for Failure {}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure {
            message: error.to_string(),
            source: Some(Arc::new(error)),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Away;

    impl fmt::Display for Away {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("the database is away")
        }
    }

    impl std::error::Error for Away {}

    fn fails() -> Result<(), Failure> {
        Err(Away)?;
        Ok(())
    }

    #[test]
    fn a_typed_error_keeps_its_type_through_a_failure() {
        let failure = fails().expect_err("fails");
        assert_eq!(failure.message(), "the database is away");
        assert!(failure.downcast_ref::<Away>().is_some());
        assert!(failure.downcast_ref::<std::io::Error>().is_none());
        let plain = Failure::new("the database is away");
        assert!(plain.source_error().is_none());
        assert_eq!(plain, failure, "equal by message");
    }
}
