//! Sources: how records get from Kafka into a pipeline, per partition, under demand: the
//! polling thread ([`kafka`]), each partition's flow ([`partition_flow`]), the partition actor
//! at `/pipelines/<p>/sources/<s>/p<N>` ([`partition`]), its decoding ([`decode`]), and how the
//! polling thread reaches the partition actors ([`outlet`]); push sources ([`push`]), and how
//! producers of the process hold back on the embedded broker ([`backlog`]).

pub(crate) mod backlog;
pub(crate) mod decode;
pub(crate) mod kafka;
pub(crate) mod outlet;
pub(crate) mod partition;
pub(crate) mod partition_flow;
pub(crate) mod push;
