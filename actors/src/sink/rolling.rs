//! The file sink grown up (opt-in): JSON Lines or MessagePack, files rolled over by size or
//! age, and a Hive-style layout by date and partition that Spark, Trino or DuckDB pick up:
//!
//! ```text
//! <folder>/date=2026-11-27/partition=3/part-1764230400000-0.jsonl      layout = "date-partition"
//! <folder>/<stem>-1764230400000-0.msgpack                              layout = "single" (rolled)
//! ```
//!
//! The date is the record's Kafka timestamp (UTC; the write time when it has none). Every batch
//! is written to each file it touches and fsynced (the files and any new folders) before the
//! write returns; a failed write is cut back off every file it touched. Files are never
//! appended to across runs: a run starts new files, after cutting a torn tail (a crash
//! mid-write) off the files already there.
//!
//! MessagePack files hold one map per record with the JSON Lines fields; the value is the
//! payload's JSON as MessagePack when it is JSON (parsed: this format allocates per record),
//! else a string, else binary.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::error::SinkError;
use crate::record::{Batch, RecordRef};
use crate::sink::json_lines::encode_line;

/// The encoding of a file sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FileFormat {
    /// JSON Lines (DESIGN.md's file sink lines).
    #[default]
    JsonLines,
    /// One MessagePack map per record.
    MessagePack,
}

impl FileFormat {
    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::JsonLines => "jsonl",
            FileFormat::MessagePack => "msgpack",
        }
    }
}

/// Where records go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FileLayout {
    /// One series of files next to the configured path.
    #[default]
    Single,
    /// `date=YYYY-MM-DD/partition=N/` folders under the configured path.
    DatePartition,
}

/// Settings of a rolling file sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollingSettings {
    /// A file path (single layout: the stem and folder of its files) or a folder.
    pub path: PathBuf,
    /// The encoding.
    pub format: FileFormat,
    /// The layout.
    pub layout: FileLayout,
    /// Roll a file over once it holds this many bytes.
    pub max_bytes: Option<u64>,
    /// Roll a file over once it is this old.
    pub max_age: Option<Duration>,
}

/// Which file a record goes to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum FileKey {
    Single,
    /// The UTC day (days since the Unix epoch) and the partition: no string per record.
    DatePartition {
        day: i64,
        partition: i32,
    },
}

struct OpenFile {
    path: PathBuf,
    file: File,
    len: u64,
    opened: Instant,
    /// When it was last written (the least recently written closes first).
    used: Instant,
}

/// Files kept open at once (a backfill over many dates must not run out of descriptors); a
/// closed file is complete (every write is fsynced), and its key gets a new file when written
/// to again.
const MAX_OPEN_FILES: usize = 64;

/// The most bytes a file's buffer keeps between writes.
const KEPT_BUFFER_BYTES: usize = 1 << 20;

/// Rolling files of one sink.
pub(crate) struct RollingFiles {
    settings: RollingSettings,
    open: HashMap<FileKey, OpenFile>,
    buffers: HashMap<FileKey, Vec<u8>>,
    sequence: u64,
}

