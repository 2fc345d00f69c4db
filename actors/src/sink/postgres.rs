//! The PostgreSQL target of the PostgreSQL sink: its settings, the table layout, the one
//! statement that writes records (a multi-row INSERT over `unnest` arrays, inside a
//! transaction: durable when COMMIT returns), and how its errors are classed (retry in place,
//! reject the record, fail the actor).
//!
//! The table holds one row per record: `topic text, partition integer, "offset" bigint,
//! key text, value jsonb, timestamp_ms bigint`. The value is the payload as JSON when it is JSON,
//! else a JSON string, else `{"base64": ...}` (the file sink's encoding of DESIGN.md).
//! Deduplication (the upsert that makes replays harmless):
//! - [`Dedupe::Origin`] (default): primary key `(topic, partition, "offset")`; a replayed record
//!   is the same row, `ON CONFLICT DO NOTHING`.
//! - [`Dedupe::Key`]: primary key `key`, the latest record per key wins (a compacted table); a
//!   replay never moves a key back to an older offset of the same partition.
//! - [`Dedupe::None`]: plain inserts, no key; a replay after a failure may duplicate rows.

mod rows;

pub use rows::RowBuffers;

pub(crate) use rows::Rows;

use std::str::FromStr;
use std::time::Duration;

use streamvisor_supervision::Backoff;
use thiserror::Error;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls, Statement};

/// The PostgreSQL sink cannot use its database.
#[derive(Debug, Error)]
pub enum PostgresError {
    /// The connection string does not parse.
    #[error("bad PostgreSQL connection string: {why}")]
    Url {
        /// What is wrong.
        why: String,
    },
    /// The table name is not one or two plain identifiers.
    #[error("bad table name {0:?}: expected `table` or `schema.table`, letters, digits and '_'")]
    BadTable(String),
    /// Connecting failed (the server is away, or refused the credentials).
    #[error("could not connect to PostgreSQL: {why}")]
    Connect {
        /// The cause.
        why: String,
        /// A retry may cure it (the server is away or starting up), as opposed to wrong
        /// credentials or an unknown database.
        transient: bool,
    },
    /// A statement the sink needs failed (an unknown table, missing columns or unique index).
    #[error("could not {action}: {why}")]
    Statement {
        /// What was being done.
        action: &'static str,
        /// The database's error.
        why: String,
        /// A retry may cure it (the connection was lost on the way).
        transient: bool,
    },
}

impl PostgresError {
    pub(crate) fn connect(source: tokio_postgres::Error) -> Self {
        PostgresError::Connect {
            why: describe(&source),
            transient: classify(&source) == ErrorClass::Transient,
        }
    }

    pub(crate) fn statement(action: &'static str, source: tokio_postgres::Error) -> Self {
        PostgresError::Statement {
            action,
            why: describe(&source),
            transient: classify(&source) == ErrorClass::Transient,
        }
    }

    /// True when a retry may cure it (the server is away or starting), as opposed to wrong
    /// credentials, a missing table or a bad setting.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            PostgresError::Connect {
                transient: true,
                ..
            } | PostgresError::Statement {
                transient: true,
                ..
            }
        )
    }
}

/// Which key makes a replayed record land on its earlier row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Dedupe {
    /// `(topic, partition, "offset")`: each record once.
    #[default]
    Origin,
    /// The record's Kafka key: the latest record per key.
    Key,
    /// No dedupe: plain inserts (replays may duplicate).
    None,
}

impl FromStr for Dedupe {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "origin" => Ok(Dedupe::Origin),
            "key" => Ok(Dedupe::Key),
            "none" => Ok(Dedupe::None),
            other => Err(format!(
                "{other:?}: expected \"origin\", \"key\" or \"none\""
            )),
        }
    }
}

/// The default backoff between retries in place: 100 ms doubling to 5 s.
pub fn default_retry() -> Backoff {
    Backoff::retrying(Duration::from_millis(100), Duration::from_secs(5), 2.0)
}

/// Where and how the sink writes.
#[derive(Clone)]
pub struct PostgresSettings {
    /// The connection string (`host=... port=... user=... dbname=...` or `postgres://...`).
    pub url: String,
    /// The password, when not in the connection string (read from the environment or a file).
    pub password: Option<String>,
    /// The table, optionally schema-qualified (`schema.table`).
    pub table: String,
    /// Create the table (the layout above) when it is missing.
    pub create_table: bool,
    /// The dedupe key.
    pub dedupe: Dedupe,
    /// Most records per transaction.
    pub max_rows: usize,
    /// How long to wait for more records before writing fewer than `max_rows`.
    pub linger: Duration,
    /// Backoff between retries in place.
    pub retry: Backoff,
    /// How long a connection attempt may take.
    pub connect_timeout: Duration,
    /// How long a write (one transaction) may take before the connection counts as lost.
    pub write_timeout: Duration,
}

