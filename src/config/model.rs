//! The pipeline file's tables, with their defaults (DESIGN.md) and the checks TOML alone cannot
//! make. Each check names the field it rejects.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use streamvisor_supervision::{Backoff, OnEscalation, SupervisorSettings};

use super::bytes::serde_bytes;
use super::duration::serde_duration;
use super::field::Invalid;
pub use super::ingest::IngestConfig;
pub use super::sink::SinkConfig;
pub use super::stage::StageConfig;
use streamvisor_actors::GroupProtocol;

/// A whole pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// The pipeline's name: its actor paths, its labels, its dead-letter topic.
    pub name: String,
    /// The runtime around it.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// Restart intensity and backoff.
    #[serde(default)]
    pub supervision: SupervisionConfig,
    /// Batches and the unacked cap.
    #[serde(default)]
    pub flow: FlowConfig,
    /// Commit batching.
    #[serde(default)]
    pub commit: CommitConfig,
    /// Admin endpoint security.
    #[serde(default)]
    pub admin: AdminConfig,
    /// The Kafka cluster (none: the embedded broker).
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Sources by name.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    /// Stages by name.
    #[serde(default)]
    pub stages: BTreeMap<String, StageConfig>,
    /// Sinks by name.
    #[serde(default)]
    pub sinks: BTreeMap<String, SinkConfig>,
    /// Ingest (REST, sockets) into Kafka topics, by name.
    #[serde(default)]
    pub ingest: BTreeMap<String, IngestConfig>,
}

/// The HTTP listener's address when neither `--http` nor `[runtime] http` says otherwise.
pub const DEFAULT_HTTP: &str = "127.0.0.1:9898";

/// `[runtime]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// The HTTP listener.
    pub http: String,
    /// `"exit"` or `"stay"` when the root supervisor gives up.
    #[serde(deserialize_with = "on_escalation")]
    pub on_escalation: OnEscalation,
    /// How long a shutdown may take.
    #[serde(deserialize_with = "serde_duration::deserialize")]
    pub shutdown_timeout: Duration,
    /// Bytes of records in flight in the whole runtime before partitions pause (none: a
    /// quarter of the memory limit of the process's cgroup, else of the machine's memory).
    #[serde(deserialize_with = "serde_bytes::deserialize_some")]
    pub memory_budget: Option<usize>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            http: DEFAULT_HTTP.to_owned(),
            on_escalation: OnEscalation::Exit,
            shutdown_timeout: Duration::from_secs(30),
            memory_budget: None,
        }
    }
}

fn on_escalation<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<OnEscalation, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// `[supervision]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisionConfig {
    /// Restarts allowed within `within`.
    pub max_restarts: u32,
    /// The intensity window.
    #[serde(deserialize_with = "serde_duration::deserialize")]
    pub within: Duration,
    /// Backoff between restarts.
    pub backoff: BackoffConfig,
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        let defaults = SupervisorSettings::default();
        SupervisionConfig {
            max_restarts: defaults.max_restarts,
            within: defaults.within,
            backoff: BackoffConfig::default(),
        }
    }
}

/// `[supervision] backoff = { min, max, factor }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackoffConfig {
    /// First delay.
    #[serde(deserialize_with = "serde_duration::deserialize")]
    pub min: Duration,
    /// Largest delay.
    #[serde(deserialize_with = "serde_duration::deserialize")]
    pub max: Duration,
    /// Growth per restart.
    pub factor: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        let defaults = Backoff::default();
        BackoffConfig {
            min: defaults.min,
            max: defaults.max,
            factor: defaults.factor,
        }
    }
}

impl SupervisionConfig {
    /// The supervisor settings these stand for.
    pub fn settings(&self) -> SupervisorSettings {
        SupervisorSettings {
            max_restarts: self.max_restarts,
            within: self.within,
            backoff: Backoff {
                min: self.backoff.min,
                max: self.backoff.max,
                factor: self.backoff.factor,
                ..Backoff::default()
            },
            ..SupervisorSettings::default()
        }
    }
}

