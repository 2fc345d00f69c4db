//! [`RowBuffers`]: held batches turned into the six column arrays of the insert statement,
//! encoded into buffers reused from write to write (no allocation per record), and [`Rows`]:
//! the arrays borrowed from them as statement parameters.

use std::borrow::Cow;
use std::collections::HashMap;

use tokio_postgres::types::ToSql;

use super::Dedupe;
use crate::record::Batch;
use crate::sink::json_lines::write_value;

/// Column buffers for the rows of some batches.
#[derive(Debug, Default)]
pub struct RowBuffers {
    text: Vec<u8>,
    values: Vec<(usize, usize)>,
    keys: Vec<Option<(usize, usize)>>,
    partitions: Vec<i32>,
    offsets: Vec<i64>,
    timestamps: Vec<Option<i64>>,
    /// The batch (index into the batches filled from) of each row.
    batches: Vec<usize>,
    /// Records left out before the database: (batch index, offset, why).
    refused: Vec<(usize, i64, String)>,
}

impl RowBuffers {
    /// Encodes the records of `batches` as rows. With [`Dedupe::Key`], a record without a key is
    /// refused, and of several records with one key only the last becomes a row (the others are
    /// superseded: written, as far as a compacted table goes).
    pub fn fill(&mut self, batches: &[Batch], dedupe: Dedupe) {
        self.text.clear();
        self.values.clear();
        self.keys.clear();
        self.partitions.clear();
        self.offsets.clear();
        self.timestamps.clear();
        self.batches.clear();
        self.refused.clear();
        // Keys as the table holds them (text: bytes that are not UTF-8 are replaced), so that
        // two keys that become one row are one key here too.
        let last_of_key: HashMap<Cow<'_, str>, (usize, i64)> = match dedupe {
            Dedupe::Key => batches
                .iter()
                .enumerate()
                .flat_map(|(index, batch)| {
                    batch.iter().filter_map(move |record| {
                        Some((String::from_utf8_lossy(record.key?), (index, record.offset)))
                    })
                })
                .collect(),
            Dedupe::Origin | Dedupe::None => HashMap::new(),
        };
        for (index, batch) in batches.iter().enumerate() {
            for record in batch.iter() {
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
                        Some(key)
                            if last_of_key.get(&String::from_utf8_lossy(key))
                                != Some(&(index, record.offset)) =>
                        {
                            continue;
                        }
                        Some(_) => {}
                    }
                }
                let start = self.text.len();
                write_value(&mut self.text, record.value);
                self.values.push((start, self.text.len()));
                self.keys.push(record.key.map(|key| {
                    let start = self.text.len();
                    self.text
                        .extend_from_slice(String::from_utf8_lossy(key).as_bytes());
                    (start, self.text.len())
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
            // Built from `&str`s and JSON text: always UTF-8.
            std::str::from_utf8(&self.text[start..end]).unwrap_or("")
        };
        Rows {
            topics: self
                .batches
                .iter()
                .map(|&b| batches[b].topic().as_ref())
                .collect(),
            partitions: self.partitions.clone(),
            offsets: self.offsets.clone(),
            keys: self.keys.iter().map(|key| key.map(text)).collect(),
            values: self.values.iter().map(|&span| text(span)).collect(),
            timestamps: self.timestamps.clone(),
        }
    }
}

/// Rows as the insert statement's six array parameters.
#[derive(Debug, Default)]
pub struct Rows<'a> {
    topics: Vec<&'a str>,
    partitions: Vec<i32>,
    offsets: Vec<i64>,
    keys: Vec<Option<&'a str>>,
    values: Vec<&'a str>,
    timestamps: Vec<Option<i64>>,
}

impl<'a> Rows<'a> {
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
            &self.keys,
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
            keys: vec![self.keys[index]],
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
        buffers.fill(&batches, Dedupe::Origin);
        let rows = buffers.rows(&batches);
        assert_eq!(rows.topics, vec!["t", "t", "t"]);
        assert_eq!(rows.partitions, vec![0, 0, 3]);
        assert_eq!(rows.offsets, vec![5, 6, 9]);
        assert_eq!(rows.keys, vec![Some("a"), None, Some("b")]);
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
        buffers.fill(&batches, Dedupe::Key);
        let rows = buffers.rows(&batches);
        assert_eq!(rows.keys, vec![Some("b"), Some("a")]);
        assert_eq!(rows.values, vec!["3", "4"]);
        assert_eq!(buffers.refused().len(), 1);
        assert_eq!(buffers.refused()[0].0, 0);
        assert_eq!(buffers.refused()[0].1, 2);
    }

    #[test]
    fn keys_that_become_one_text_are_one_key() {
        let mut batch = Batch::new(Arc::from("t"), 0, 1, 2);
        batch.push(1, None, Some(&[0xff]), b"1");
        batch.push(2, None, Some(&[0xfe]), b"2");
        let batches = vec![batch];
        let mut buffers = RowBuffers::default();
        buffers.fill(&batches, Dedupe::Key);
        let rows = buffers.rows(&batches);
        assert_eq!(rows.values, vec!["2"], "one row for U+FFFD");
    }
}