impl std::fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("table", &self.table)
            .field("create_table", &self.create_table)
            .field("dedupe", &self.dedupe)
            .field("max_rows", &self.max_rows)
            .field("linger", &self.linger)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl PostgresSettings {
    /// Settings with defaults for `url` and `table`.
    pub fn new(url: impl Into<String>, table: impl Into<String>) -> Self {
        PostgresSettings {
            url: url.into(),
            password: None,
            table: table.into(),
            create_table: false,
            dedupe: Dedupe::Origin,
            max_rows: 5000,
            linger: Duration::from_millis(5),
            retry: default_retry(),
            connect_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(60),
        }
    }

    /// The table name, quoted (`"schema"."table"`); an error when it is not one or two plain
    /// identifiers.
    pub fn quoted_table(&self) -> Result<String, PostgresError> {
        let parts: Vec<&str> = self.table.split('.').collect();
        let plain = |part: &&str| {
            let mut chars = part.chars();
            matches!(chars.next(), Some(first) if first.is_ascii_alphabetic() || first == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
                && part.len() <= 63
        };
        if parts.is_empty() || parts.len() > 2 || !parts.iter().all(plain) {
            return Err(PostgresError::BadTable(self.table.clone()));
        }
        Ok(parts
            .iter()
            .map(|part| format!("\"{part}\""))
            .collect::<Vec<_>>()
            .join("."))
    }

    /// `CREATE TABLE IF NOT EXISTS` for the layout and dedupe key.
    pub fn create_sql(&self) -> Result<String, PostgresError> {
        let table = self.quoted_table()?;
        let (key_null, primary) = match self.dedupe {
            Dedupe::Origin => ("", ", PRIMARY KEY (topic, partition, \"offset\")"),
            Dedupe::Key => (" NOT NULL", ", PRIMARY KEY (key)"),
            Dedupe::None => ("", ""),
        };
        Ok(format!(
            "CREATE TABLE IF NOT EXISTS {table} (topic text NOT NULL, partition integer NOT NULL, \
             \"offset\" bigint NOT NULL, key bytea{key_null}, value jsonb, timestamp_ms bigint{primary})"
        ))
    }

    /// The statement that writes rows given as six arrays (see [`Rows`]), its keys typed as the
    /// table's `key_column`.
    pub fn insert_sql(&self, key_column: KeyColumn) -> Result<String, PostgresError> {
        let key_type = match key_column {
            KeyColumn::Text => "text",
            KeyColumn::Bytea => "bytea",
        };
        let table = self.quoted_table()?;
        let conflict = match self.dedupe {
            Dedupe::Origin => " ON CONFLICT (topic, partition, \"offset\") DO NOTHING".to_owned(),
            Dedupe::Key => " ON CONFLICT (key) DO UPDATE SET topic = EXCLUDED.topic, \
                 partition = EXCLUDED.partition, \"offset\" = EXCLUDED.\"offset\", \
                 value = EXCLUDED.value, timestamp_ms = EXCLUDED.timestamp_ms \
                 WHERE target.topic <> EXCLUDED.topic OR target.partition <> EXCLUDED.partition \
                 OR target.\"offset\" <= EXCLUDED.\"offset\""
                .to_owned(),
            Dedupe::None => String::new(),
        };
        Ok(format!(
            "INSERT INTO {table} AS target (topic, partition, \"offset\", key, value, timestamp_ms) \
             SELECT r.topic, r.partition, r.\"offset\", r.key, r.value::jsonb, r.timestamp_ms \
             FROM unnest($1::text[], $2::int4[], $3::int8[], $4::{key_type}[], $5::text[], $6::int8[]) \
             AS r(topic, partition, \"offset\", key, value, timestamp_ms){conflict}"
        ))
    }

    fn config(&self) -> Result<Config, PostgresError> {
        let mut config = Config::from_str(&self.url).map_err(|source| PostgresError::Url {
            why: source.to_string(),
        })?;
        if let Some(password) = &self.password {
            config.password(password);
        }
        config.connect_timeout(self.connect_timeout);
        config.application_name("streamvisor");
        Ok(config)
    }
}

/// How a PostgreSQL error is handled (DESIGN.md's failure-or-retry rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorClass {
    /// The database is away or busy: retry in place with backoff, holding the records.
    Transient,
    /// The database refuses one record (a bad value, a constraint): dead letters.
    Record,
    /// Anything else: fail the actor (a fresh start, then escalation if it repeats).
    Fatal,
}

