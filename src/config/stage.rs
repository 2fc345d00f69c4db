//! `[stages.<name>]`: the built-in operators of a TOML pipeline, each field checked against the
//! operator (a field of another operator is an error naming it), and turned into the actors'
//! [`Operation`]. Built-in operators take JSON field paths (`card.id`) and a fixed set of
//! functions; anything else is written in Rust with the builder.
//!
//! ```toml
//! [stages.pass]
//! inputs = ["payments"]
//! op = "passthrough"
//! fan_out = "broadcast"         # with several consumers: broadcast (default) | balance | partition_by_key
//!
//! [stages.big]                  # keeps records whose field compares true
//! inputs = ["payments"]
//! op = "filter"
//! where = { field = "amount", gt = 1000 }   # eq | ne | gt | ge | lt | le
//!
//! [stages.slim]                 # keeps only these fields
//! inputs = ["big"]
//! op = "project"
//! fields = ["card.id", "amount"]
//!
//! [stages.items]                # each element of the array becomes a record (same key,
//! inputs = ["orders"]           # offset and timestamp; sinks add its "index"); an empty array
//! op = "flat_map"               # makes none, a record without the array goes to the dead
//! field = "lines"               # letters
//!
//! [stages.by_card]              # the Kafka key becomes this field (then fan_out = "partition_by_key"
//! inputs = ["slim"]             # sends each card to one consumer)
//! op = "key_by"
//! key = "card.id"
//!
//! [stages.paced]                # at most 1,000 records a second, bursts of 100
//! inputs = ["by_card"]
//! op = "throttle"
//! rate = 1000
//! per = "1s"                    # default 1s
//! burst = 100                   # default: rate
//!
//! [stages.groups]               # batches of 500, or what came within 50 ms
//! inputs = ["paced"]
//! op = "grouped_within"
//! max_records = 500
//! within = "50ms"
//!
//! [stages.ahead]                # up to 8 batches ahead of a slow consumer, then drop the oldest
//! inputs = ["groups"]           # (dropped records are acknowledged)
//! op = "buffer"
//! batches = 8
//! overflow = "drop_head"        # backpressure (default) | drop_head | drop_tail | drop_new | fail
//!
//! [stages.spend]                # count, sum, min, max and mean per key and window
//! inputs = ["slim"]
//! op = "window"
//! window = "sliding"            # tumbling | sliding | session
//! size = "10m"                  # tumbling and sliding
//! slide = "1m"                  # sliding
//! # gap = "30m"                 # session
//! key = "card.id"               # default: the Kafka key
//! time = "ts"                   # milliseconds; default: the Kafka timestamp
//! value = "amount"              # default: records are only counted
//! out_of_orderness = "5s"       # the watermark stays this far behind (default 0s)
//! allowed_lateness = "0s"       # late records within it update their window (default 0s)
//! idle_timeout = "10s"          # an idle partition's watermark follows the clock (default 10s)
//! ```

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};
use streamvisor_actors::Operation;
use streamvisor_actors::OverflowStrategy;
use streamvisor_actors::ThrottleSettings;
use streamvisor_actors::WindowRecipe;
use streamvisor_actors::{FieldPath, Predicate, Projection};
use streamvisor_actors::{WindowKind, WindowSettings};

use super::field::{optional_duration, Invalid};

/// The idle timeout of a window stage unless its table says otherwise.
pub(super) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// `[stages.<name>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// The source or stage it reads.
    pub inputs: Vec<String>,
    /// `passthrough`, `filter`, `project`, `flat_map`, `key_by`, `window`, `throttle`,
    /// `grouped_within` or `buffer`.
    pub op: String,
    /// How its consumers share its output when it has several: `broadcast` (default),
    /// `balance` or `partition_by_key` (by Kafka key).
    pub fan_out: Option<String>,
    /// `filter`: `{ field = "...", <comparison> = <value> }`.
    #[serde(rename = "where")]
    pub condition: Option<Map<String, Value>>,
    /// `project`: the fields kept.
    pub fields: Option<Vec<String>>,
    /// `flat_map`: the JSON array field whose elements become the records.
    pub field: Option<String>,
    /// `window`: `tumbling`, `sliding` or `session`.
    pub window: Option<String>,
    /// `window`: a tumbling or sliding window's length.
    #[serde(default, deserialize_with = "optional_duration")]
    pub size: Option<Duration>,
    /// `window`: how far a sliding window moves.
    #[serde(default, deserialize_with = "optional_duration")]
    pub slide: Option<Duration>,
    /// `window`: the silence that ends a session.
    #[serde(default, deserialize_with = "optional_duration")]
    pub gap: Option<Duration>,
    /// `window`: the key field (default: the Kafka key); `key_by`: the new key's field.
    pub key: Option<String>,
    /// `window`: the event-time field, in milliseconds (default: the Kafka timestamp).
    pub time: Option<String>,
    /// `window`: the aggregated field (default: count only).
    pub value: Option<String>,
    /// `window`: how far behind the largest event time the watermark stays.
    #[serde(default, deserialize_with = "optional_duration")]
    pub out_of_orderness: Option<Duration>,
    /// `window`: how long after its end a window takes late records.
    #[serde(default, deserialize_with = "optional_duration")]
    pub allowed_lateness: Option<Duration>,
    /// `window`: after this long without records the watermark follows the clock.
    #[serde(default, deserialize_with = "optional_duration")]
    pub idle_timeout: Option<Duration>,
    /// `throttle`: records let through per `per`.
    pub rate: Option<u32>,
    /// `throttle`: the period of `rate` (default 1 s).
    #[serde(default, deserialize_with = "optional_duration")]
    pub per: Option<Duration>,
    /// `throttle`: the most records let through at once (default: `rate`).
    pub burst: Option<u32>,
    /// `grouped_within`: records per group, at most.
    pub max_records: Option<usize>,
    /// `grouped_within`: how long a group waits for more records.
    #[serde(default, deserialize_with = "optional_duration")]
    pub within: Option<Duration>,
    /// `buffer`: batches held ahead of downstream demand.
    pub batches: Option<usize>,
    /// `buffer`: `backpressure` (default), `drop_head`, `drop_tail`, `drop_new` or `fail`.
    pub overflow: Option<String>,
}

