//! The figures `streamvisor run` shows: a progress line on a terminal, once a second, and a
//! summary at exit. They are read from the process's own Prometheus exposition (what `/metrics`
//! serves), so the line and the dashboards never disagree.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusHandle;
use streamvisor::actors::metrics as names;

/// Sums over every series of each metric.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Figures {
    /// Records read from Kafka.
    pub records_in: f64,
    /// Records written by sinks.
    pub records_out: f64,
    /// Committed offsets, summed over partitions.
    pub committed: f64,
    /// Consumer lag, summed over partitions.
    pub lag: f64,
    /// Actor restarts.
    pub restarts: f64,
    /// Records sent to the dead letters.
    pub dead_letters: f64,
}

impl Figures {
    /// Reads the figures from a Prometheus text exposition.
    pub(crate) fn from_exposition(text: &str) -> Self {
        let mut figures = Figures::default();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let name = series.split('{').next().unwrap_or_default();
            let slot = match name {
                names::RECORDS_IN => &mut figures.records_in,
                names::RECORDS_OUT => &mut figures.records_out,
                names::COMMITTED_OFFSET => &mut figures.committed,
                names::CONSUMER_LAG => &mut figures.lag,
                names::ACTOR_RESTARTS => &mut figures.restarts,
                names::DEAD_LETTERS => &mut figures.dead_letters,
                _ => continue,
            };
            *slot += value;
        }
        figures
    }

    /// `in=… out=… committed=… lag=… restarts=… dead_letters=…`.
    pub(crate) fn line(&self) -> String {
        format!(
            "in={} out={} committed={} lag={} restarts={} dead_letters={}",
            self.records_in,
            self.records_out,
            self.committed,
            self.lag,
            self.restarts,
            self.dead_letters
        )
    }
}

/// Shows the progress line on stderr once a second while stderr is a terminal (forever: the
/// caller drops the task to stop it).
pub(crate) async fn show(metrics: PrometheusHandle) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    let began = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let figures = Figures::from_exposition(&metrics.render());
        let mut stderr = std::io::stderr().lock();
        let _ = write!(
            stderr,
            "\r\x1b[2K[{:>5}s] {}",
            began.elapsed().as_secs(),
            figures.line()
        );
        let _ = stderr.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::Figures;

    #[test]
    fn sums_every_series_of_each_metric() {
        let text = "\
# HELP streamvisor_records_in_total Records read.
# TYPE streamvisor_records_in_total counter
streamvisor_records_in_total{pipeline=\"p\",source=\"a\"} 10
streamvisor_records_in_total{pipeline=\"p\",source=\"b\"} 5
streamvisor_records_out_total{pipeline=\"p\",sink=\"out\"} 12
streamvisor_kafka_committed_offset{partition=\"0\"} 7
streamvisor_kafka_committed_offset{partition=\"1\"} 3
streamvisor_kafka_consumer_lag_records{partition=\"1\"} 4
streamvisor_actor_restarts_total{kind=\"sink\"} 2
streamvisor_dead_letters_total 1
streamvisor_sink_write_seconds_bucket{le=\"0.5\"} 99
";
        let figures = Figures::from_exposition(text);
        assert_eq!(
            figures,
            Figures {
                records_in: 15.0,
                records_out: 12.0,
                committed: 10.0,
                lag: 4.0,
                restarts: 2.0,
                dead_letters: 1.0,
            }
        );
        assert_eq!(
            figures.line(),
            "in=15 out=12 committed=10 lag=4 restarts=2 dead_letters=1"
        );
    }
}