/// The class of `error`.
pub(crate) fn classify(error: &tokio_postgres::Error) -> ErrorClass {
    let Some(code) = error.code() else {
        // No SQLSTATE: the socket, a timeout or a closed connection may pass; a bad setting,
        // a refused authentication or a protocol error will not.
        let text = error.to_string();
        let away = error.is_closed()
            || [
                "error communicating with the server",
                "error connecting to server",
                "timeout waiting for server",
            ]
            .iter()
            .any(|prefix| text.starts_with(prefix));
        return if away {
            ErrorClass::Transient
        } else {
            ErrorClass::Fatal
        };
    };
    let class = &code.code()[..2];
    let transient = matches!(class, "08" | "53" | "58")
        || [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::LOCK_NOT_AVAILABLE,
            // A statement timeout, or a server that turned read-only (a failover).
            SqlState::QUERY_CANCELED,
            SqlState::READ_ONLY_SQL_TRANSACTION,
        ]
        .contains(code);
    if transient {
        ErrorClass::Transient
    } else if matches!(class, "22" | "23" | "54") || *code == SqlState::DATATYPE_MISMATCH {
        ErrorClass::Record
    } else {
        ErrorClass::Fatal
    }
}

/// The error's text as the database gave it (SQLSTATE, message, detail).
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!(
                "{} {}: {} ({detail})",
                db.severity(),
                db.code().code(),
                db.message()
            ),
            None => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        },
        None => error.to_string(),
    }
}

/// An open connection with the insert statement prepared.
pub struct Connection {
    client: Client,
    insert: Statement,
    key_column: KeyColumn,
    /// Resolves when the connection ends (the server went away, or the client was dropped).
    pub closed: tokio::sync::oneshot::Receiver<()>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects, creates the table when asked, and prepares the insert (which checks that the
    /// table exists with the layout's columns and the dedupe key's unique index). The
    /// connection's I/O runs on a task spawned on the current (local) runtime.
    pub async fn open(settings: &PostgresSettings) -> Result<Self, PostgresError> {
        let (client, connection) = settings
            .config()?
            .connect(NoTls)
            .await
            .map_err(PostgresError::connect)?;
        let (closed_tx, closed) = tokio::sync::oneshot::channel();
        tokio::task::spawn_local(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "PostgreSQL connection ended");
            }
            let _ = closed_tx.send(());
        });
        if settings.create_table {
            client
                .batch_execute(&settings.create_sql()?)
                .await
                .map_err(|source| PostgresError::statement("create the table", source))?;
        }
        let key_column = key_column(&client, &settings.quoted_table()?).await?;
        let insert = client
            .prepare(&settings.insert_sql(key_column)?)
            .await
            .map_err(|source| {
                PostgresError::statement("prepare the insert into the table", source)
            })?;
        // Planning resolves `ON CONFLICT` against the table's unique indexes: run the insert
        // once with no rows (and roll back) so that a missing dedupe index fails here.
        let mut client = client;
        let transaction = client
            .transaction()
            .await
            .map_err(|source| PostgresError::statement("begin a transaction", source))?;
        transaction
            .execute(&insert, &Rows::empty(key_column).params())
            .await
            .map_err(|source| PostgresError::statement("plan the insert into the table", source))?;
        transaction
            .rollback()
            .await
            .map_err(|source| PostgresError::statement("roll back the check", source))?;
        Ok(Connection {
            client,
            insert,
            key_column,
            closed,
        })
    }

    /// How the table holds keys.
    pub fn key_column(&self) -> KeyColumn {
        self.key_column
    }

    /// Writes `rows` in one transaction: `Ok` once COMMIT returned (durable).
    pub async fn write(&mut self, rows: &Rows<'_>) -> Result<(), tokio_postgres::Error> {
        let transaction = self.client.transaction().await?;
        transaction.execute(&self.insert, &rows.params()).await?;
        transaction.commit().await
    }

    /// [`Connection::write`] within `limit`: `None` when it took longer (the connection is
    /// suspect: drop it and retry; the transaction did not commit, or committed the same rows,
    /// which the retry writes again harmlessly under a dedupe key).
    pub async fn write_within(
        &mut self,
        rows: &Rows<'_>,
        limit: Duration,
    ) -> Option<Result<(), tokio_postgres::Error>> {
        tokio::time::timeout(limit, self.write(rows)).await.ok()
    }

    /// Writes `rows` one by one in one transaction, each under a savepoint: the rows the
    /// database rejects ([`ErrorClass::Record`]) are left out and returned (index, error);
    /// the others are durable once this returns `Ok`.
    pub async fn write_isolating(
        &mut self,
        rows: &Rows<'_>,
    ) -> Result<Vec<(usize, String)>, tokio_postgres::Error> {
        let mut rejected = Vec::new();
        let mut transaction = self.client.transaction().await?;
        for index in 0..rows.len() {
            let single = rows.single(index);
            let savepoint = transaction.savepoint("streamvisor_row").await?;
            match savepoint.execute(&self.insert, &single.params()).await {
                Ok(_) => savepoint.commit().await?,
                Err(error) if classify(&error) == ErrorClass::Record => {
                    rejected.push((index, describe(&error)));
                    savepoint.rollback().await?;
                }
                Err(error) => return Err(error),
            }
        }
        transaction.commit().await?;
        Ok(rejected)
    }

    /// True once the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

