//! `[sinks.<name>]`: one table for every kind of sink, each field checked against the kind
//! (a field of another kind is an error naming it), and turned into the actors' [`SinkTarget`].
//!
//! ```toml
//! [sinks.out]                  # the JSON Lines file of DESIGN.md
//! inputs = ["pass"]
//! kind = "file"
//! path = "out/events.jsonl"
//!
//! [sinks.archive]              # opt-in: rolled-over files, by date and partition
//! inputs = ["pass"]
//! kind = "file"
//! path = "out/archive"         # a folder with this layout
//! format = "msgpack"           # jsonl (default) | msgpack
//! layout = "date-partition"    # single (default) | date-partition
//! rotate_bytes = 134217728     # roll over at 128 MiB
//! rotate_interval = "1h"       # or after an hour
//!
//! [sinks.events]               # a Kafka topic (at-least-once, or exactly once)
//! inputs = ["pass"]
//! kind = "kafka"
//! topic = "events-out"
//! exactly_once = true          # transactions with the consumed offsets
//! transaction_interval = "100ms"
//! [sinks.events.properties]    # producer properties, added to [kafka.properties]
//! "linger.ms" = "5"
//!
//! [sinks.nowhere]              # acknowledges and keeps nothing
//! inputs = ["pass"]
//! kind = "discard"
//!
//! [sinks.db]                   # a PostgreSQL table
//! inputs = ["pass"]
//! kind = "postgres"
//! url = "host=127.0.0.1 port=5432 user=streamvisor dbname=streamvisor"
//! password_file = "/run/secrets/pg"   # or the PGPASSWORD environment variable
//! table = "events"
//! create_table = true          # the layout of the docs, when missing
//! dedupe = "origin"            # origin (default) | key | none
//! max_rows = 5000              # records per transaction
//! linger = "5ms"               # wait for more before writing fewer
//! write_timeout = "60s"        # a write taking longer is retried (a refused write's
//!                              # row-by-row pass gets 50 ms a row, at least this)
//! retry = { min = "100ms", max = "5s", factor = 2.0 }
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use streamvisor_actors::supervision::Backoff;
use streamvisor_actors::KafkaSinkSettings;
use streamvisor_actors::SinkTarget;
use streamvisor_actors::{default_postgres_retry, Dedupe, PostgresSettings};

use streamvisor_actors::{FileFormat, FileLayout, RollingSettings};

use super::field::{optional_duration, Invalid};

fn file_format(name: &str) -> Option<FileFormat> {
    match name {
        "jsonl" => Some(FileFormat::JsonLines),
        "msgpack" => Some(FileFormat::MessagePack),
        _ => None,
    }
}

fn file_layout(name: &str) -> Option<FileLayout> {
    match name {
        "single" => Some(FileLayout::Single),
        "date-partition" => Some(FileLayout::DatePartition),
        _ => None,
    }
}

/// `[sinks.<name>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// The source or stage it reads.
    pub inputs: Vec<String>,
    /// `"file"` or `"postgres"`.
    pub kind: String,
    /// file: the JSON Lines file.
    pub path: Option<PathBuf>,
    /// file: `jsonl` (default) or `msgpack`.
    pub format: Option<String>,
    /// file: `single` (default) or `date-partition` (`path` is then a folder).
    pub layout: Option<String>,
    /// file: roll a file over once it holds this many bytes.
    pub rotate_bytes: Option<u64>,
    /// file: roll a file over once it is this old.
    #[serde(default, deserialize_with = "optional_duration")]
    pub rotate_interval: Option<Duration>,
    /// file: a delay after each batch written: slows the sink on purpose (backpressure tests).
    #[serde(default, deserialize_with = "optional_duration")]
    pub delay_per_batch: Option<Duration>,
    /// file: how long after the start `delay_per_batch` applies (none: for the whole run).
    #[serde(default, deserialize_with = "optional_duration")]
    pub delay_for: Option<Duration>,
    /// postgres: the connection string (libpq `key=value` pairs or a `postgres://` URL).
    pub url: Option<String>,
    /// postgres: a file holding the password (else `PGPASSWORD`, else none).
    pub password_file: Option<PathBuf>,
    /// postgres: the table (`table` or `schema.table`).
    pub table: Option<String>,
    /// postgres: create the table when it is missing.
    pub create_table: Option<bool>,
    /// postgres: `origin` (default), `key` or `none`.
    pub dedupe: Option<String>,
    /// postgres: most records per transaction.
    pub max_rows: Option<usize>,
    /// postgres: how long to wait for more records before writing fewer than `max_rows`.
    #[serde(default, deserialize_with = "optional_duration")]
    pub linger: Option<Duration>,
    /// postgres: how long one write may take before it is retried.
    #[serde(default, deserialize_with = "optional_duration")]
    pub write_timeout: Option<Duration>,
    /// postgres: backoff between retries while the database is away.
    pub retry: Option<RetryConfig>,
    /// kafka: the output topic (created when missing, with the source's partition count).
    pub topic: Option<String>,
    /// kafka: librdkafka producer properties, added to `[kafka.properties]`.
    pub properties: Option<BTreeMap<String, String>>,
    /// kafka: write in transactions with the consumed offsets (read_committed readers see
    /// each record once).
    pub exactly_once: Option<bool>,
    /// kafka, exactly once: how long a transaction gathers records (default 100 ms).
    #[serde(default, deserialize_with = "optional_duration")]
    pub transaction_interval: Option<Duration>,
}

