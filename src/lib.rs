#![doc = include_str!("../README.md")]
//!
//! ## Crates
//!
//! - [`supervision`] (`streamvisor-supervision`): supervisors, strategies, restart intensity,
//!   backoff, actor paths, the registry, kill.
//! - [`actors`] (`streamvisor-actors`): the stage actors (Kafka source, processors, sinks).
//! - this crate: the pipeline file, runtime bootstrap, the Prometheus exporter, HTTP, CLI.

pub mod config;
pub mod exporter;
pub mod http;
pub mod runtime;

pub use streamvisor_actors as actors;
pub use streamvisor_supervision as supervision;
