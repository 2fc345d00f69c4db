//! [`Operation`]: what a stage does, and the types of the user functions it runs.

use std::sync::Arc;

use crate::record::RecordRef;
use crate::stage::throttle::ThrottleSettings;
use crate::stage::window::WindowRecipe;

/// A map over record values: writes the new value of `record` into `out` (cleared before each
/// call), or says why it cannot (the record goes to the dead letters with the reason).
pub type MapFn = dyn Fn(&RecordRef<'_>, &mut Vec<u8>) -> Result<(), String> + Send + Sync;

/// A filter: true keeps the record.
pub type FilterFn = dyn Fn(&RecordRef<'_>) -> bool + Send + Sync;

/// A key function: writes the record's new key into `out` (cleared before each call), or says
/// why the record has none (it goes to the dead letters).
pub type KeyFn = dyn Fn(&RecordRef<'_>, &mut Vec<u8>) -> Result<(), String> + Send + Sync;

/// What a stage does to each record.
#[derive(Clone)]
pub enum Operation {
    /// Records go on unchanged.
    Passthrough,
    /// Each value is replaced by the function's output.
    Map(Arc<MapFn>),
    /// Records the function refuses are dropped (and acknowledged).
    Filter(Arc<FilterFn>),
    /// Each record becomes the zero or more records the function emits (see
    /// [`flat_map`](crate::stage::flat_map)).
    FlatMap(Arc<crate::stage::flat_map::FlatMapFn>),
    /// Each record's Kafka key is replaced by the function's output (a fan-out by key after it
    /// then sends each key to one consumer).
    KeyBy(Arc<KeyFn>),
    /// Keyed aggregation in windows over event time.
    Window(Box<WindowRecipe>),
    /// Each record's new value from a future, `parallelism` at a time, in order or not.
    MapAsync {
        /// The function.
        function: Arc<crate::stage::map_async::AsyncMapFn>,
        /// Futures in flight, at most.
        parallelism: usize,
        /// Results in input order (else as they complete).
        ordered: bool,
    },
    /// Batches go on at a rate (a token bucket).
    Throttle(ThrottleSettings),
    /// Batches taken ahead of downstream demand, up to `batches`, then the overflow strategy.
    Buffer {
        /// Batches held, at most.
        batches: usize,
        /// What to do when full.
        strategy: crate::operators::buffer::OverflowStrategy,
    },
    /// Records regrouped into batches of `max_records`, or what came `within` of a group's first.
    GroupedWithin {
        /// Records per group, at most.
        max_records: usize,
        /// How long a group waits for more.
        within: std::time::Duration,
    },
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Operation::Passthrough => f.write_str("Passthrough"),
            Operation::Map(_) => f.write_str("Map"),
            Operation::Filter(_) => f.write_str("Filter"),
            Operation::FlatMap(_) => f.write_str("FlatMap"),
            Operation::KeyBy(_) => f.write_str("KeyBy"),
            Operation::Window(recipe) => f.debug_tuple("Window").field(recipe).finish(),
            Operation::Throttle(settings) => f.debug_tuple("Throttle").field(settings).finish(),
            Operation::MapAsync {
                parallelism,
                ordered,
                ..
            } => f
                .debug_struct("MapAsync")
                .field("parallelism", parallelism)
                .field("ordered", ordered)
                .finish_non_exhaustive(),
            Operation::Buffer { batches, strategy } => f
                .debug_struct("Buffer")
                .field("batches", batches)
                .field("strategy", strategy)
                .finish(),
            Operation::GroupedWithin {
                max_records,
                within,
            } => f
                .debug_struct("GroupedWithin")
                .field("max_records", max_records)
                .field("within", within)
                .finish(),
        }
    }
}
