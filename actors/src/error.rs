//! The actors crate's error types, one per area of failure.

use std::path::Path;

use thiserror::Error;

/// A sink could not make records durable.
#[derive(Debug, Error)]
pub enum SinkError {
    /// A file operation failed.
    #[error("could not {action} {path}: {source}")]
    Io {
        /// What was being done (`open`, `write`, `fsync`, ...).
        action: &'static str,
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A failure injected by a test ([`crate::pipeline::health::SinkFaults`]).
    #[cfg(feature = "test-util")]
    #[error("injected write failure (test)")]
    Injected,
}

impl SinkError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        SinkError::Io {
            action,
            path: path.display().to_string(),
            source,
        }
    }
}

/// The Kafka source could not do its work.
#[derive(Debug, Error)]
pub enum SourceError {
    /// A Kafka client call failed.
    #[error("Kafka source could not {action}: {source}")]
    Kafka {
        /// What was being done.
        action: &'static str,
        /// The cause.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The topic to read does not exist.
    #[error("topic {0:?} does not exist (create it, or check the source's `topic`)")]
    MissingTopic(String),
    /// The polling thread could not start or ended badly.
    #[error("Kafka source thread: {0}")]
    Thread(String),
}

impl SourceError {
    pub(crate) fn kafka(action: &'static str, source: rdkafka::error::KafkaError) -> Self {
        SourceError::Kafka { action, source }
    }
}

pub use crate::sink::postgres::PostgresError;
