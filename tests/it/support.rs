//! What the tests share, and nothing else: the Apache Kafka broker they start ([`kafka`]), the
//! `streamvisor` program they run ([`program`]), random kills ([`kills`]), private PostgreSQL
//! clusters ([`postgres`]), sink files read while written ([`lines`]), and the one way they wait
//! ([`wait`]).

pub(crate) mod kafka;
pub(crate) mod kills;
pub(crate) mod lines;
pub(crate) mod postgres;
pub(crate) mod program;
pub(crate) mod wait;
