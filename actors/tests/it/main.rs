//! Integration tests of the stage actors, one module per area (one test binary: each links
//! rdkafka and actix again).
#![allow(clippy::print_stdout)]

mod dead_letters;
mod embedded_pipeline;
