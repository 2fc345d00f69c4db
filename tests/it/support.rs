//! What the tests share, and nothing else: the Apache Kafka broker they start ([`kafka`]), the
//! `streamvisor` program they run ([`program`], with its `wait_until`), random kills
//! ([`kills`]) and private PostgreSQL clusters ([`postgres`]).

pub(crate) mod kafka;
pub(crate) mod kills;
pub(crate) mod postgres;
pub(crate) mod program;
