//! Integration tests of the root crate, one module per area (one test binary: each links actix,
//! and later rdkafka, again).

mod supervision_facade;
