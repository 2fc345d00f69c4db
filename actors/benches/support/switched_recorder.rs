//! A `metrics` recorder that can be switched on and off within one process: while on, the
//! handles it makes are the Prometheus exporter's; while off, they are no-ops. Handles are made
//! when actors start, so a run's metrics are on or off as the switch was when its actors
//! started. (The global recorder can be installed once per process; this lets one benchmark run
//! measure both.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

/// Turns the installed recorder on or off, and renders what it recorded.
#[derive(Clone)]
pub(crate) struct MetricsSwitch {
    on: Arc<AtomicBool>,
    handle: PrometheusHandle,
}

impl MetricsSwitch {
    /// Installs the switched recorder (off) as the global recorder, once.
    pub(crate) fn install() -> MetricsSwitch {
        static SWITCH: OnceLock<MetricsSwitch> = OnceLock::new();
        SWITCH
            .get_or_init(|| {
                // As the root crate's exporter builds it.
                let recorder = PrometheusBuilder::new()
                    .set_buckets(streamvisor_actors::metrics::LATENCY_BUCKETS)
                    .unwrap()
                    .set_buckets_for_metric(
                        Matcher::Full(streamvisor_actors::metrics::STAGE_LATENCY.to_owned()),
                        streamvisor_actors::metrics::STAGE_LATENCY_BUCKETS,
                    )
                    .unwrap()
                    .build_recorder();
                let switch = MetricsSwitch {
                    on: Arc::new(AtomicBool::new(false)),
                    handle: recorder.handle(),
                };
                metrics::set_global_recorder(Switched {
                    on: Arc::clone(&switch.on),
                    inner: recorder,
                })
                .unwrap();
                streamvisor_actors::metrics::describe();
                switch
            })
            .clone()
    }

    /// Handles made from now on record (true) or do nothing (false).
    pub(crate) fn set(&self, on: bool) {
        self.on.store(on, Ordering::SeqCst);
    }

    /// The exposition text of what was recorded.
    pub(crate) fn render(&self) -> String {
        self.handle.render()
    }
}

struct Switched {
    on: Arc<AtomicBool>,
    inner: PrometheusRecorder,
}

impl Switched {
    fn on(&self) -> bool {
        self.on.load(Ordering::SeqCst)
    }
}

impl Recorder for Switched {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        if self.on() {
            self.inner.register_counter(key, metadata)
        } else {
            Counter::noop()
        }
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        if self.on() {
            self.inner.register_gauge(key, metadata)
        } else {
            Gauge::noop()
        }
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        if self.on() {
            self.inner.register_histogram(key, metadata)
        } else {
            Histogram::noop()
        }
    }
}