impl std::fmt::Debug for RollingFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RollingFiles")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl RollingFiles {
    /// Prepares the sink's folder, cutting torn tails off the files already there.
    pub(crate) fn open(settings: RollingSettings) -> Result<Self, SinkError> {
        let root = root(&settings);
        std::fs::create_dir_all(&root)
            .map_err(|source| SinkError::io("create the folder", &root, source))?;
        repair_own_files(&settings, &root)?;
        Ok(RollingFiles {
            settings,
            open: HashMap::new(),
            buffers: HashMap::new(),
            sequence: 0,
        })
    }

    /// Appends every record of `batches` to its file and fsyncs each file touched: durable
    /// when this returns `Ok`. A failed write is cut back off every file it touched.
    pub(crate) fn write_batches(&mut self, batches: &[&Batch]) -> Result<(), SinkError> {
        // A file's buffer lives from one write to the next while the file is written to: those
        // the last write left empty are dropped (a day that passed, a partition that moved),
        // and a large one gives back what it grew to.
        self.buffers.retain(|_, buffer| !buffer.is_empty());
        for buffer in self.buffers.values_mut() {
            buffer.clear();
            buffer.shrink_to(KEPT_BUFFER_BYTES);
        }
        let now_ms = now_ms();
        for batch in batches {
            for record in batch.iter() {
                let key = match self.settings.layout {
                    FileLayout::Single => FileKey::Single,
                    FileLayout::DatePartition => FileKey::DatePartition {
                        day: record.timestamp_ms.unwrap_or(now_ms).div_euclid(MS_PER_DAY),
                        partition: batch.partition(),
                    },
                };
                let buffer = self.buffers.entry(key).or_default();
                encode(self.settings.format, buffer, batch, &record);
            }
        }
        let mut touched: Vec<(FileKey, u64)> = Vec::new();
        let keys: Vec<FileKey> = self
            .buffers
            .iter()
            .filter(|(_, buffer)| !buffer.is_empty())
            .map(|(key, _)| key.clone())
            .collect();
        let mut result = Ok(());
        for key in keys {
            if let Err(error) = self.roll_if_due(&key) {
                result = Err(error);
                break;
            }
            let (Some(open), Some(buffer)) = (self.open.get_mut(&key), self.buffers.get(&key))
            else {
                continue;
            };
            touched.push((key.clone(), open.len));
            open.used = Instant::now();
            let written = open
                .file
                .write_all(buffer)
                .and_then(|()| open.file.sync_data());
            match written {
                Ok(()) => open.len += buffer.len() as u64,
                Err(source) => {
                    result = Err(SinkError::io("write", &open.path, source));
                    break;
                }
            }
        }
        if result.is_err() {
            for (key, len) in touched {
                if let Some(open) = self.open.get_mut(&key) {
                    if let Err(error) = open.file.set_len(len) {
                        tracing::error!(path = %open.path.display(), %error, "could not cut a failed write back off");
                    }
                    open.len = len;
                }
            }
        }
        result
    }

    /// Opens `key`'s file when it has none, or rolls it over when it is full or old.
    fn roll_if_due(&mut self, key: &FileKey) -> Result<(), SinkError> {
        let due = match self.open.get(key) {
            None => true,
            Some(open) => {
                self.settings.max_bytes.is_some_and(|max| open.len >= max)
                    || self
                        .settings
                        .max_age
                        .is_some_and(|max| open.opened.elapsed() >= max)
            }
        };
        if !due {
            return Ok(());
        }
        if self.open.len() >= MAX_OPEN_FILES && !self.open.contains_key(key) {
            let oldest = self
                .open
                .iter()
                .min_by_key(|(_, open)| open.used)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                self.open.remove(&oldest);
            }
        }
        let path = self.next_path(key);
        let folder = path.parent().map(Path::to_path_buf).unwrap_or_default();
        std::fs::create_dir_all(&folder)
            .map_err(|source| SinkError::io("create the folder of", &path, source))?;
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|source| SinkError::io("open", &path, source))?;
        // The new file's entry (and new folders') must survive a crash too.
        let mut sync = Some(folder.as_path());
        let root = root(&self.settings);
        while let Some(dir) = sync {
            File::open(dir)
                .and_then(|folder| folder.sync_all())
                .map_err(|source| SinkError::io("fsync the folder of", &path, source))?;
            sync = dir.parent().filter(|_| dir != root);
        }
        let len = file
            .metadata()
            .map_err(|source| SinkError::io("stat", &path, source))?
            .len();
        self.open.insert(
            key.clone(),
            OpenFile {
                path,
                file,
                len,
                opened: Instant::now(),
                used: Instant::now(),
            },
        );
        Ok(())
    }

    /// A new file's path: named by its creation time and a sequence number.
    fn next_path(&mut self, key: &FileKey) -> PathBuf {
        let extension = self.settings.format.extension();
        let stamp = format!("{}-{}", now_ms(), self.sequence);
        self.sequence += 1;
        match key {
            FileKey::Single => {
                let stem = self
                    .settings
                    .path
                    .file_stem()
                    .map(|stem| stem.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "part".to_owned());
                root(&self.settings).join(format!("{stem}-{stamp}.{extension}"))
            }
            FileKey::DatePartition { day, partition } => self
                .settings
                .path
                .join(format!("date={}", utc_date(*day)))
                .join(format!("partition={partition}"))
                .join(format!("part-{stamp}.{extension}")),
        }
    }
}

/// The folder the sink's files live in.
fn root(settings: &RollingSettings) -> PathBuf {
    match settings.layout {
        FileLayout::DatePartition => settings.path.clone(),
        FileLayout::Single => settings
            .path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
    }
}

