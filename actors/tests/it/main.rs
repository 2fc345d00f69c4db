//! Integration tests of the stage actors, one module per area (one test binary: each links
//! rdkafka and actix again).
#![allow(clippy::print_stdout)]

mod dead_letters;
mod embedded_pipeline;
mod embedded_transactions;
/// The root crate's tests' reader of sink files being written, shared rather than copied.
#[path = "../../../tests/it/support/lines.rs"]
mod lines;
/// The root crate's tests' one way to wait, shared rather than copied.
#[path = "../../../tests/it/support/wait.rs"]
#[allow(dead_code)]
mod wait;

use std::sync::OnceLock;

use metrics_util::debugging::{DebuggingRecorder, Snapshotter};

/// This test binary's metrics recorder (a process of its own: the recorder is process-global).
pub fn metrics() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("the only recorder of this binary");
        streamvisor_actors::metrics::describe();
        snapshotter
    })
}

/// One snapshot of every metric (taking it resets the recorder's counters: take one, read all).
pub type MetricsSnapshot = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    metrics_util::debugging::DebugValue,
)>;

/// The value of a counter or gauge in `snapshot` whose labels include all of `labels`.
pub fn metric_value(
    snapshot: &MetricsSnapshot,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    use metrics_util::debugging::DebugValue;
    snapshot.iter().find_map(|(key, _, _, value)| {
        let key = key.key();
        let matches = key.name() == name
            && labels.iter().all(|(label, wanted)| {
                key.labels()
                    .any(|l| l.key() == *label && l.value() == *wanted)
            });
        match (matches, value) {
            (true, DebugValue::Counter(count)) => Some(*count as f64),
            (true, DebugValue::Gauge(gauge)) => Some(gauge.into_inner()),
            _ => None,
        }
    })
}
