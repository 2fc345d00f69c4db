//! The Prometheus exporter (metrics-exporter-prometheus, without its own HTTP listener or push
//! gateway): installed as the process's `metrics` recorder by the CLI, rendered by `GET /metrics`.
//! Only this crate depends on it; the actors crate emits through the `metrics` facade.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use streamvisor_actors::metrics::{LATENCY_BUCKETS, STAGE_LATENCY, STAGE_LATENCY_BUCKETS};
use thiserror::Error;

/// The exporter could not be installed.
#[derive(Debug, Error)]
pub enum ExporterError {
    /// The histogram buckets were refused.
    #[error("the Prometheus exporter refused its settings: {0}")]
    Build(String),
    /// Another `metrics` recorder is installed in this process.
    #[error("a metrics recorder is already installed in this process: {0}")]
    AlreadyInstalled(String),
}

/// The exporter's settings: DESIGN.md's explicit buckets (stage latencies get finer ones). A
/// host installing its own Prometheus recorder for an embedded runtime should start from this,
/// or the dashboards' histogram panels find no `_bucket` series.
pub fn builder() -> Result<PrometheusBuilder, ExporterError> {
    let build =
        |error: metrics_exporter_prometheus::BuildError| ExporterError::Build(error.to_string());
    PrometheusBuilder::new()
        .set_buckets(LATENCY_BUCKETS)
        .map_err(build)?
        .set_buckets_for_metric(
            Matcher::Full(STAGE_LATENCY.to_owned()),
            STAGE_LATENCY_BUCKETS,
        )
        .map_err(build)
}

/// Installs the exporter as the global recorder (histograms with DESIGN.md's explicit buckets)
/// and returns the handle that renders it.
pub fn install() -> Result<PrometheusHandle, ExporterError> {
    let recorder = builder()?.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|error| ExporterError::AlreadyInstalled(error.to_string()))?;
    Ok(handle)
}

/// Installs the exporter unless the process already has a `metrics` recorder (an embedding
/// host's): then metrics go to that one and none is returned.
pub fn install_unless_present() -> Result<Option<PrometheusHandle>, ExporterError> {
    match install() {
        Ok(handle) => Ok(Some(handle)),
        Err(ExporterError::AlreadyInstalled(why)) => {
            tracing::info!(%why, "using the metrics recorder already installed in this process");
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_installed_recorder_is_used_not_replaced() {
        // Whatever ran before, a recorder is installed after this call.
        let _ = install_unless_present().expect("the exporter builds");
        assert!(matches!(install_unless_present(), Ok(None)));
        assert!(matches!(install(), Err(ExporterError::AlreadyInstalled(_))));
    }
}
