//! Sinks: where records become durable, and only then acknowledged. One sink actor at
//! `/pipelines/<p>/sinks/<k>` ([`actor::SinkActor`]) owns the inlet, credit, acks, retry in
//! place and readiness; its [`writer::SinkWriter`] says how to write: files ([`file_sink`]),
//! Kafka ([`kafka_sink`]), exactly-once Kafka ([`transactional_sink`], with the [`fence`] it
//! shares with the source), PostgreSQL ([`postgres_sink`]), or nothing ([`discard_sink`]).
//! Beside them, what they write with: JSON Lines and rolled-over files, PostgreSQL rows, the
//! producer's settings and origin headers.

pub(crate) mod actor;
pub(crate) mod discard_sink;
pub(crate) mod fence;
pub(crate) mod file;
pub(crate) mod file_sink;
pub(crate) mod json_lines;
pub(crate) mod kafka_sink;
pub(crate) mod postgres;
pub(crate) mod postgres_sink;
pub(crate) mod produce;
pub(crate) mod rolling;
pub(crate) mod transactional_sink;
pub(crate) mod writer;
