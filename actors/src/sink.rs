//! Sinks: where records become durable, and only then acknowledged.

pub mod file;
pub mod json_lines;
pub mod postgres;
pub mod rolling;
