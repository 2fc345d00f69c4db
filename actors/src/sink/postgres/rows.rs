//! [`RowBuffers`]: held batches turned into the six column arrays of the insert statement,
//! encoded into buffers reused from write to write (no allocation per record), and [`Rows`]:
//! the arrays borrowed from them as statement parameters.

use std::collections::HashMap;

use tokio_postgres::types::ToSql;

use super::{Dedupe, KeyColumn};
use crate::record::Batch;
use crate::sink::json_lines::write_value;

/// Column buffers for the rows of some batches.
#[derive(Debug, Default)]
pub struct RowBuffers {
    text: Vec<u8>,
    values: Vec<(usize, usize)>,
    /// The keys' bytes, as the records have them.
    key_bytes: Vec<u8>,
    keys: Vec<Option<(usize, usize)>>,
    /// How the table holds keys.
    key_column: KeyColumn,
    partitions: Vec<i32>,
    offsets: Vec<i64>,
    timestamps: Vec<Option<i64>>,
    /// The batch (index into the batches filled from) of each row.
    batches: Vec<usize>,
    /// Records left out before the database: (batch index, offset, why).
    refused: Vec<(usize, i64, String)>,
}

impl RowBuffers {
    /// Encodes the records of `batches` as rows for a table whose key column is `key_column`.
    /// With [`Dedupe::Key`], a record without a key is refused, and of several records with one
    /// key (the same bytes) only the last becomes a row (the others are superseded: written, as
    /// far as a compacted table goes). A `text` key column takes the keys that are UTF-8 without
    /// a NUL byte; a record with any other key is refused naming the column's type (a `bytea`
    /// column takes every key as it is).
    pub fn fill(&mut self, batches: &[Batch], dedupe: Dedupe, key_column: KeyColumn) {
        self.text.clear();
        self.values.clear();
        self.key_bytes.clear();
        self.keys.clear();
        self.key_column = key_column;
        self.partitions.clear();
        self.offsets.clear();
        self.timestamps.clear();
        self.batches.clear();
        self.refused.clear();
        let fits = |key: &[u8]| match key_column {
            KeyColumn::Bytea => true,
            KeyColumn::Text => !key.contains(&0) && std::str::from_utf8(key).is_ok(),
        };
        let last_of_key: HashMap<&[u8], (usize, i64)> = match dedupe {
            Dedupe::Key => batches
                .iter()
                .enumerate()
                .flat_map(|(index, batch)| {
                    batch
                        .iter()
                        .filter_map(move |record| Some((record.key?, (index, record.offset))))
                })
                .collect(),
            Dedupe::Origin | Dedupe::None => HashMap::new(),
        };
        for (index, batch) in batches.iter().enumerate() {
            for record in batch.iter() {
                if let Some(key) = record.key.filter(|key| !fits(key)) {
                    self.refused.push((
                        index,
                        record.offset,
                        format!(
                            "the key ({} bytes) is not UTF-8 text without NUL bytes, and the \
                             table's key column is text (a bytea key column takes any key)",
                            key.len()
                        ),
                    ));
                    continue;
                }
                if dedupe == Dedupe::Key {
                    match record.key {
                        None => {
                            self.refused.push((
                                index,
                                record.offset,
                                "the record has no key, and the sink dedupes on the key".to_owned(),
                            ));
                            continue;
                        }
                        Some(key) if last_of_key.get(key) != Some(&(index, record.offset)) => {
                            continue;
                        }
                        Some(_) => {}
                    }
                }
                let start = self.text.len();
                write_value(&mut self.text, record.value);
                self.values.push((start, self.text.len()));
                self.keys.push(record.key.map(|key| {
                    let start = self.key_bytes.len();
                    self.key_bytes.extend_from_slice(key);
                    (start, self.key_bytes.len())
                }));
                self.partitions.push(batch.partition());
                self.offsets.push(record.offset);
                self.timestamps.push(record.timestamp_ms);
                self.batches.push(index);
            }
        }
    }

    /// Records refused before the database: (batch index, offset, why).
    pub fn refused(&self) -> &[(usize, i64, String)] {
        &self.refused
    }

    /// The batch index and offset of row `row`.
    pub fn origin(&self, row: usize) -> (usize, i64) {
        (self.batches[row], self.offsets[row])
    }

    /// The rows as statement parameters; `batches` are those [`RowBuffers::fill`] was given.
    pub fn rows<'a>(&'a self, batches: &'a [Batch]) -> Rows<'a> {
        let text = |(start, end): (usize, usize)| {
            // JSON text: always UTF-8.
            std::str::from_utf8(&self.text[start..end]).unwrap_or("")
        };
        let key = |(start, end): (usize, usize)| &self.key_bytes[start..end];
        Rows {
            topics: self
                .batches
                .iter()
                .map(|&b| batches[b].topic().as_ref())
                .collect(),
            partitions: self.partitions.clone(),
            offsets: self.offsets.clone(),
            keys: match self.key_column {
                // Checked in `fill`: UTF-8 without NUL.
                KeyColumn::Text => Keys::Text(
                    self.keys
                        .iter()
                        .map(|span| span.map(|span| std::str::from_utf8(key(span)).unwrap_or("")))
                        .collect(),
                ),
                KeyColumn::Bytea => {
                    Keys::Bytes(self.keys.iter().map(|span| span.map(key)).collect())
                }
            },
            values: self.values.iter().map(|&span| text(span)).collect(),
            timestamps: self.timestamps.clone(),
        }
    }
}

