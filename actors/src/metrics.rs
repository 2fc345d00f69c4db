//! Every metric streamvisor emits: its name, unit, help text and labels live here and nowhere
//! else (raw metric macros are banned elsewhere by `clippy.toml`). Names follow DESIGN.md:
//! prefix `streamvisor_`, base units, `_total` on counters; labels are low-cardinality
//! (`pipeline`, `source`, `sink`, `topic`, `partition`, `kind`), never an actor path or a key.
//! Handles are made once per actor or thread, so that emitting allocates nothing.
#![allow(clippy::disallowed_macros)]

pub(crate) mod lost;
mod memory;
mod settled;

pub use memory::MemoryGauges;
pub use settled::{DeadLetterCounters, Settled, SETTLED_REASONS};

use crate::pipeline::dead_letters::DeadLetterReason;
use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
    Gauge, Histogram, Unit,
};

/// Records read from Kafka and handed to a pipeline.
pub const RECORDS_IN: &str = "streamvisor_records_in_total";
/// Records made durable by a sink.
pub const RECORDS_OUT: &str = "streamvisor_records_out_total";
/// Records sent to the dead-letter topic, by reason.
pub const DEAD_LETTERS: &str = "streamvisor_dead_letters_total";
/// Records read and settled (acknowledged), by how.
pub const RECORDS_SETTLED: &str = "streamvisor_records_settled_total";
/// Records never read because the broker deleted them first, by partition.
pub const RECORDS_LOST: &str = "streamvisor_records_lost_total";
/// Time a sink took to make a batch durable.
pub const SINK_WRITE_SECONDS: &str = "streamvisor_sink_write_seconds";
/// Sink writes retried in place.
pub const SINK_RETRIES: &str = "streamvisor_sink_retries_total";
/// The last committed offset of a partition.
pub const COMMITTED_OFFSET: &str = "streamvisor_kafka_committed_offset";
/// Acknowledged records of a partition not committed yet.
pub const UNCOMMITTED_RECORDS: &str = "streamvisor_uncommitted_records";
/// Actor restarts, by actor kind.
pub const ACTOR_RESTARTS: &str = "streamvisor_actor_restarts_total";
/// Supervisors that passed their restart intensity, by actor kind.
pub const ESCALATIONS: &str = "streamvisor_supervisor_escalations_total";

/// High watermark minus committed offset, per partition.
pub const CONSUMER_LAG: &str = "streamvisor_kafka_consumer_lag_records";
/// Demand granted to a partition and not used yet.
pub const DEMAND_OUTSTANDING: &str = "streamvisor_demand_outstanding";
/// Time partitions spent paused (no demand, or at their unacked cap).
pub const BACKPRESSURE_SECONDS: &str = "streamvisor_backpressure_seconds_total";
/// Age of the oldest record of a partition still unacknowledged.
pub const OLDEST_UNACKED_AGE: &str = "streamvisor_oldest_unacked_age_seconds";
/// Time a stage actor took over a batch.
pub const STAGE_LATENCY: &str = "streamvisor_stage_latency_seconds";
/// Messages waiting in actors' mailboxes, by actor kind.
pub const MAILBOX_MESSAGES: &str = "streamvisor_mailbox_messages";
/// Ingest requests (REST and sockets), by outcome.
pub const INGEST_REQUESTS: &str = "streamvisor_ingest_requests_total";
/// Records ingest wrote to Kafka (acknowledged by the broker).
pub const INGEST_RECORDS: &str = "streamvisor_ingest_records_total";
/// Bytes ingest read from request bodies and socket connections.
pub const INGEST_BYTES: &str = "streamvisor_ingest_bytes_total";
/// Records ingest refused one by one (too large, invalid), the others going on.
pub const INGEST_REFUSED: &str = "streamvisor_ingest_records_refused_total";
/// 1 while a pipeline is ready (DESIGN.md's readiness), 0 while not.
pub const READY: &str = "streamvisor_ready";
/// The capacity of actors' mailboxes, by actor kind (fill = messages / capacity).
pub const MAILBOX_CAPACITY: &str = "streamvisor_mailbox_capacity";
/// Records a stage actor took in.
pub const STAGE_RECORDS_IN: &str = "streamvisor_stage_records_in_total";
/// Records a stage actor handed on.
pub const STAGE_RECORDS_OUT: &str = "streamvisor_stage_records_out_total";