/// `[flow]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// Records per batch.
    pub batch_size: usize,
    /// Unacknowledged records per partition before it pauses.
    pub max_unacked_per_partition: usize,
    /// Bytes (keys and payloads) in flight per partition before it pauses.
    #[serde(deserialize_with = "serde_bytes::deserialize")]
    pub max_unacked_bytes_per_partition: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            batch_size: 1024,
            max_unacked_per_partition: 10_000,
            max_unacked_bytes_per_partition: streamvisor_actors::DEFAULT_MAX_UNACKED_BYTES,
        }
    }
}

/// `[commit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommitConfig {
    /// Commit at least this often.
    #[serde(deserialize_with = "serde_duration::deserialize")]
    pub interval: Duration,
    /// Commit once this many acknowledged records wait.
    pub max_records: i64,
}

impl Default for CommitConfig {
    fn default() -> Self {
        CommitConfig {
            interval: Duration::from_secs(1),
            max_records: 5_000,
        }
    }
}

/// `[admin]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// A file holding the admin token (or set `STREAMVISOR_ADMIN_TOKEN`).
    pub token_file: Option<PathBuf>,
}

/// `[kafka]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// `bootstrap.servers`; none for the embedded broker.
    pub brokers: Option<String>,
    /// The consumer group (default: the pipeline's name).
    pub group: Option<String>,
    /// The consumer-group protocol: `"classic"` (default) or `"consumer"` (KIP-848: the broker
    /// assigns partitions and owns the session timeout and heartbeat interval).
    pub group_protocol: GroupProtocol,
    /// librdkafka properties passed through.
    pub properties: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// Checks the properties against the group protocol: `group.protocol` is set through
    /// `group_protocol`, and the consumer protocol leaves the session timeout, the heartbeat
    /// interval and the assignor to the broker (librdkafka refuses a consumer that sets them).
    fn validate(&self) -> Result<(), Invalid> {
        if self.properties.contains_key("group.protocol") {
            return Err((
                "kafka.properties.\"group.protocol\"".to_owned(),
                "set the group protocol with `[kafka] group_protocol = \"classic\" | \"consumer\"`"
                    .to_owned(),
            ));
        }
        let refused = self.group_protocol.refused_properties();
        match refused
            .iter()
            .find(|name| self.properties.contains_key(**name))
        {
            Some(name) => Err((
                format!("kafka.properties.\"{name}\""),
                format!(
                    "`{name}` is not supported with `group_protocol = \"consumer\"`: the broker \
                     sets it (group.consumer.* on the broker), or the broker assigns partitions"
                ),
            )),
            None => Ok(()),
        }
    }
}

/// `[sources.<name>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `"kafka"`.
    pub kind: String,
    /// The topic read.
    pub topic: String,
    /// `"json"`, `"msgpack"` or `"bytes"`.
    #[serde(default = "default_format")]
    pub format: String,
    /// Partitions of the topic when the runtime creates it (the embedded broker).
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Load written into the topic while the pipeline runs (quickstart, load tests).
    pub generator: Option<GeneratorConfig>,
    /// How the source's consumers share its records when it has several: `broadcast`
    /// (default), `balance` or `partition_by_key`.
    pub fan_out: Option<String>,
}

fn default_format() -> String {
    "json".to_owned()
}

fn default_partitions() -> i32 {
    8
}

/// `[sources.<name>.generator]`: `records` records `{"key": "k<i % 1000>", "seq": i}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorConfig {
    /// How many records.
    pub records: u64,
    /// At most this many per second (none: as fast as the broker takes them).
    pub rate_per_second: Option<u64>,
}

