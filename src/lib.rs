#![doc = include_str!("../README.md")]
//!
//! ## Crates
//!
//! - [`supervision`] (`streamvisor-supervision`): supervisors, strategies, restart intensity,
//!   backoff, actor paths, the registry, kill.
//! - [`actors`] (`streamvisor-actors`): the stage actors (Kafka source, processors, sinks).
//! - this crate: the pipeline file, runtime bootstrap, embedding ([`embed`]), the Prometheus exporter, HTTP, ingest (REST and sockets), CLI.

pub mod config;
pub mod embed;
pub mod exporter;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod graph;
pub mod http;
pub mod ingest;
pub mod runtime;

pub use streamvisor_actors as actors;
pub use streamvisor_supervision as supervision;