/// One MessagePack record: the JSON Lines fields.
#[derive(Serialize)]
struct PackedRecord<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    key: Option<std::borrow::Cow<'a, str>>,
    value: PackedValue<'a>,
    timestamp_ms: Option<i64>,
    /// A flat_map's piece: its index (absent otherwise, as in the JSON Lines format).
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u32>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum PackedValue<'a> {
    Json(serde_json::Value),
    Text(&'a str),
    Binary(#[serde(with = "serde_bytes_compat")] &'a [u8]),
}

/// Serializes a byte slice as MessagePack binary (not an array of integers).
mod serde_bytes_compat {
    pub(super) fn serialize<S: serde::Serializer>(
        bytes: &&[u8],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }
}

fn encode(format: FileFormat, out: &mut Vec<u8>, batch: &Batch, record: &RecordRef<'_>) {
    match format {
        FileFormat::JsonLines => {
            encode_line(out, batch.topic(), batch.partition(), record, record.index);
        }
        FileFormat::MessagePack => {
            let value = match serde_json::from_slice::<serde_json::Value>(record.value) {
                Ok(json) if !record.value.is_empty() => PackedValue::Json(json),
                _ => match std::str::from_utf8(record.value) {
                    Ok(text) => PackedValue::Text(text),
                    Err(_) => PackedValue::Binary(record.value),
                },
            };
            let packed = PackedRecord {
                topic: batch.topic(),
                partition: batch.partition(),
                offset: record.offset,
                key: record.key.map(String::from_utf8_lossy),
                value,
                timestamp_ms: record.timestamp_ms,
                index: record.index,
            };
            // Writing to a Vec cannot fail, and these types always serialize.
            let _ = rmp_serde::encode::write_named(out, &packed);
        }
    }
}

/// Cuts a torn tail off the sink's own files (named as it names them; other files in its
/// folders are left alone).
fn repair_own_files(settings: &RollingSettings, root: &Path) -> Result<(), SinkError> {
    let extension = settings.format.extension();
    let mut files = Vec::new();
    match settings.layout {
        FileLayout::Single => {
            let stem = settings
                .path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_else(|| "part".to_owned());
            files.extend(own_files(root, &format!("{stem}-"), extension)?);
        }
        FileLayout::DatePartition => {
            for date in sub_folders(root, "date=")? {
                for partition in sub_folders(&date, "partition=")? {
                    files.extend(own_files(&partition, "part-", extension)?);
                }
            }
        }
    }
    for path in files {
        let cut = repair_file(&path, settings.format)
            .map_err(|source| SinkError::io("repair", &path, source))?;
        if cut > 0 {
            tracing::warn!(path = %path.display(), bytes = cut, "cut off a torn tail");
        }
    }
    Ok(())
}

fn sub_folders(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>, SinkError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SinkError::io("list", dir, source))?;
    Ok(entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_dir() && name_of(path).starts_with(prefix))
        .collect())
}

/// Files of `dir` named `<prefix><ms>-<n>.<extension>`.
fn own_files(dir: &Path, prefix: &str, extension: &str) -> Result<Vec<PathBuf>, SinkError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SinkError::io("list", dir, source))?;
    Ok(entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            let name = name_of(path);
            let Some(stamp) = name
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(&format!(".{extension}")))
            else {
                return false;
            };
            path.is_file()
                && stamp.split('-').count() == 2
                && stamp
                    .split('-')
                    .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect())
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Truncates `path` after its last whole record; returns how many bytes were cut.
fn repair_file(path: &Path, format: FileFormat) -> std::io::Result<u64> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let keep = match format {
        // JSON Lines: keep up to the last newline, as the file sink does (however long the
        // torn line).
        FileFormat::JsonLines => return crate::sink::file::cut_torn_line(&mut file),
        FileFormat::MessagePack => {
            // MessagePack: keep the records that decode whole.
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            let mut cursor = std::io::Cursor::new(&bytes[..]);
            let mut good = 0;
            while (cursor.position() as usize) < bytes.len() {
                let decoded: Result<serde::de::IgnoredAny, _> = rmp_serde::from_read(&mut cursor);
                if decoded.is_err() {
                    break;
                }
                good = cursor.position();
            }
            good
        }
    };
    if keep < len {
        file.set_len(keep)?;
        file.sync_data()?;
    }
    Ok(len - keep)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

const MS_PER_DAY: i64 = 86_400_000;

/// `YYYY-MM-DD` of a day since the Unix epoch (Howard Hinnant's civil_from_days).
fn utc_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests;
