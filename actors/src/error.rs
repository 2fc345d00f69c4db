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

/// The PostgreSQL sink cannot use its database.
#[derive(Debug, Error)]
pub enum PostgresError {
    /// The connection string does not parse.
    #[error("bad PostgreSQL connection string: {why}")]
    Url {
        /// What is wrong.
        why: String,
    },
    /// The table name is not one or two plain identifiers.
    #[error("bad table name {0:?}: expected `table` or `schema.table`, letters, digits and '_'")]
    BadTable(String),
    /// Connecting failed (the server is away, or refused the credentials).
    #[error("could not connect to PostgreSQL: {why}")]
    Connect {
        /// The cause.
        why: String,
        /// A retry may cure it (the server is away or starting up), as opposed to wrong
        /// credentials or an unknown database.
        transient: bool,
    },
    /// A statement the sink needs failed (an unknown table, missing columns or unique index).
    #[error("could not {action}: {why}")]
    Statement {
        /// What was being done.
        action: &'static str,
        /// The database's error.
        why: String,
        /// A retry may cure it (the connection was lost on the way).
        transient: bool,
    },
}

impl PostgresError {
    pub(crate) fn connect(source: tokio_postgres::Error) -> Self {
        PostgresError::Connect {
            why: crate::sink::postgres::describe(&source),
            transient: crate::sink::postgres::classify(&source)
                == crate::sink::postgres::ErrorClass::Transient,
        }
    }

    pub(crate) fn statement(action: &'static str, source: tokio_postgres::Error) -> Self {
        PostgresError::Statement {
            action,
            why: crate::sink::postgres::describe(&source),
            transient: crate::sink::postgres::classify(&source)
                == crate::sink::postgres::ErrorClass::Transient,
        }
    }

    /// True when a retry may cure it (the server is away or starting), as opposed to wrong
    /// credentials, a missing table or a bad setting.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            PostgresError::Connect {
                transient: true,
                ..
            } | PostgresError::Statement {
                transient: true,
                ..
            }
        )
    }
}
