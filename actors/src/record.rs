//! Records as they travel between stages: [`Batch`]es of one partition incarnation, all payloads
//! of a batch in one buffer (no allocation per record), each record with its origin offset.

use std::sync::Arc;

/// Where a record came from: its topic, partition and offset.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The offset within the partition.
    pub offset: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    offset: i64,
    timestamp_ms: Option<i64>,
    key: Option<Span>,
    value: Span,
    /// The piece's index among the records a flat_map made of its source record, or
    /// [`NO_INDEX`] (4 bytes: the entry stays 48 bytes).
    index: u32,
}

/// An entry that is a source record itself, not a piece of one.
const NO_INDEX: u32 = u32::MAX;

/// One record of a batch, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Its offset in the source partition.
    pub offset: i64,
    /// The Kafka timestamp, when there is one.
    pub timestamp_ms: Option<i64>,
    /// The Kafka key.
    pub key: Option<&'a [u8]>,
    /// The payload.
    pub value: &'a [u8],
    /// When a flat_map made several records of one source record: this one's index among
    /// them ((topic, partition, offset, index) is then its identity).
    pub index: Option<u32>,
}

/// Records of one partition incarnation, in offset order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    topic: Arc<str>,
    partition: i32,
    incarnation: u64,
    entries: Vec<Entry>,
    data: Vec<u8>,
    /// Offsets acknowledged with the batch that have no record of their own (records a window
    /// absorbed into the aggregates of this batch).
    covered: Vec<i64>,
}

/// The offset of a record that stands for no single source record (an aggregate): acknowledging
/// it acknowledges nothing (its sources ride in [`Batch::covered`]).
pub const NO_OFFSET: i64 = -1;

impl Batch {
    /// An empty batch for `topic`/`partition` read by `incarnation`, with room for `records`.
    pub fn new(topic: Arc<str>, partition: i32, incarnation: u64, records: usize) -> Self {
        Batch {
            topic,
            partition,
            incarnation,
            entries: Vec::with_capacity(records),
            data: Vec::new(),
            covered: Vec::new(),
        }
    }

    /// An empty batch for `topic`/`partition` read by `incarnation`, with room for `records`
    /// records of `bytes` key and payload bytes in all (no regrowth while it fills).
    pub fn with_capacity(
        topic: Arc<str>,
        partition: i32,
        incarnation: u64,
        records: usize,
        bytes: usize,
    ) -> Self {
        let mut batch = Batch::new(topic, partition, incarnation, records);
        batch.data.reserve(bytes);
        batch
    }

    /// The key and payload bytes of all its records.
    pub fn data_len(&self) -> usize {
        self.data.len()
    }

    /// Adds offsets acknowledged with this batch though no record of it has them.
    pub fn cover(&mut self, offsets: impl IntoIterator<Item = i64>) {
        self.covered.extend(offsets);
    }

    /// The offsets acknowledged with this batch besides its records'.
    pub fn covered(&self) -> &[i64] {
        &self.covered
    }

