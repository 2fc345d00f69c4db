//! [`OperatorError`]: an operator setting that cannot work, or an operator that must fail.

use std::time::Duration;

use thiserror::Error;

/// Why an operator cannot be built, or why it failed.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum OperatorError {
    /// A setting that must be positive is zero.
    #[error("{operator}: {setting} must be greater than zero")]
    Zero {
        /// The operator (`throttle`, `map_async`, ...).
        operator: &'static str,
        /// The setting (`rate`, `parallelism`, ...).
        setting: &'static str,
    },
    /// A sliding window shorter than its slide would skip records.
    #[error("{operator}: window size {size:?} is shorter than its slide {slide:?}")]
    WindowShorterThanSlide {
        /// The operator.
        operator: &'static str,
        /// The window's size.
        size: Duration,
        /// Its slide.
        slide: Duration,
    },
    /// Another invalid setting.
    #[error("{operator}: {why}")]
    Invalid {
        /// The operator.
        operator: &'static str,
        /// What is wrong.
        why: String,
    },
    /// A buffer with the `Fail` strategy overflowed.
    #[error("buffer overflow: {capacity} items held and the overflow strategy is Fail")]
    Overflow {
        /// The buffer's capacity.
        capacity: usize,
    },
    /// A JSON field path that cannot be parsed.
    #[error("field path {path:?}: {why}")]
    FieldPath {
        /// The path as written.
        path: String,
        /// What is wrong.
        why: String,
    },
}
