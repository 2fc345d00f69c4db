//! Integration tests of the root crate, one module per area (one test binary: each links actix
//! and rdkafka again), sharing one Apache Kafka broker.
#![allow(clippy::print_stdout)]

mod broker_outage;
mod chaos;
mod cli;
mod embedding;
mod exactly_once;
mod exactly_once_embedded;
mod exactly_once_gap;
mod examples;
mod http_routes;
mod isolation;
mod monitoring;
mod program_accounting;
mod program_backpressure;
mod program_broadcast;
mod program_chaos;
mod program_crash;
mod program_embedded_backlog;
mod program_ingest;
mod program_ingest_limits;
mod program_kafka_sink;
mod program_memory;
mod program_pacing;
mod program_postgres;
mod program_rejections;
mod program_retention;
mod program_scale;
mod program_windows;
mod runtime_embedded;
mod runtime_graph;
mod sink_outage;
mod supervision_facade;
mod support;

/// Shows the runtime's warnings and errors in the output of a failing test (the test harness
/// captures them per test); `STREAMVISOR_TEST_LOG` sets another filter (`info`, ...).
pub fn show_warnings() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let filter = std::env::var("STREAMVISOR_TEST_LOG")
            .unwrap_or_else(|_| "warn,librdkafka=error".to_owned());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    });
}

/// Silences the panic hook for the panics kills cause on purpose.
pub fn quiet_intended_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let text = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !text.starts_with("killed by request") {
                default(info);
            }
        }));
    });
}