impl PipelineConfig {
    /// Checks what TOML cannot: names, supported kinds and settings' ranges, then the
    /// pipeline as it will run (its graph and what the actors run), naming the field at fault.
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        self.validate_settings()?;
        if self.sinks.is_empty() {
            return Err(("sinks".to_owned(), "a pipeline needs a sink".to_owned()));
        }
        for (name, sink) in &self.sinks {
            sink.validate(&format!("sinks.{name}"))?;
        }
        self.check_plan()
    }

    /// Checks everything but the graph (the stages and sinks of a graph built in Rust come
    /// from the code).
    pub(super) fn validate_settings(&self) -> Result<(), Invalid> {
        let bad = |field: &str, why: String| Err((field.to_owned(), why));
        if !is_name(&self.name) {
            return bad(
                "name",
                format!("{:?} must be letters, digits, '-' or '_'", self.name),
            );
        }
        self.supervision
            .settings()
            .validate()
            .map_err(|error| match error {
                streamvisor_supervision::SupervisionError::InvalidSetting { setting, why } => {
                    (setting.to_owned(), why)
                }
                other => ("supervision".to_owned(), other.to_string()),
            })?;
        if self.flow.batch_size == 0 {
            return bad("flow.batch_size", "must be at least 1".to_owned());
        }
        if self.flow.max_unacked_per_partition < self.flow.batch_size {
            return bad(
                "flow.max_unacked_per_partition",
                format!(
                    "{} must hold at least one batch ({})",
                    self.flow.max_unacked_per_partition, self.flow.batch_size
                ),
            );
        }
        if self.commit.max_records < 1 {
            return bad("commit.max_records", "must be at least 1".to_owned());
        }
        self.kafka.validate()?;
        if self.sources.len() != 1 {
            return bad(
                "sources",
                format!(
                    "exactly one source is supported so far, found {}",
                    self.sources.len()
                ),
            );
        }
        for (name, source) in &self.sources {
            let field = |key: &str| format!("sources.{name}.{key}");
            if !is_name(name) {
                return bad(
                    &format!("sources.{name}"),
                    "a name is letters, digits, '-' or '_'".to_owned(),
                );
            }
            if source.kind != "kafka" {
                return bad(
                    &field("kind"),
                    format!("{:?}: only \"kafka\" is supported so far", source.kind),
                );
            }
            if !matches!(source.format.as_str(), "json" | "msgpack" | "bytes") {
                return bad(
                    &field("format"),
                    format!(
                        "{:?}: expected \"json\", \"msgpack\" or \"bytes\"",
                        source.format
                    ),
                );
            }
            if source.topic.is_empty() {
                return bad(&field("topic"), "must not be empty".to_owned());
            }
            if source.partitions < 1 {
                return bad(&field("partitions"), "must be at least 1".to_owned());
            }
        }
        for (name, ingest) in &self.ingest {
            if !is_name(name) {
                return bad(
                    &format!("ingest.{name}"),
                    "a name is letters, digits, '-' or '_'".to_owned(),
                );
            }
            ingest.validate(&format!("ingest.{name}"))?;
        }
        Ok(())
    }

    /// The stages in flow order (each after the nodes that feed it).
    pub fn stages_in_order(&self) -> Result<Vec<String>, crate::graph::PlanError> {
        Ok(self
            .graph(|_, _| ())?
            .stages()
            .map(|stage| stage.name().to_owned())
            .collect())
    }

    /// The consumers of `node` (stages and sinks that list it in their `inputs`), by name.
    pub fn consumers_of(&self, node: &str) -> Vec<String> {
        let stages = self
            .stages
            .iter()
            .filter(|(_, stage)| stage.inputs.iter().any(|input| input == node))
            .map(|(name, _)| name.clone());
        let sinks = self
            .sinks
            .iter()
            .filter(|(_, sink)| sink.inputs.iter().any(|input| input == node))
            .map(|(name, _)| name.clone());
        stages.chain(sinks).collect()
    }

    /// The consumer group: `[kafka] group`, else the pipeline's name.
    pub fn group(&self) -> String {
        self.kafka
            .group
            .clone()
            .unwrap_or_else(|| self.name.clone())
    }
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