/// Bytes (keys and payloads) of records in flight: read and not yet written, absorbed or
/// dropped.
pub const INFLIGHT_BYTES: &str = "streamvisor_inflight_bytes";
/// The most bytes of records ever in flight at once since the start.
pub const INFLIGHT_BYTES_PEAK: &str = "streamvisor_inflight_bytes_peak";
/// The memory budget for records in flight (`[runtime] memory_budget`).
pub const MEMORY_BUDGET: &str = "streamvisor_memory_budget_bytes";

/// Every metric name, for the tests that check each is described and exported.
pub const ALL: &[&str] = &[
    RECORDS_IN,
    RECORDS_OUT,
    DEAD_LETTERS,
    RECORDS_SETTLED,
    RECORDS_LOST,
    SINK_WRITE_SECONDS,
    SINK_RETRIES,
    COMMITTED_OFFSET,
    UNCOMMITTED_RECORDS,
    ACTOR_RESTARTS,
    ESCALATIONS,
    CONSUMER_LAG,
    DEMAND_OUTSTANDING,
    BACKPRESSURE_SECONDS,
    OLDEST_UNACKED_AGE,
    STAGE_LATENCY,
    MAILBOX_MESSAGES,
    INGEST_REQUESTS,
    INGEST_RECORDS,
    INGEST_BYTES,
    INGEST_REFUSED,
    READY,
    MAILBOX_CAPACITY,
    STAGE_RECORDS_IN,
    STAGE_RECORDS_OUT,
    INFLIGHT_BYTES,
    INFLIGHT_BYTES_PEAK,
    MEMORY_BUDGET,
];

/// The actor kinds of a pipeline's tree (the `kind` label): restart and escalation counters
/// are present at zero for each from the start.
pub const ACTOR_KINDS: &[&str] = &[
    "supervisor",
    "worker",
    "pipeline",
    "source",
    "partition",
    "stage-group",
    "stage",
    "sink",
];

/// Explicit buckets for write latencies (seconds): 0.5 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Explicit buckets for [`STAGE_LATENCY`] (seconds): a stage takes microseconds over a batch,
/// so 1 µs to 1 s.
pub const STAGE_LATENCY_BUCKETS: &[f64] = &[
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
];

