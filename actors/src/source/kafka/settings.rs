//! What the Kafka source's client needs: brokers, group, topic, librdkafka pass-through
//! properties, and the flow and commit settings.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;

use crate::flow::memory::MemoryBudget;
use crate::source::backlog::Backlog;
use crate::source::partition_flow::OffsetReset;

/// Bytes in flight per partition before it pauses, unless set: 64 MiB.
pub const DEFAULT_MAX_UNACKED_BYTES: usize = 64 << 20;

use super::BrokerContact;
use crate::sink::fence::TransactionFence;

/// The consumer-group protocol a source's consumer speaks (librdkafka's `group.protocol`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupProtocol {
    /// The classic protocol: the group's leader assigns partitions (cooperative-sticky here);
    /// the client sets its session timeout and heartbeat interval.
    #[default]
    Classic,
    /// KIP-848's consumer protocol: the broker assigns partitions, and the session timeout and
    /// heartbeat interval are the broker's settings (`group.consumer.*`).
    Consumer,
}

impl GroupProtocol {
    /// librdkafka properties this protocol does not take (the broker owns what they set):
    /// librdkafka refuses a consumer that sets any of them.
    pub fn refused_properties(self) -> &'static [&'static str] {
        match self {
            GroupProtocol::Classic => &[],
            GroupProtocol::Consumer => &[
                "session.timeout.ms",
                "heartbeat.interval.ms",
                "partition.assignment.strategy",
                "group.protocol.type",
            ],
        }
    }

    /// Its name in librdkafka's `group.protocol` and in `[kafka] group_protocol`.
    pub fn name(self) -> &'static str {
        match self {
            GroupProtocol::Classic => "classic",
            GroupProtocol::Consumer => "consumer",
        }
    }
}

/// Settings of one Kafka source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaSourceSettings {
    /// The pipeline's name (a metric label).
    pub pipeline: String,
    /// The source's name (a metric label).
    pub source: String,
    /// `bootstrap.servers`.
    pub brokers: String,
    /// `group.id`.
    pub group: String,
    /// The group protocol (`group.protocol`).
    pub group_protocol: GroupProtocol,
    /// The topic read.
    pub topic: String,
    /// librdkafka properties passed through as they are (TLS, SASL, timeouts, ...); they may not
    /// turn on auto-commit or auto offset store.
    pub properties: BTreeMap<String, String>,
    /// Records per batch.
    pub batch_size: usize,
    /// Unacknowledged records per partition before it pauses.
    pub max_unacked: usize,
    /// Bytes (keys and payloads) in flight per partition before it pauses.
    pub max_unacked_bytes: usize,
    /// The runtime's budget for bytes in flight, shared by every partition of every source:
    /// a partition pauses while it is spent.
    pub memory_budget: Arc<MemoryBudget>,
    /// Acks a record needs: one per path from the source to a sink (1 for a line).
    pub paths_to_sinks: u32,
    /// Commit at least this often.
    pub commit_interval: Duration,
    /// Commit as soon as this many acknowledged records are uncommitted.
    pub commit_max_records: i64,
    /// How long one poll waits for a record (also the latency of partial batches).
    pub poll_timeout: Duration,
    /// How long a shutdown waits for in-flight records to be acknowledged (a revoke waits at
    /// most 5 s of it).
    pub drain_timeout: Duration,
    /// Commit offsets to the group (false when an exactly-once sink commits them in its
    /// transactions).
    pub commit_offsets: bool,
    /// Shared with an exactly-once sink (see [`TransactionFence`]).
    pub fence: TransactionFence,
    /// When the consumer last heard from a broker (for readiness; from its statistics).
    pub broker_contact: BrokerContact,
    /// On the embedded broker: where the source tells its commits, for the producers of the
    /// same process that hold back while the pipeline is behind.
    pub backlog: Option<Arc<Backlog>>,
}

impl KafkaSourceSettings {
    /// Settings with the defaults of DESIGN.md for the rest.
    pub fn new(
        brokers: impl Into<String>,
        group: impl Into<String>,
        topic: impl Into<String>,
    ) -> Self {
        KafkaSourceSettings {
            pipeline: String::new(),
            source: String::new(),
            brokers: brokers.into(),
            group: group.into(),
            group_protocol: GroupProtocol::Classic,
            topic: topic.into(),
            properties: BTreeMap::new(),
            batch_size: 1024,
            max_unacked: 10_000,
            max_unacked_bytes: DEFAULT_MAX_UNACKED_BYTES,
            memory_budget: MemoryBudget::unlimited(),
            paths_to_sinks: 1,
            commit_interval: Duration::from_secs(1),
            commit_max_records: 5_000,
            poll_timeout: Duration::from_millis(10),
            drain_timeout: Duration::from_secs(5),
            commit_offsets: true,
            fence: TransactionFence::default(),
            broker_contact: BrokerContact::default(),
            backlog: None,
        }
    }

    /// Checks the consumer's configuration by making (and dropping) a client: librdkafka's
    /// refusal of a property, named, when it does not take them (`fetch.max.bytes` below
    /// `message.max.bytes`, an unknown property, ...). A wrong property is a configuration
    /// error, which no restart cures.
    pub fn check_client_config(&self) -> Result<(), String> {
        self.client_config()
            .create::<rdkafka::consumer::BaseConsumer>()
            .map(drop)
            .map_err(|error| error.to_string())
    }

    /// Where a partition without a usable position goes on from (`auto.offset.reset` of the
    /// properties; `earliest` by default).
    pub(crate) fn offset_reset(&self) -> OffsetReset {
        OffsetReset::named(self.properties.get("auto.offset.reset").map(String::as_str))
    }

    /// The consumer's configuration: defaults (cooperative-sticky under the classic protocol),
    /// then the pass-through properties, `auto.offset.reset = error`, then the group protocol and
    /// what the delivery contract needs (explicit commits only).
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        if self.group_protocol == GroupProtocol::Classic {
            config.set("partition.assignment.strategy", "cooperative-sticky");
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        // librdkafka resets nothing on its own (it would skip unread records with a warning in
        // its log): the runtime chooses where a partition goes on, and counts what it skips.
        config.set("auto.offset.reset", "error");
        // For the consumer-lag gauges (high watermarks) and the broker contact (readiness): at
        // least once a second (a longer or no interval from the properties is shortened).
        let statistics_ms = self
            .properties
            .get("statistics.interval.ms")
            .and_then(|ms| ms.parse::<u64>().ok())
            .filter(|ms| (1..=1000).contains(ms))
            .unwrap_or(1000);
        config.set("statistics.interval.ms", statistics_ms.to_string());
        config
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", &self.group)
            .set("group.protocol", self.group_protocol.name())
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("allow.auto.create.topics", "false");
        config
    }
}
