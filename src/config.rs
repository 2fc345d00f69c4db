//! The pipeline file (TOML): its shape (DESIGN.md), defaults, and checks. Unknown fields are
//! rejected; every error names the field and its line.
//!
//! ```toml
//! name = "quickstart"
//! [kafka]                      # omit brokers for the embedded broker
//! group = "quickstart"
//! [sources.events]
//! kind = "kafka"
//! topic = "events"
//! [stages.pass]
//! inputs = ["events"]
//! op = "passthrough"
//! [sinks.out]
//! inputs = ["pass"]
//! kind = "file"
//! path = "out/quickstart.jsonl"
//! ```

mod bytes;
mod duration;
mod field;
mod ingest;
mod model;
mod plan;
mod sink;
mod stage;

pub use bytes::parse_bytes;
pub use duration::parse_duration;
pub use field::parse_fan_out;
pub use ingest::{
    Framing, IngestKind, ValueFormat, DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY, DEFAULT_MAX_RECORD,
};
pub use model::{
    AdminConfig, CommitConfig, FlowConfig, GeneratorConfig, IngestConfig, KafkaConfig,
    PipelineConfig, RuntimeConfig, SinkConfig, SourceConfig, StageConfig, SupervisionConfig,
    DEFAULT_HTTP,
};

use std::path::Path;

use thiserror::Error;

/// A pipeline file that cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed or does not fit the pipeline's shape (the message names the field,
    /// line and column).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, where.
        message: String,
    },
    /// The pipeline is well-formed TOML but not a valid pipeline.
    #[error("{path}: `{field}` (line {line}): {why}")]
    Invalid {
        /// The file.
        path: String,
        /// The field at fault, as a TOML path (`stages.flag.inputs`).
        field: String,
        /// Its line (0 when unknown).
        line: usize,
        /// What is wrong.
        why: String,
    },
}

impl PipelineConfig {
    /// Reads and checks a pipeline file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and checks pipeline TOML; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        Self::parse_checked(text, origin, PipelineConfig::validate)
    }

    /// Parses and checks the settings of a pipeline whose graph is built in Rust
    /// ([`crate::runtime::Runtime::start_graph`]): everything but `[stages]` and `[sinks]`,
    /// which may be left out.
    pub fn parse_settings(text: &str, origin: &str) -> Result<Self, ConfigError> {
        Self::parse_checked(text, origin, PipelineConfig::validate_settings)
    }

    fn parse_checked(
        text: &str,
        origin: &str,
        check: fn(&PipelineConfig) -> Result<(), (String, String)>,
    ) -> Result<Self, ConfigError> {
        let config: PipelineConfig = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: origin.to_owned(),
            message: error.to_string().trim_end().to_owned(),
        })?;
        check(&config).map_err(|(field, why)| ConfigError::Invalid {
            path: origin.to_owned(),
            line: line_of(text, &field),
            field,
            why,
        })?;
        Ok(config)
    }
}

/// The line where the last segment of `field` (`stages.flag.inputs` -> `inputs` inside
/// `[stages.flag]`; a quoted last segment may hold dots: `kafka.properties."session.timeout.ms"`)
/// is written, or the table's header; 0 when it cannot be found.
fn line_of(text: &str, field: &str) -> usize {
    let (table, key) = match field
        .strip_suffix('"')
        .and_then(|field| field.rsplit_once(".\""))
    {
        Some((table, key)) => (table.to_owned(), key),
        None => {
            let (table, key) = field.rsplit_once('.').unwrap_or(("", field));
            (table.to_owned(), key)
        }
    };
    let mut in_table = table.is_empty();
    let mut table_line = 0;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(header) = trimmed.strip_prefix('[') {
            let name = header
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or_default()
                .trim();
            in_table = name == table;
            if in_table {
                table_line = index + 1;
            }
            if name == field {
                return index + 1;
            }
            continue;
        }
        if in_table {
            let name = trimmed
                .split('=')
                .next()
                .unwrap_or_default()
                .trim()
                .trim_matches('"');
            if name == key {
                return index + 1;
            }
        }
    }
    table_line
}

#[cfg(test)]
mod tests;