/// Describes every metric (help text and unit) to the installed recorder.
pub fn describe() {
    describe_counter!(
        RECORDS_IN,
        Unit::Count,
        "Records read from Kafka and handed to a pipeline."
    );
    describe_counter!(
        RECORDS_OUT,
        Unit::Count,
        "Records made durable by a sink and acknowledged."
    );
    describe_counter!(
        DEAD_LETTERS,
        Unit::Count,
        "Records sent to the dead-letter topic, by the component that sent them and reason."
    );
    describe_counter!(
        RECORDS_LOST,
        Unit::Count,
        "Records lost, by reason: never read because the broker deleted them first \
         (retention, skipped as auto.offset.reset says), or refused by the dead-letter topic \
         itself (dead_letter_refused)."
    );
    describe_counter!(
        RECORDS_SETTLED,
        Unit::Count,
        "Records read and acknowledged, by how: written, aggregated (into a result a sink \
         wrote), filtered, dropped (an overflow policy) or dead_letter."
    );
    describe_histogram!(
        SINK_WRITE_SECONDS,
        Unit::Seconds,
        "Time a sink took to make a batch durable."
    );
    describe_counter!(
        SINK_RETRIES,
        Unit::Count,
        "Sink writes retried in place after a failure."
    );
    describe_gauge!(
        COMMITTED_OFFSET,
        Unit::Count,
        "The last offset committed for a partition."
    );
    describe_gauge!(
        UNCOMMITTED_RECORDS,
        Unit::Count,
        "Acknowledged records of a partition not committed yet."
    );
    describe_counter!(
        ACTOR_RESTARTS,
        Unit::Count,
        "Actor restarts by supervisors, by actor kind."
    );
    describe_counter!(
        ESCALATIONS,
        Unit::Count,
        "Supervisors that passed their restart intensity, by actor kind."
    );
    describe_counter!(
        INGEST_REQUESTS,
        Unit::Count,
        "Ingest requests (REST requests, socket batches) by source and outcome (reason)."
    );
    describe_counter!(
        INGEST_RECORDS,
        Unit::Count,
        "Records ingest wrote to Kafka, acknowledged by the broker."
    );
    describe_counter!(
        INGEST_REFUSED,
        Unit::Count,
        "Records ingest refused one by one (too large, invalid, over max_record); the others went on."
    );
    describe_counter!(
        INGEST_BYTES,
        Unit::Bytes,
        "Bytes ingest read from request bodies and socket connections."
    );
    describe_gauge!(
        CONSUMER_LAG,
        Unit::Count,
        "High watermark minus committed offset of a partition (records)."
    );
    describe_gauge!(
        DEMAND_OUTSTANDING,
        Unit::Count,
        "Demand granted to a partition's source actor and not used yet (records)."
    );
    describe_counter!(
        BACKPRESSURE_SECONDS,
        Unit::Seconds,
        "Time partitions spent paused: no demand, or at their cap of unacknowledged records."
    );
    describe_gauge!(
        INFLIGHT_BYTES,
        Unit::Bytes,
        "Bytes of records in flight: read, and not yet written, absorbed into state or dropped."
    );
    describe_gauge!(
        INFLIGHT_BYTES_PEAK,
        Unit::Bytes,
        "The most bytes of records in flight at once since the start."
    );
    describe_gauge!(
        MEMORY_BUDGET,
        Unit::Bytes,
        "The budget for bytes in flight: partitions pause while it is spent."
    );
    describe_gauge!(
        OLDEST_UNACKED_AGE,
        Unit::Seconds,
        "Age of the oldest record of a partition not acknowledged yet."
    );
    describe_histogram!(
        STAGE_LATENCY,
        Unit::Seconds,
        "Time a stage actor took over one batch."
    );
    describe_gauge!(
        MAILBOX_MESSAGES,
        Unit::Count,
        "Messages waiting in actors' mailboxes, summed by pipeline and actor kind."
    );
    describe_gauge!(
        MAILBOX_CAPACITY,
        Unit::Count,
        "Capacity of actors' mailboxes, summed by pipeline and actor kind."
    );
    describe_gauge!(
        READY,
        Unit::Count,
        "1 while the pipeline is ready (every partition has live actors, no sink retrying), else 0."
    );
    describe_counter!(
        STAGE_RECORDS_IN,
        Unit::Count,
        "Records a stage's actors took in."
    );
    describe_counter!(
        STAGE_RECORDS_OUT,
        Unit::Count,
        "Records a stage's actors handed on."
    );
}

/// Makes the supervision counters (restarts, escalations) of every actor kind present at zero.
pub fn supervision_at_zero() {
    for kind in ACTOR_KINDS {
        counter!(ACTOR_RESTARTS, "kind" => *kind).increment(0);
        counter!(ESCALATIONS, "kind" => *kind).increment(0);
    }
}

/// Sets the readiness gauge of `pipeline`.
pub fn set_ready(pipeline: &str, ready: bool) {
    gauge!(READY, "pipeline" => pipeline.to_owned()).set(if ready { 1.0 } else { 0.0 });
}

/// A source's handles.
#[derive(Clone, Debug)]
pub struct SourceMetrics {
    /// Records in.
    pub records_in: Counter,
    /// Dead letters (records it could not decode).
    pub dead_letters: DeadLetterCounters,
    /// How its pipeline's records were settled.
    pub settled: Settled,
    /// Whole seconds of pause (fractions carried by the caller).
    pub backpressure_seconds: Counter,
    /// Bytes in flight now, the most ever, and the budget.
    pub memory: MemoryGauges,
    pipeline: String,
    topic: String,
}

