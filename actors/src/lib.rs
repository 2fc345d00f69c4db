//! streamvisor's actors, built on `streamvisor-supervision`, laid out as the actor tree is:
//!
//! - [`source`]: the Kafka source (its polling thread owned by the source supervisor), each
//!   partition's flow and partition actor, decoding; push sources;
//! - [`flow`]: demand flow control between actors (inlets, forwarders, outputs, key routing);
//! - [`stage`]: the stage actors, one per partition per stage, running [`operators`];
//! - [`sink`]: the sink actors and what they write with (files, Kafka, exactly-once Kafka,
//!   PostgreSQL, discard);
//! - [`pipeline`]: assembling them into a supervised tree (topology, acks, health, the watcher
//!   that rewinds partitions when an actor holding their records fails);
//! - [`offsets`], [`record`], [`metrics`], [`error`]: what they all share.
//!
//! This crate knows nothing of HTTP, sockets or the CLI.

pub mod error;
pub mod flow;
pub mod metrics;
pub mod offsets;
pub mod operators;
pub mod pipeline;
pub mod record;
pub mod sink;
pub mod source;
pub mod stage;

pub use streamvisor_supervision as supervision;
