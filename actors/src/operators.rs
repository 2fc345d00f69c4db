//! Operators: the pure logic of stream operators, apart from the actors that run them (so each
//! can be tested with exact inputs and outputs, and clocks passed in rather than read).
//!
//! - [`window`]: keyed aggregation in tumbling, sliding and session windows over event time,
//!   with watermarks, allowed lateness and an idle timeout.
//! - [`aggregate`]: count, sum, min, max and mean.
//! - [`buffer`]: a bounded buffer with an [`buffer::OverflowStrategy`].
//! - [`throttle`]: a token bucket (rate, burst).
//! - [`map_async`]: bounded parallelism, results in order or as they complete.
//! - [`json`]: JSON field paths, predicates and projections for the TOML built-in operators.
//! - [`error`]: invalid operator settings.

pub(crate) mod aggregate;
pub(crate) mod buffer;
pub(crate) mod error;
pub(crate) mod json;
pub(crate) mod map_async;
pub(crate) mod throttle;
pub(crate) mod window;
