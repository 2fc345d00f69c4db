//! Sources: how records get from Kafka into a pipeline, per partition, under demand.

pub mod fence;
pub mod kafka;
pub mod partition_flow;
pub mod push;
