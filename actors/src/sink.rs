//! Sinks: where records become durable, and only then acknowledged. The sink actors at
//! `/pipelines/<p>/sinks/<k>` (file, Kafka, exactly-once Kafka with its [`fence`], PostgreSQL,
//! discard) and what they write with (JSON Lines and rolled-over files, PostgreSQL rows, the
//! producer's settings and origin headers).

pub mod discard_sink;
pub mod fence;
pub mod file;
pub mod file_sink;
pub mod json_lines;
pub mod kafka_sink;
pub mod postgres;
pub mod postgres_sink;
pub mod produce;
pub mod rolling;
pub mod transactional_sink;
pub mod writer_failure;