impl SourceMetrics {
    /// Handles for `source` of `pipeline` reading `topic` (counters appear at zero).
    pub fn new(pipeline: &str, source: &str, topic: &str) -> Self {
        let records_in =
            counter!(RECORDS_IN, "pipeline" => pipeline.to_owned(), "source" => source.to_owned());
        let dead_letters =
            DeadLetterCounters::new(pipeline, "source", source, &[DeadLetterReason::Undecodable]);
        let backpressure_seconds = counter!(BACKPRESSURE_SECONDS, "pipeline" => pipeline.to_owned(), "source" => source.to_owned());
        records_in.increment(0);
        backpressure_seconds.increment(0);
        SourceMetrics {
            records_in,
            dead_letters,
            settled: Settled::new(pipeline),
            backpressure_seconds,
            memory: MemoryGauges::new(pipeline),
            pipeline: pipeline.to_owned(),
            topic: topic.to_owned(),
        }
    }

    /// A partition's commit gauges (made on assign).
    pub fn partition(&self, partition: i32) -> PartitionMetrics {
        let labels = [
            ("pipeline", self.pipeline.clone()),
            ("topic", self.topic.clone()),
            ("partition", partition.to_string()),
        ];
        PartitionMetrics {
            committed_offset: gauge!(COMMITTED_OFFSET, &labels),
            uncommitted: gauge!(UNCOMMITTED_RECORDS, &labels),
            lag: gauge!(CONSUMER_LAG, &labels),
            demand: gauge!(DEMAND_OUTSTANDING, &labels),
            oldest_unacked_age: gauge!(OLDEST_UNACKED_AGE, &labels),
            records_lost: {
                let lost = counter!(
                    RECORDS_LOST,
                    "pipeline" => self.pipeline.clone(),
                    "topic" => self.topic.clone(),
                    "partition" => partition.to_string(),
                    "reason" => "retention"
                );
                lost.increment(0);
                lost
            },
        }
    }
}

/// A partition's handles.
#[derive(Clone, Debug)]
pub struct PartitionMetrics {
    /// Last committed offset.
    pub committed_offset: Gauge,
    /// Acknowledged, not committed.
    pub uncommitted: Gauge,
    /// High watermark minus committed.
    pub lag: Gauge,
    /// Demand outstanding.
    pub demand: Gauge,
    /// Age of the oldest unacknowledged record.
    pub oldest_unacked_age: Gauge,
    /// Records never read: the broker deleted them first.
    pub records_lost: Counter,
}

/// A sink's handles.
#[derive(Clone, Debug)]
pub struct SinkMetrics {
    /// Records out.
    pub records_out: Counter,
    /// Write latency.
    pub write_seconds: Histogram,
    /// Retries.
    pub retries: Counter,
    /// Records the sink's target refused, sent to the dead letters.
    pub dead_letters: DeadLetterCounters,
    /// How its pipeline's records were settled.
    pub settled: Settled,
}

impl SinkMetrics {
    /// Handles for `sink` of `pipeline` (counters appear at zero).
    pub fn new(pipeline: &str, sink: &str) -> Self {
        let labels = [("pipeline", pipeline.to_owned()), ("sink", sink.to_owned())];
        let records_out = counter!(RECORDS_OUT, &labels);
        let retries = counter!(SINK_RETRIES, &labels);
        records_out.increment(0);
        retries.increment(0);
        SinkMetrics {
            records_out,
            write_seconds: histogram!(SINK_WRITE_SECONDS, &labels),
            retries,
            dead_letters: DeadLetterCounters::new(
                pipeline,
                "sink",
                sink,
                &[DeadLetterReason::RefusedBySink],
            ),
            settled: Settled::new(pipeline),
        }
    }
}

/// Counts a restart of an actor of `kind`.
pub fn actor_restarted(kind: &'static str) {
    counter!(ACTOR_RESTARTS, "kind" => kind).increment(1);
}

/// Counts an escalation of a supervisor of `kind`.
pub fn supervisor_escalated(kind: &'static str) {
    counter!(ESCALATIONS, "kind" => kind).increment(1);
}

/// A stage actor's handles.
#[derive(Clone, Debug)]
pub struct StageMetrics {
    /// Time over a batch.
    pub latency: Histogram,
    /// Records taken in.
    pub records_in: Counter,
    /// Records handed on.
    pub records_out: Counter,
    /// Records it sent to the dead letters, by reason.
    pub dead_letters: DeadLetterCounters,
    /// How its pipeline's records were settled.
    pub settled: Settled,
}

