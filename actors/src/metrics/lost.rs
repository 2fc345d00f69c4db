//! Records lost for a reason other than retention (whose counters each partition makes at
//! zero): made where the loss happens.
#![allow(clippy::disallowed_macros)]

use metrics::{counter, Counter};

use super::RECORDS_LOST;

/// The counter of records lost because the dead-letter topic refused their dead letters.
pub(crate) fn dead_letter_refused(pipeline: &str, topic: String, partition: i32) -> Counter {
    counter!(
        RECORDS_LOST,
        "pipeline" => pipeline.to_owned(),
        "topic" => topic,
        "partition" => partition.to_string(),
        "reason" => "dead_letter_refused"
    )
}
