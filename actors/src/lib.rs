//! streamvisor's stage actors, built on `streamvisor-supervision`: the Kafka source (its client
//! owned by the source supervisor, one supervised subtree per assigned partition), push sources,
//! partition processors and operators, demand flow control, offset tracking, and sinks (Kafka,
//! PostgreSQL, files).
//!
//! This crate knows nothing of HTTP, sockets or the CLI. Its actors arrive with the no-loss core
//! issue; so far it holds the pieces they build on: the per-partition offset tracker, record
//! batches, and the file sink's JSON Lines file.

pub mod error;
pub mod flow;
pub mod metrics;
pub mod offsets;
pub mod operators;
pub mod pipeline;
pub mod record;
pub mod sink;
pub mod source;

pub use streamvisor_supervision as supervision;
