//! streamvisor's actors, built on `streamvisor-supervision`, laid out as the actor tree is. The
//! modules are private; what a runtime assembles them with is re-exported here, by role:
//!
//! - `source`: the Kafka source (its polling thread owned by the source supervisor), each
//!   partition's flow and partition actor, decoding; push sources;
//! - `flow`: demand flow control between actors (inlets, forwarders, outputs, key routing);
//! - `stage`: the stage actors, one per partition per stage, running `operators`;
//! - `sink`: the sink actors and what they write with (files, Kafka, exactly-once Kafka,
//!   PostgreSQL, discard);
//! - `pipeline`: assembling them into a supervised tree (topology, acks, health, the watcher
//!   that rewinds partitions when an actor holding their records fails);
//! - `offsets`, `record`, [`metrics`] (public: the catalogue of metric names), `error`: what
//!   they all share.
//!
//! This crate knows nothing of HTTP, sockets or the CLI. The `test-util` feature gives
//! [`SinkFaults`] its one method, which makes a file sink's writes fail for a while.

mod error;
mod flow;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod metrics;
mod offsets;
mod operators;
mod pipeline;
mod record;
mod sink;
mod source;
mod stage;

pub use streamvisor_supervision as supervision;

// Records and what goes wrong with them.
pub use error::{PostgresError, SinkError, SourceError};
pub use record::{Batch, Origin, RecordRef, NO_OFFSET};

// Sources.
pub use source::backlog::{Backlog, HOLD_BACK_BYTES, HOLD_BACK_RECORDS};
pub use source::decode::{Format, MAX_MSGPACK_DEPTH};
pub use source::kafka::{
    silence_limit, BrokerContact, GroupProtocol, KafkaSourceSettings, PartitionStatus, SourceInput,
    BROKER_SILENCE_LIMIT, DEFAULT_MAX_UNACKED_BYTES,
};
pub use source::push::{
    PushFailed, PushRecord, PushRefused, PushSettings, PushSource, Pushed, RecordRefused,
    CLIENT_DELIVERY_TIMEOUT,
};

// Flow control.
pub use flow::inlet::{Inlet, Inlets, SendRefused, Waker};
pub use flow::memory::MemoryBudget;
pub use flow::outputs::{key_route, FanOut};

// Operators and stages.
pub use operators::buffer::OverflowStrategy;
pub use operators::error::OperatorError;
pub use operators::json::{write_key, FieldPath, Predicate, Projection};
pub use operators::window::{WindowKind, WindowSettings};
pub use stage::map_async::{AsyncMapFn, AsyncRecord, AsyncValue};
pub use stage::throttle::ThrottleSettings;
pub use stage::window::WindowRecipe;
pub use stage::{FilterFn, FlatMapFn, KeyFn, MapFn, Operation, Pieces, StageRecipe, StageWorker};

// Sinks.
pub use sink::actor::{SinkActor, SinkShared};
pub use sink::discard_sink::DiscardWriter;
pub use sink::file_sink::{FileOutput, FileSinkSettings, FileWriter};
pub use sink::json_lines::encode_line;
pub use sink::kafka_sink::{KafkaSinkSettings, KafkaWriter};
pub use sink::postgres::{
    check as check_postgres, default_retry as default_postgres_retry, Connection, Dedupe,
    PostgresSettings, RowBuffers,
};
pub use sink::postgres_sink::PostgresWriter;
pub use sink::produce::origin_headers;
pub use sink::rolling::{FileFormat, FileLayout, RollingSettings};

// Pipelines.
pub use pipeline::acks::AckRouter;
pub use pipeline::dead_letters::DeadLetterTarget;
pub use pipeline::health::{Readiness, SinkFaults};
pub use pipeline::topology::{NodeOutputs, NodePart, SinkNode, StageNode, Topology, TopologyError};
pub use pipeline::{PipelineRecipe, SinkTarget};