/// How a table's `key` column holds keys: `bytea` takes any key as it is (what
/// `create_table` makes); `text` (or `varchar`) takes keys that are UTF-8 without NUL bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyColumn {
    /// `text` or `character varying`.
    Text,
    /// `bytea`.
    #[default]
    Bytea,
}

/// The type of `table`'s `key` column (a table without one fails at the insert's prepare).
async fn key_column(
    client: &tokio_postgres::Client,
    table: &str,
) -> Result<KeyColumn, PostgresError> {
    let row = client
        .query_opt(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = to_regclass($1) AND attname = 'key' AND NOT attisdropped",
            &[&table],
        )
        .await
        .map_err(|source| PostgresError::statement("read the key column's type", source))?;
    let type_name: Option<String> = row.map(|row| row.get(0));
    Ok(match type_name.as_deref() {
        Some("bytea") | None => KeyColumn::Bytea,
        Some(_) => KeyColumn::Text,
    })
}

/// Checks `settings` against the database (connect, create when asked, prepare the insert):
/// what `streamvisor check` and the runtime's start report.
pub async fn check(settings: &PostgresSettings) -> Result<(), PostgresError> {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async { Connection::open(settings).await.map(drop) })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_by_its_factor_up_to_its_max() {
        let backoff = Backoff::retrying(Duration::from_millis(100), Duration::from_secs(1), 2.0);
        let delays: Vec<u128> = (1..=6).map(|n| backoff.delay(n).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn table_names_are_plain_identifiers_quoted() {
        let mut settings = PostgresSettings::new("host=x", "public.events_1");
        assert_eq!(
            settings.quoted_table().expect("valid"),
            "\"public\".\"events_1\""
        );
        for bad in ["", "a.b.c", "1abc", "x;drop", "a\"b", "a b"] {
            settings.table = bad.to_owned();
            assert!(settings.quoted_table().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_dedupe_key_decides_the_conflict_clause_and_primary_key() {
        let mut settings = PostgresSettings::new("host=x", "t");
        assert!(settings
            .insert_sql(KeyColumn::Bytea)
            .expect("sql")
            .ends_with("DO NOTHING"));
        assert!(settings
            .create_sql()
            .expect("sql")
            .contains("PRIMARY KEY (topic, partition, \"offset\")"));
        settings.dedupe = Dedupe::Key;
        assert!(settings
            .insert_sql(KeyColumn::Text)
            .expect("sql")
            .contains("ON CONFLICT (key) DO UPDATE"));
        assert!(settings
            .create_sql()
            .expect("sql")
            .contains("PRIMARY KEY (key)"));
        settings.dedupe = Dedupe::None;
        assert!(!settings
            .insert_sql(KeyColumn::Bytea)
            .expect("sql")
            .contains("ON CONFLICT"));
        assert!(!settings.create_sql().expect("sql").contains("PRIMARY KEY"));
        // Keys as bytes in a table made here; typed as the column says in the insert.
        assert!(settings.create_sql().expect("sql").contains("key bytea"));
        assert!(settings
            .insert_sql(KeyColumn::Text)
            .expect("sql")
            .contains("$4::text[]"));
        assert!(settings
            .insert_sql(KeyColumn::Bytea)
            .expect("sql")
            .contains("$4::bytea[]"));
    }
}
