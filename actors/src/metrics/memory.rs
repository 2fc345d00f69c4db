//! The memory budget's gauges (see `crate::flow::memory`).

use metrics::{gauge, Gauge};

use super::{INFLIGHT_BYTES, INFLIGHT_BYTES_PEAK, MEMORY_BUDGET};

/// Bytes in flight now, the most ever, and the budget, for one pipeline.
#[derive(Clone, Debug)]
pub struct MemoryGauges {
    /// Bytes in flight.
    pub inflight: Gauge,
    /// The most bytes in flight at once.
    pub peak: Gauge,
    /// The budget.
    pub budget: Gauge,
}

impl MemoryGauges {
    /// The gauges of `pipeline`.
    pub fn new(pipeline: &str) -> Self {
        MemoryGauges {
            inflight: gauge!(INFLIGHT_BYTES, "pipeline" => pipeline.to_owned()),
            peak: gauge!(INFLIGHT_BYTES_PEAK, "pipeline" => pipeline.to_owned()),
            budget: gauge!(MEMORY_BUDGET, "pipeline" => pipeline.to_owned()),
        }
    }
}
