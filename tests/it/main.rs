//! Integration tests of the root crate, one module per area (one test binary: each links actix
//! and rdkafka again).

mod cli;
mod runtime_embedded;
mod supervision_facade;
