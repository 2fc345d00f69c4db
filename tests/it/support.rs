//! What the tests share, and nothing else: the Apache Kafka broker they start ([`kafka`]), the
//! `streamvisor` program they run ([`program`], with its `wait_until`), random kills
//! ([`kills`]) and private PostgreSQL clusters ([`postgres`]).

pub mod kafka;
pub mod kills;
pub mod postgres;
pub mod program;