    /// Every source offset that acknowledging this batch acknowledges: its records' (but
    /// [`NO_OFFSET`]) and those it covers.
    pub fn ack_offsets(&self) -> impl Iterator<Item = i64> + '_ {
        self.offsets()
            .filter(|offset| *offset != NO_OFFSET)
            .chain(self.covered.iter().copied())
    }

    /// Appends a record.
    pub fn push(
        &mut self,
        offset: i64,
        timestamp_ms: Option<i64>,
        key: Option<&[u8]>,
        value: &[u8],
    ) {
        self.push_entry(offset, timestamp_ms, key, value, NO_INDEX);
    }

    /// Appends a copy of `record` (its piece index included).
    pub fn push_copy(&mut self, record: &RecordRef<'_>) {
        self.push_rewritten(record, record.key, record.value);
    }

    /// Appends `record` with a new key and value (its offset, timestamp and piece index kept).
    pub fn push_rewritten(&mut self, record: &RecordRef<'_>, key: Option<&[u8]>, value: &[u8]) {
        let index = record.index.unwrap_or(NO_INDEX);
        self.push_entry(record.offset, record.timestamp_ms, key, value, index);
    }

    /// Appends piece `index` of the record at `offset` (a flat_map's output).
    pub fn push_piece(
        &mut self,
        offset: i64,
        timestamp_ms: Option<i64>,
        key: Option<&[u8]>,
        value: &[u8],
        index: u32,
    ) {
        let copied = self.push_piece_written(offset, timestamp_ms, key, index, |out| {
            out.extend_from_slice(value);
            Ok::<(), std::convert::Infallible>(())
        });
        match copied {
            Ok(()) => {}
            Err(never) => match never {},
        }
    }

    /// Appends piece `index` of the record at `offset` whose value `write` writes straight
    /// into the batch's buffer (no copy); on `write`'s error nothing is appended.
    pub fn push_piece_written<E>(
        &mut self,
        offset: i64,
        timestamp_ms: Option<i64>,
        key: Option<&[u8]>,
        index: u32,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let rollback = self.data.len();
        let key = key.map(|key| self.store(key));
        let start = self.data.len();
        if let Err(error) = write(&mut self.data) {
            self.data.truncate(rollback);
            return Err(error);
        }
        let value = Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            len: u32::try_from(self.data.len() - start).unwrap_or(u32::MAX),
        };
        self.entries.push(Entry {
            offset,
            timestamp_ms,
            key,
            value,
            index: index.min(NO_INDEX - 1),
        });
        Ok(())
    }

    fn push_entry(
        &mut self,
        offset: i64,
        timestamp_ms: Option<i64>,
        key: Option<&[u8]>,
        value: &[u8],
        index: u32,
    ) {
        let key = key.map(|key| self.store(key));
        let value = self.store(value);
        self.entries.push(Entry {
            offset,
            timestamp_ms,
            key,
            value,
            index,
        });
    }

    /// Drops every record after the first `records` (a flat_map taking back the pieces of a
    /// record its function refused).
    pub fn truncate(&mut self, records: usize) {
        // Also drops bytes past the last record's (a value half written when its writer
        // panicked).
        self.entries.truncate(records);
        let end = self
            .entries
            .last()
            .map_or(0, |entry| (entry.value.start + entry.value.len) as usize);
        // Keys are stored before values: the last value ends the record's bytes.
        self.data.truncate(end);
    }

    fn store(&mut self, bytes: &[u8]) -> Span {
        let start = u32::try_from(self.data.len()).unwrap_or(u32::MAX);
        self.data.extend_from_slice(bytes);
        Span {
            start,
            len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
        }
    }

    fn slice(&self, span: Span) -> &[u8] {
        let start = span.start as usize;
        &self.data[start..start + span.len as usize]
    }

    /// The source topic.
    pub fn topic(&self) -> &Arc<str> {
        &self.topic
    }

    /// The source partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The partition incarnation that read these records (acks carry it back).
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// How many records.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The records, in order.
    pub fn iter(&self) -> impl Iterator<Item = RecordRef<'_>> + '_ {
        self.entries.iter().map(|entry| RecordRef {
            offset: entry.offset,
            timestamp_ms: entry.timestamp_ms,
            key: entry.key.map(|span| self.slice(span)),
            value: self.slice(entry.value),
            index: (entry.index != NO_INDEX).then_some(entry.index),
        })
    }

    /// Splits off the first `count` records into a batch of their own; the rest stay (copied
    /// into a fresh buffer: a rare path, when demand allows only part of a batch).
    pub fn split_front(&mut self, count: usize) -> Batch {
        let count = count.min(self.len());
        let mut front = Batch::new(
            Arc::clone(&self.topic),
            self.partition,
            self.incarnation,
            count,
        );
        let mut back = Batch::new(
            Arc::clone(&self.topic),
            self.partition,
            self.incarnation,
            self.entries.capacity(),
        );
        for (i, record) in self.iter().enumerate() {
            let target = if i < count { &mut front } else { &mut back };
            target.push_copy(&record);
        }
        // Covered offsets go with the last records: acknowledged once all of them are.
        back.covered = std::mem::take(&mut self.covered);
        *self = back;
        front
    }

    /// The offsets, in order.
    pub fn offsets(&self) -> impl Iterator<Item = i64> + '_ {
        self.entries.iter().map(|entry| entry.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_as_pushed() {
        let mut batch = Batch::new(Arc::from("events"), 3, 2, 4);
        batch.push(10, Some(1_000), Some(b"k1"), b"{\"a\":1}");
        batch.push(11, None, None, b"");
        batch.push(13, Some(1_002), Some(b""), b"xyz");
        let records: Vec<RecordRef<'_>> = batch.iter().collect();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].key, Some(&b"k1"[..]));
        assert_eq!(records[0].value, b"{\"a\":1}");
        assert_eq!(records[1].key, None);
        assert_eq!(records[1].value, b"");
        assert_eq!(records[2].key, Some(&b""[..]));
        assert_eq!(records[2].timestamp_ms, Some(1_002));
        assert_eq!(batch.offsets().collect::<Vec<_>>(), [10, 11, 13]);
        assert_eq!((batch.partition(), batch.incarnation()), (3, 2));
        let front = batch.split_front(2);
        assert_eq!(front.offsets().collect::<Vec<_>>(), [10, 11]);
        assert_eq!(batch.offsets().collect::<Vec<_>>(), [13]);
        assert_eq!(batch.iter().next().map(|r| r.value), Some(&b"xyz"[..]));
        assert_eq!(front.iter().next().map(|r| r.key), Some(Some(&b"k1"[..])));
    }

    #[test]
    fn pieces_keep_their_index_through_copies_and_truncation_drops_whole_records() {
        let mut batch = Batch::new(Arc::from("events"), 0, 1, 4);
        batch.push(7, None, Some(b"k"), b"whole");
        batch.push_piece(8, Some(5), Some(b"k8"), b"first", 0);
        batch.push_piece(8, Some(5), None, b"second", 1);
        assert_eq!(std::mem::size_of::<Entry>(), 48);
        let indexes: Vec<Option<u32>> = batch.iter().map(|r| r.index).collect();
        assert_eq!(indexes, [None, Some(0), Some(1)]);
        let mut copy = Batch::new(Arc::from("events"), 0, 1, 4);
        for record in batch.iter() {
            copy.push_rewritten(&record, None, b"new");
        }
        let indexes: Vec<Option<u32>> = copy.iter().map(|r| r.index).collect();
        assert_eq!(indexes, [None, Some(0), Some(1)]);
        batch.truncate(2);
        assert_eq!(batch.len(), 2);
        assert_eq!(
            batch.data_len(),
            "k".len() + "whole".len() + "k8".len() + "first".len()
        );
        batch.push(9, None, None, b"after");
        let values: Vec<&[u8]> = batch.iter().map(|r| r.value).collect();
        assert_eq!(values, [&b"whole"[..], b"first", b"after"]);
        batch.truncate(0);
        assert_eq!((batch.len(), batch.data_len()), (0, 0));
    }
}