impl StageMetrics {
    /// Handles for `stage` of `pipeline` (counters appear at zero).
    pub fn new(pipeline: &str, stage: &str) -> Self {
        let labels = [
            ("pipeline", pipeline.to_owned()),
            ("stage", stage.to_owned()),
        ];
        let records_in = counter!(STAGE_RECORDS_IN, &labels);
        let records_out = counter!(STAGE_RECORDS_OUT, &labels);
        records_in.increment(0);
        records_out.increment(0);
        StageMetrics {
            latency: histogram!(STAGE_LATENCY, &labels),
            records_in,
            records_out,
            dead_letters: DeadLetterCounters::new(
                pipeline,
                "stage",
                stage,
                &[
                    DeadLetterReason::Refused,
                    DeadLetterReason::Late,
                    DeadLetterReason::WindowClosedAtCap,
                ],
            ),
            settled: Settled::new(pipeline),
        }
    }
}

/// Sets the mailbox gauges of actors of `kind` in `pipeline`: messages waiting, and capacity.
pub fn mailboxes(pipeline: &str, kind: &'static str, messages: usize, capacity: usize) {
    gauge!(MAILBOX_MESSAGES, "pipeline" => pipeline.to_owned(), "kind" => kind)
        .set(messages as f64);
    gauge!(MAILBOX_CAPACITY, "pipeline" => pipeline.to_owned(), "kind" => kind)
        .set(capacity as f64);
}

/// Why an ingest request ended as it did (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IngestOutcome {
    /// Every record was acknowledged by the broker.
    Accepted,
    /// The producer's in-flight budget was full (429).
    Busy,
    /// The body was over its limit (413).
    TooLarge,
    /// The body or a record was malformed (400).
    BadRequest,
    /// The content type is not one ingest reads (415).
    UnsupportedType,
    /// The broker is away (503).
    Unready,
    /// The broker refused or lost records (503).
    Failed,
    /// Some records were refused for what they are, the others written (202 with a list).
    PartlyRefused,
}

impl IngestOutcome {
    /// Every outcome, in label order.
    pub const ALL: [IngestOutcome; 8] = [
        IngestOutcome::Accepted,
        IngestOutcome::Busy,
        IngestOutcome::TooLarge,
        IngestOutcome::BadRequest,
        IngestOutcome::UnsupportedType,
        IngestOutcome::Unready,
        IngestOutcome::Failed,
        IngestOutcome::PartlyRefused,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            IngestOutcome::Accepted => "accepted",
            IngestOutcome::Busy => "busy",
            IngestOutcome::TooLarge => "too_large",
            IngestOutcome::BadRequest => "bad_request",
            IngestOutcome::UnsupportedType => "unsupported_type",
            IngestOutcome::Unready => "unready",
            IngestOutcome::Failed => "failed",
            IngestOutcome::PartlyRefused => "partly_refused",
        }
    }
}

/// An ingest source's handles.
#[derive(Clone, Debug)]
pub struct IngestMetrics {
    requests: [Counter; 8],
    /// Records acknowledged by the broker.
    pub records: Counter,
    /// Records the producer or the broker refused for what they are (too large, invalid), or
    /// a socket read over `max_record`.
    pub refused: Counter,
    /// Bytes read.
    pub bytes: Counter,
}

impl IngestMetrics {
    /// Handles for ingest `source` (every counter appears at zero).
    pub fn new(source: &str) -> Self {
        let requests = IngestOutcome::ALL.map(|outcome| {
            let requests = counter!(INGEST_REQUESTS, "source" => source.to_owned(), "reason" => outcome.label());
            requests.increment(0);
            requests
        });
        let records = counter!(INGEST_RECORDS, "source" => source.to_owned());
        let bytes = counter!(INGEST_BYTES, "source" => source.to_owned());
        let refused = counter!(INGEST_REFUSED, "source" => source.to_owned());
        records.increment(0);
        bytes.increment(0);
        refused.increment(0);
        IngestMetrics {
            requests,
            records,
            refused,
            bytes,
        }
    }

    /// Counts a request that ended with `outcome`.
    pub fn request(&self, outcome: IngestOutcome) {
        let index = IngestOutcome::ALL
            .iter()
            .position(|candidate| *candidate == outcome)
            .unwrap_or(0);
        self.requests[index].increment(1);
    }
}