impl StageConfig {
    /// The fields set, by name, for the check against the operator.
    fn set_fields(&self) -> [(&'static str, bool); 20] {
        [
            ("where", self.condition.is_some()),
            ("fields", self.fields.is_some()),
            ("field", self.field.is_some()),
            ("window", self.window.is_some()),
            ("size", self.size.is_some()),
            ("slide", self.slide.is_some()),
            ("gap", self.gap.is_some()),
            ("key", self.key.is_some()),
            ("time", self.time.is_some()),
            ("value", self.value.is_some()),
            ("out_of_orderness", self.out_of_orderness.is_some()),
            ("allowed_lateness", self.allowed_lateness.is_some()),
            ("idle_timeout", self.idle_timeout.is_some()),
            ("rate", self.rate.is_some()),
            ("per", self.per.is_some()),
            ("burst", self.burst.is_some()),
            ("max_records", self.max_records.is_some()),
            ("within", self.within.is_some()),
            ("batches", self.batches.is_some()),
            ("overflow", self.overflow.is_some()),
        ]
    }

    /// Whether this stage holds records in windows.
    pub fn is_window(&self) -> bool {
        self.op == "window"
    }

    /// The operation, or the field at fault (`table` is `stages.<name>`) and why.
    pub fn operation(&self, table: &str) -> Result<Operation, Invalid> {
        let bad = |key: &str, why: String| (format!("{table}.{key}"), why);
        let allowed: &[&str] = match self.op.as_str() {
            "passthrough" => &[],
            "filter" => &["where"],
            "project" => &["fields"],
            "flat_map" => &["field"],
            "key_by" => &["key"],
            "throttle" => &["rate", "per", "burst"],
            "grouped_within" => &["max_records", "within"],
            "buffer" => &["batches", "overflow"],
            "window" => &[
                "window",
                "size",
                "slide",
                "gap",
                "key",
                "time",
                "value",
                "out_of_orderness",
                "allowed_lateness",
                "idle_timeout",
            ],
            other => {
                return Err(bad(
                    "op",
                    format!(
                        "{other:?}: expected \"passthrough\", \"filter\", \"project\", \"flat_map\", \
                         \"key_by\", \"window\", \"throttle\", \"grouped_within\" or \"buffer\" (other \
                         operators are written in Rust with the builder)"
                    ),
                ))
            }
        };
        for (field, set) in self.set_fields() {
            if set && !allowed.contains(&field) {
                return Err(bad(
                    field,
                    format!("the {} operator takes no `{field}`", self.op),
                ));
            }
        }
        if let Some(fan_out) = &self.fan_out {
            super::field::parse_fan_out(fan_out).map_err(|why| bad("fan_out", why))?;
        }
        match self.op.as_str() {
            "filter" => {
                let condition = self
                    .condition
                    .as_ref()
                    .ok_or_else(|| bad("where", "a filter needs a condition".to_owned()))?;
                let predicate = Predicate::from_table(condition)
                    .map_err(|error| bad("where", error.to_string()))?;
                Ok(Operation::Filter(Arc::new(move |record| {
                    serde_json::from_slice::<Value>(record.value)
                        .is_ok_and(|value| predicate.matches(&value))
                })))
            }
            "project" => {
                let fields = self
                    .fields
                    .as_ref()
                    .ok_or_else(|| bad("fields", "a projection needs fields".to_owned()))?;
                let projection = Projection::parse(fields.iter().map(String::as_str))
                    .map_err(|error| bad("fields", error.to_string()))?;
                Ok(Operation::Map(Arc::new(move |record, out| {
                    let value = serde_json::from_slice::<Value>(record.value)
                        .map_err(|error| format!("project: the record is not JSON: {error}"))?;
                    serde_json::to_writer(out, &projection.apply(&value))
                        .map_err(|error| format!("project: {error}"))
                })))
            }
            "flat_map" => {
                let path = self
                    .field
                    .as_deref()
                    .ok_or_else(|| bad("field", "flat_map needs the array's field".to_owned()))
                    .and_then(|path| {
                        FieldPath::parse(path).map_err(|error| bad("field", error.to_string()))
                    })?;
                Ok(Operation::FlatMap(Arc::new(move |record, pieces| {
                    let value: Value = serde_json::from_slice(record.value)
                        .map_err(|error| format!("flat_map: the record is not JSON: {error}"))?;
                    let Some(Value::Array(elements)) = path.get(&value) else {
                        return Err(format!(
                            "flat_map: field `{path}` is missing or not an array"
                        ));
                    };
                    for element in elements {
                        pieces
                            .emit_written(|out| serde_json::to_writer(out, element))
                            .map_err(|error| format!("flat_map: {error}"))?;
                    }
                    Ok(())
                })))
            }
            "key_by" => {
                let path = self
                    .key
                    .as_deref()
                    .ok_or_else(|| bad("key", "key_by needs the key's field".to_owned()))
                    .and_then(|path| {
                        FieldPath::parse(path).map_err(|error| bad("key", error.to_string()))
                    })?;
                Ok(Operation::KeyBy(Arc::new(move |record, out| {
                    let value: Value = serde_json::from_slice(record.value)
                        .map_err(|error| format!("key_by: the record is not JSON: {error}"))?;
                    if crate::actors::write_key(&value, &path, out) {
                        Ok(())
                    } else {
                        Err(format!(
                            "key_by: key field `{path}` is missing or neither a string nor a number"
                        ))
                    }
                })))
            }
            "throttle" => {
                let rate = self
                    .rate
                    .ok_or_else(|| bad("rate", "a throttle needs a rate".to_owned()))?;
                let settings = ThrottleSettings {
                    rate,
                    per: self.per.unwrap_or(Duration::from_secs(1)),
                    burst: self.burst.unwrap_or(rate),
                };
                Ok(Operation::Throttle(settings))
            }
            "grouped_within" => {
                let max_records = self.max_records.ok_or_else(|| {
                    bad("max_records", "a grouping needs its group size".to_owned())
                })?;
                let within = self.within.ok_or_else(|| {
                    bad("within", "a grouping needs how long it waits".to_owned())
                })?;
                Ok(Operation::GroupedWithin {
                    max_records,
                    within,
                })
            }
            "buffer" => {
                let batches = self.batches.ok_or_else(|| {
                    bad("batches", "a buffer needs its size in batches".to_owned())
                })?;
                let strategy = match self.overflow.as_deref() {
                    None => OverflowStrategy::Backpressure,
                    Some(text) => text
                        .parse::<OverflowStrategy>()
                        .map_err(|error| bad("overflow", error.to_string()))?,
                };
                Ok(Operation::Buffer { batches, strategy })
            }
            "window" => self
                .window_recipe(table)
                .map(|recipe| Operation::Window(Box::new(recipe))),
            _ => Ok(Operation::Passthrough),
        }
    }

    fn window_recipe(&self, table: &str) -> Result<WindowRecipe, Invalid> {
        let bad = |key: &str, why: String| (format!("{table}.{key}"), why);
        let need = |key: &str, value: Option<Duration>, kind: &str| {
            value.ok_or_else(|| bad(key, format!("a {kind} window needs `{key}`")))
        };
        let kind = match self.window.as_deref() {
            Some("tumbling") => {
                self.only(table, &["slide", "gap"], "tumbling")?;
                WindowKind::Tumbling {
                    size: need("size", self.size, "tumbling")?,
                }
            }
            Some("sliding") => {
                self.only(table, &["gap"], "sliding")?;
                WindowKind::Sliding {
                    size: need("size", self.size, "sliding")?,
                    slide: need("slide", self.slide, "sliding")?,
                }
            }
            Some("session") => {
                self.only(table, &["size", "slide"], "session")?;
                WindowKind::Session {
                    gap: need("gap", self.gap, "session")?,
                }
            }
            other => {
                return Err(bad(
                    "window",
                    format!("{other:?}: expected \"tumbling\", \"sliding\" or \"session\""),
                ))
            }
        };
        let settings = WindowSettings {
            kind,
            out_of_orderness: self.out_of_orderness.unwrap_or(Duration::ZERO),
            allowed_lateness: self.allowed_lateness.unwrap_or(Duration::ZERO),
            idle_timeout: Some(self.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT)),
        };
        let path = |key: &str, value: &Option<String>| -> Result<Option<FieldPath>, Invalid> {
            value
                .as_deref()
                .map(FieldPath::parse)
                .transpose()
                .map_err(|error| bad(key, error.to_string()))
        };
        Ok(WindowRecipe {
            settings,
            key: path("key", &self.key)?,
            time: path("time", &self.time)?,
            value: path("value", &self.value)?,
        })
    }

    /// Refuses `fields` that a `kind` window does not take.
    fn only(&self, table: &str, refused: &[&str], kind: &str) -> Result<(), Invalid> {
        for (field, set) in self.set_fields() {
            if set && refused.contains(&field) {
                return Err((
                    format!("{table}.{field}"),
                    format!("a {kind} window takes no `{field}`"),
                ));
            }
        }
        Ok(())
    }
}