/// The keys of some rows, as the table's key column takes them.
#[derive(Debug)]
enum Keys<'a> {
    Text(Vec<Option<&'a str>>),
    Bytes(Vec<Option<&'a [u8]>>),
}

impl Default for Keys<'_> {
    fn default() -> Self {
        Keys::Bytes(Vec::new())
    }
}

impl<'a> Keys<'a> {
    fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Keys::Text(keys) => keys,
            Keys::Bytes(keys) => keys,
        }
    }

    fn single(&self, index: usize) -> Keys<'a> {
        match self {
            Keys::Text(keys) => Keys::Text(vec![keys[index]]),
            Keys::Bytes(keys) => Keys::Bytes(vec![keys[index]]),
        }
    }
}

/// Rows as the insert statement's six array parameters.
#[derive(Debug, Default)]
pub struct Rows<'a> {
    topics: Vec<&'a str>,
    partitions: Vec<i32>,
    offsets: Vec<i64>,
    keys: Keys<'a>,
    values: Vec<&'a str>,
    timestamps: Vec<Option<i64>>,
}

impl<'a> Rows<'a> {
    /// No rows, their keys typed for `key_column`.
    pub fn empty(key_column: KeyColumn) -> Rows<'a> {
        Rows {
            keys: match key_column {
                KeyColumn::Text => Keys::Text(Vec::new()),
                KeyColumn::Bytea => Keys::Bytes(Vec::new()),
            },
            ..Rows::default()
        }
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The parameters, in the statement's order.
    pub fn params(&self) -> [&(dyn ToSql + Sync); 6] {
        [
            &self.topics,
            &self.partitions,
            &self.offsets,
            self.keys.param(),
            &self.values,
            &self.timestamps,
        ]
    }

    /// Row `index` alone.
    pub fn single(&self, index: usize) -> Rows<'a> {
        Rows {
            topics: vec![self.topics[index]],
            partitions: vec![self.partitions[index]],
            offsets: vec![self.offsets[index]],
            keys: self.keys.single(index),
            values: vec![self.values[index]],
            timestamps: vec![self.timestamps[index]],
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn batch(partition: i32, records: &[(i64, Option<&str>, &str)]) -> Batch {
        let mut batch = Batch::new(Arc::from("t"), partition, 1, records.len());
        for (offset, key, value) in records {
            batch.push(*offset, Some(7), key.map(str::as_bytes), value.as_bytes());
        }
        batch
    }

    #[test]
    fn every_record_is_a_row_with_its_value_as_json_text() {
        let batches = vec![
            batch(0, &[(5, Some("a"), "{\"x\": 1}"), (6, None, "plain")]),
            batch(3, &[(9, Some("b"), "2")]),
        ];
        let mut buffers = RowBuffers::default();
        buffers.fill(&batches, Dedupe::Origin, KeyColumn::Text);
        let rows = buffers.rows(&batches);
        assert_eq!(rows.topics, vec!["t", "t", "t"]);
        assert_eq!(rows.partitions, vec![0, 0, 3]);
        assert_eq!(rows.offsets, vec![5, 6, 9]);
        let Keys::Text(keys) = &rows.keys else {
            panic!("text keys for a text column");
        };
        assert_eq!(keys, &vec![Some("a"), None, Some("b")]);
        assert_eq!(rows.values, vec!["{\"x\":1}", "\"plain\"", "2"]);
        assert_eq!(rows.timestamps, vec![Some(7); 3]);
        assert_eq!(buffers.origin(2), (1, 9));
        assert!(buffers.refused().is_empty());
    }

    #[test]
    fn key_dedupe_keeps_the_last_record_per_key_and_refuses_records_without_one() {
        let batches = vec![
            batch(
                0,
                &[(1, Some("a"), "1"), (2, None, "2"), (3, Some("b"), "3")],
            ),
            batch(1, &[(7, Some("a"), "4")]),
        ];
        let mut buffers = RowBuffers::default();
        buffers.fill(&batches, Dedupe::Key, KeyColumn::Bytea);
        let rows = buffers.rows(&batches);
        let Keys::Bytes(keys) = &rows.keys else {
            panic!("bytes for a bytea column");
        };
        assert_eq!(keys, &vec![Some(&b"b"[..]), Some(&b"a"[..])]);
        assert_eq!(rows.values, vec!["3", "4"]);
        assert_eq!(buffers.refused().len(), 1);
        assert_eq!(buffers.refused()[0].0, 0);
        assert_eq!(buffers.refused()[0].1, 2);
    }

    #[test]
    fn keys_are_bytes_and_a_text_column_refuses_what_it_cannot_hold() {
        let mut batch = Batch::new(Arc::from("t"), 0, 1, 4);
        batch.push(1, None, Some(&[0xff]), b"1");
        batch.push(2, None, Some(&[0xfe]), b"2");
        batch.push(3, None, Some(b"a\0b"), b"3");
        batch.push(4, None, Some("é".as_bytes()), b"4");
        let batches = vec![batch];
        let mut buffers = RowBuffers::default();
        // Two keys that differ only in bytes that are not UTF-8 are two rows.
        buffers.fill(&batches, Dedupe::Key, KeyColumn::Bytea);
        assert_eq!(buffers.rows(&batches).values, vec!["1", "2", "3", "4"]);
        assert!(buffers.refused().is_empty());
        // A text column takes UTF-8 without NUL; the others are refused naming the column.
        buffers.fill(&batches, Dedupe::Key, KeyColumn::Text);
        assert_eq!(buffers.rows(&batches).values, vec!["4"]);
        let refused: Vec<i64> = buffers
            .refused()
            .iter()
            .map(|(_, offset, _)| *offset)
            .collect();
        assert_eq!(refused, [1, 2, 3]);
        assert!(buffers.refused()[0].2.contains("key column is text"));
    }
}
