//! Demand flow control (Reactive Streams / Akka Streams semantics) between two stages:
//! the downstream grants demand in records, the upstream never sends more than it was granted,
//! and the downstream's bounded input buffer re-requests once half of it is free again.

mod demand;
mod input_buffer;

pub use demand::Demand;
pub use input_buffer::{DemandViolation, InputBuffer};
