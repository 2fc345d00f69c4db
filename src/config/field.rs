//! What the parts of a pipeline file share: how a field's error is told ([`Invalid`]), optional
//! durations, and the `fan_out` setting.

use std::time::Duration;

use streamvisor_actors::FanOut;

use super::duration::serde_duration;

/// A field and what is wrong with it.
pub(super) type Invalid = (String, String);

/// Deserializes an optional duration (`"250ms"`, `"30s"`, ...).
pub(super) fn optional_duration<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    serde_duration::deserialize(deserializer).map(Some)
}

/// Parses a `fan_out` setting.
pub fn parse_fan_out(text: &str) -> Result<FanOut, String> {
    match text {
        "broadcast" => Ok(FanOut::Broadcast),
        "balance" => Ok(FanOut::Balance),
        "partition_by_key" => Ok(FanOut::PartitionByKey),
        other => Err(format!(
            "{other:?}: expected \"broadcast\", \"balance\" or \"partition_by_key\""
        )),
    }
}
