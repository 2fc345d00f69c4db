//! The file the file sink appends to: JSON Lines, each batch written whole and fsynced before it
//! is acknowledged; a torn last line (a crash mid-write) is cut off when the file is opened again.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use crate::error::SinkError;
use crate::record::Batch;
use crate::sink::json_lines::encode_line;

/// An open JSON Lines file.
#[derive(Debug)]
pub(crate) struct JsonLinesFile {
    path: PathBuf,
    file: File,
    buffer: Vec<u8>,
    /// Bytes cut off a torn last line when the file was opened.
    #[cfg(test)]
    repaired: u64,
}

impl JsonLinesFile {
    /// Opens (creating it and its folders if needed) `path` for appending, cutting off a torn
    /// last line.
    pub(crate) fn open(path: impl Into<PathBuf>) -> Result<Self, SinkError> {
        let path = path.into();
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)
                .map_err(|source| SinkError::io("create the folder of", &path, source))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|source| SinkError::io("open", &path, source))?;
        // A new file (and new folders) must survive a crash too: sync the folder's entry.
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            File::open(parent)
                .and_then(|folder| folder.sync_all())
                .map_err(|source| SinkError::io("fsync the folder of", &path, source))?;
        }
        let repaired =
            cut_torn_line(&mut file).map_err(|source| SinkError::io("repair", &path, source))?;
        if repaired > 0 {
            tracing::warn!(path = %path.display(), bytes = repaired, "cut off a torn last line");
        }
        Ok(JsonLinesFile {
            path,
            file,
            buffer: Vec::new(),
            #[cfg(test)]
            repaired,
        })
    }

    /// Appends every record of `batch` and fsyncs: when this returns `Ok`, the lines are durable.
    #[cfg(test)]
    pub(crate) fn write_batch(&mut self, batch: &Batch) -> Result<(), SinkError> {
        self.write_batches(std::iter::once(batch))
    }

    /// Appends the records of all `batches` and fsyncs once. A failed write is cut back off the
    /// file, so that a retry never leaves a torn line or a half batch behind.
    pub(crate) fn write_batches<'a>(
        &mut self,
        batches: impl IntoIterator<Item = &'a Batch>,
    ) -> Result<(), SinkError> {
        self.buffer.clear();
        for batch in batches {
            for record in batch.iter() {
                encode_line(
                    &mut self.buffer,
                    batch.topic(),
                    batch.partition(),
                    &record,
                    record.index,
                );
            }
        }
        let before = self
            .file
            .metadata()
            .map_err(|source| SinkError::io("stat", &self.path, source))?
            .len();
        let written = self
            .file
            .write_all(&self.buffer)
            .and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            if let Err(error) = self.file.set_len(before) {
                tracing::error!(path = %self.path.display(), %error, "could not cut a failed write back off");
            }
            return Err(SinkError::io("write", &self.path, source));
        }
        Ok(())
    }

    /// Bytes of a torn last line cut off at open (0 when the file ended cleanly).
    #[cfg(test)]
    pub(crate) fn repaired_bytes(&self) -> u64 {
        self.repaired
    }
}

/// Truncates `file` after its last `\n`; returns how many bytes were cut.
pub(crate) fn cut_torn_line(file: &mut File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    let mut end = len;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let size = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk[..size])?;
        if let Some(newline) = chunk[..size].iter().rposition(|byte| *byte == b'\n') {
            let keep = start + newline as u64 + 1;
            if keep < len {
                file.set_len(keep)?;
                file.sync_data()?;
            }
            return Ok(len - keep);
        }
        end = start;
    }
    file.set_len(0)?;
    file.sync_data()?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "streamvisor-file-sink-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("out").join("lines.jsonl")
    }

    #[test]
    fn a_torn_last_line_is_cut_when_reopened() {
        let path = temp_path("torn");
        let mut batch = Batch::new(Arc::from("t"), 0, 1, 2);
        batch.push(0, None, None, b"{\"a\":1}");
        batch.push(1, None, None, b"{\"a\":2}");
        let mut sink = JsonLinesFile::open(&path).expect("open");
        sink.write_batch(&batch).expect("write");
        drop(sink);
        let clean = std::fs::read(&path).expect("read");
        assert_eq!(clean.iter().filter(|b| **b == b'\n').count(), 2);
        // A crash in the middle of the next line:
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(b"{\"topic\":\"t\",\"parti"))
            .expect("tear");
        let reopened = JsonLinesFile::open(&path).expect("reopen");
        assert_eq!(reopened.repaired_bytes(), 19);
        assert_eq!(std::fs::read(&path).expect("read"), clean);
    }

    #[test]
    fn a_file_holding_only_a_torn_line_becomes_empty() {
        let path = temp_path("only-torn");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, b"{\"to").expect("write");
        let reopened = JsonLinesFile::open(&path).expect("reopen");
        assert_eq!(reopened.repaired_bytes(), 4);
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), 0);
    }
}