/// `retry = { min, max, factor }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// The first wait.
    #[serde(default, deserialize_with = "optional_duration")]
    pub min: Option<Duration>,
    /// The longest wait.
    #[serde(default, deserialize_with = "optional_duration")]
    pub max: Option<Duration>,
    /// Growth per failure.
    pub factor: Option<f64>,
}

impl RetryConfig {
    fn backoff(&self) -> Backoff {
        let defaults = default_postgres_retry();
        Backoff::retrying(
            self.min.unwrap_or(defaults.min),
            self.max.unwrap_or(defaults.max),
            self.factor.unwrap_or(defaults.factor),
        )
    }
}

impl SinkConfig {
    /// Checks the fields against the kind; `field` is the table's TOML path (`sinks.out`).
    pub(super) fn validate(&self, field: &str) -> Result<(), Invalid> {
        let bad = |name: &str, why: String| Err((format!("{field}.{name}"), why));
        let file_fields = [
            ("path", self.path.is_some()),
            ("format", self.format.is_some()),
            ("layout", self.layout.is_some()),
            ("rotate_bytes", self.rotate_bytes.is_some()),
            ("rotate_interval", self.rotate_interval.is_some()),
            ("delay_per_batch", self.delay_per_batch.is_some()),
            ("delay_for", self.delay_for.is_some()),
        ];
        let postgres_fields = [
            ("url", self.url.is_some()),
            ("password_file", self.password_file.is_some()),
            ("table", self.table.is_some()),
            ("create_table", self.create_table.is_some()),
            ("dedupe", self.dedupe.is_some()),
            ("max_rows", self.max_rows.is_some()),
            ("linger", self.linger.is_some()),
            ("write_timeout", self.write_timeout.is_some()),
            ("retry", self.retry.is_some()),
        ];
        type Fields<'a> = &'a [(&'a str, bool)];
        let kafka_fields = [
            ("topic", self.topic.is_some()),
            ("properties", self.properties.is_some()),
            ("exactly_once", self.exactly_once.is_some()),
            ("transaction_interval", self.transaction_interval.is_some()),
        ];
        let (own, required): (Fields<'_>, &[&str]) = match self.kind.as_str() {
            "file" => (&file_fields, &["path"]),
            "postgres" => (&postgres_fields, &["url", "table"]),
            "kafka" => (&kafka_fields, &["topic"]),
            "discard" => (&[], &[]),
            other => {
                return bad(
                    "kind",
                    format!("{other:?}: expected \"file\", \"postgres\", \"kafka\" or \"discard\""),
                )
            }
        };
        let foreign = file_fields
            .iter()
            .chain(&postgres_fields)
            .chain(&kafka_fields)
            .filter(|(name, _)| !own.iter().any(|(own, _)| own == name));
        if let Some((name, _)) = foreign.into_iter().find(|(_, set)| *set) {
            return bad(name, format!("not a setting of a {:?} sink", self.kind));
        }
        for name in required {
            if !own.iter().any(|(own, set)| own == name && *set) {
                return Err((
                    field.to_owned(),
                    format!("a {:?} sink needs `{name}`", self.kind),
                ));
            }
        }
        if self.kind == "file" {
            if let Some(format) = &self.format {
                if file_format(format).is_none() {
                    return bad(
                        "format",
                        format!("{format:?}: expected \"jsonl\" or \"msgpack\""),
                    );
                }
            }
            if let Some(layout) = &self.layout {
                if file_layout(layout).is_none() {
                    return bad(
                        "layout",
                        format!("{layout:?}: expected \"single\" or \"date-partition\""),
                    );
                }
            }
            if self.rotate_bytes == Some(0) {
                return bad("rotate_bytes", "must be at least 1".to_owned());
            }
            if self
                .rotate_interval
                .is_some_and(|interval| interval.is_zero())
            {
                return bad("rotate_interval", "must be above zero".to_owned());
            }
        }
        if self.kind == "postgres" {
            let settings = self.postgres_settings(None);
            if let Err(error) = settings.quoted_table() {
                return bad("table", error.to_string());
            }
            if let Some(dedupe) = &self.dedupe {
                if let Err(why) = dedupe.parse::<Dedupe>() {
                    return bad("dedupe", why);
                }
            }
            if settings.max_rows == 0 {
                return bad("max_rows", "must be at least 1".to_owned());
            }
            if settings.write_timeout.is_zero() {
                return bad("write_timeout", "must be longer than 0".to_owned());
            }
            let retry = settings.retry;
            if retry.min.is_zero()
                || retry.max < retry.min
                || !retry.factor.is_finite()
                || retry.factor < 1.0
            {
                return bad("retry", "needs 0 < min <= max and factor >= 1".to_owned());
            }
        }
        Ok(())
    }

    /// The PostgreSQL settings of a `postgres` sink (the password as given).
    fn postgres_settings(&self, password: Option<String>) -> PostgresSettings {
        let mut settings = PostgresSettings::new(
            self.url.clone().unwrap_or_default(),
            self.table.clone().unwrap_or_default(),
        );
        settings.password = password;
        settings.create_table = self.create_table.unwrap_or(false);
        settings.dedupe = self
            .dedupe
            .as_deref()
            .and_then(|dedupe| dedupe.parse().ok())
            .unwrap_or_default();
        settings.max_rows = self.max_rows.unwrap_or(settings.max_rows);
        settings.linger = self.linger.unwrap_or(settings.linger);
        settings.write_timeout = self.write_timeout.unwrap_or(settings.write_timeout);
        if let Some(retry) = &self.retry {
            settings.retry = retry.backoff();
        }
        settings
    }

    /// Where the sink writes, reading a password file when there is one.
    pub fn target(&self) -> Result<SinkTarget, String> {
        if self.kind != "postgres" {
            return Ok(self.target_unread());
        }
        let password = match &self.password_file {
            Some(file) => Some(
                std::fs::read_to_string(file)
                    .map_err(|error| {
                        format!("cannot read password_file {}: {error}", file.display())
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
            ),
            None => std::env::var("PGPASSWORD").ok(),
        };
        Ok(SinkTarget::Postgres(self.postgres_settings(password)))
    }

    /// Where the sink writes, a PostgreSQL sink without its password (to check the pipeline
    /// before anything is read or started).
    pub(super) fn target_unread(&self) -> SinkTarget {
        match self.kind.as_str() {
            "discard" => SinkTarget::Discard,
            "postgres" => SinkTarget::Postgres(self.postgres_settings(None)),
            "kafka" => {
                let settings = KafkaSinkSettings {
                    brokers: String::new(),
                    topic: self.topic.clone().unwrap_or_default(),
                    properties: self.properties.clone().unwrap_or_default(),
                };
                if self.exactly_once == Some(true) {
                    SinkTarget::KafkaExactlyOnce {
                        settings,
                        max_records: 10_000,
                        interval: self
                            .transaction_interval
                            .unwrap_or(Duration::from_millis(100)),
                    }
                } else {
                    SinkTarget::Kafka(settings)
                }
            }
            _ => {
                let path = self.path.clone().unwrap_or_default();
                let format = self.format.as_deref().and_then(file_format);
                let layout = self.layout.as_deref().and_then(file_layout);
                let rolling = format.is_some_and(|format| format != FileFormat::JsonLines)
                    || layout.is_some_and(|layout| layout != FileLayout::Single)
                    || self.rotate_bytes.is_some()
                    || self.rotate_interval.is_some();
                if rolling {
                    SinkTarget::RollingFiles(RollingSettings {
                        path,
                        format: format.unwrap_or_default(),
                        layout: layout.unwrap_or_default(),
                        max_bytes: self.rotate_bytes,
                        max_age: self.rotate_interval,
                    })
                } else {
                    SinkTarget::File(path)
                }
            }
        }
    }
}
