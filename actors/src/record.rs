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

mod buffer;

use buffer::Buffer;

use crate::flow::memory::Lease;

/// Where a record's bytes are in its batch's buffer: its key (when it has one), then its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    offset: i64,
    /// [`NO_TIMESTAMP`] when it has none.
    timestamp_ms: i64,
    /// Where its key starts (its value follows the key).
    start: u32,
    /// [`NO_KEY`] when it has none.
    key_len: u32,
    value_len: u32,
    /// The piece's index among the records a flat_map made of its source record, or
    /// [`NO_INDEX`]. (32 bytes in all: a batch of 1,024 records moves 32 KiB of entries.)
    index: u32,
}

impl Entry {
    fn key_len(&self) -> usize {
        if self.key_len == NO_KEY {
            0
        } else {
            self.key_len as usize
        }
    }

    /// Its key's and value's bytes together.
    fn bytes_len(&self) -> usize {
        self.key_len() + self.value_len as usize
    }
}

/// An entry that is a source record itself, not a piece of one.
const NO_INDEX: u32 = u32::MAX;
/// An entry without a key.
const NO_KEY: u32 = u32::MAX;
/// An entry without a timestamp (a record cannot carry `i64::MIN` as its timestamp).
const NO_TIMESTAMP: i64 = i64::MIN;

/// The most bytes a batch's buffer holds: every position in it fits a `u32`. Whoever fills a
/// batch closes it (hands it on, starts another) before a record would take it past this.
pub(crate) const MAX_BATCH_BYTES: usize = u32::MAX as usize - 1;

/// A position in a batch's buffer (below [`MAX_BATCH_BYTES`]).
#[inline]
fn span_start(at: usize) -> u32 {
    u32::try_from(at).unwrap_or(u32::MAX)
}

/// A key's or value's length, kept below the [`NO_KEY`] mark.
#[inline]
fn span_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX).min(NO_KEY - 1)
}

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
///
/// Splitting a batch ([`Batch::split_front`], [`Batch::split_by`]) or cloning a shared one
/// ([`Batch::share`]) copies its entries, not its bytes.
#[derive(Clone, Debug)]
pub struct Batch {
    topic: Arc<str>,
    partition: i32,
    incarnation: u64,
    entries: Vec<Entry>,
    data: Buffer,
    /// Offsets acknowledged with the batch that have no record of their own (records a window
    /// absorbed into the aggregates of this batch).
    covered: Vec<i64>,
    /// The source's count of its bytes in flight (see [`crate::flow::memory`]), shared with
    /// the batches made of it, given back when the last of them is dropped.
    lease: Option<Arc<Lease>>,
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
            data: Buffer::default(),
            covered: Vec::new(),
            lease: None,
        }
    }

    /// An empty batch of the same partition incarnation, with room for `records`, that keeps
    /// this one's bytes counted in flight for as long as it lives: what an operator makes of
    /// a batch.
    pub fn successor(&self, records: usize) -> Batch {
        let mut batch = Batch::new(
            Arc::clone(&self.topic),
            self.partition,
            self.incarnation,
            records,
        );
        batch.lease.clone_from(&self.lease);
        batch
    }

    /// Keeps `other`'s bytes counted in flight as long as this batch lives too (records of
    /// `other` gathered into this one).
    pub fn keep_counted(&mut self, other: &Batch) {
        let Some(more) = &other.lease else {
            return;
        };
        self.lease = Some(match &self.lease {
            Some(held) => Lease::join(held, more),
            None => Arc::clone(more),
        });
    }

    /// Counts its bytes in flight until it and every batch made of it are dropped.
    pub(crate) fn hold(&mut self, lease: Lease) {
        self.lease = Some(Arc::new(lease));
    }

    /// Its records' key and payload bytes (not the bytes it shares with other batches).
    pub fn record_bytes(&self) -> usize {
        self.entries.iter().map(Entry::bytes_len).sum()
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
        batch.data = Buffer::with_capacity(bytes);
        batch
    }

    /// The length of its bytes' buffer: its records' keys and payloads, and once shared, those
    /// of the batches it is shared with.
    pub fn data_len(&self) -> usize {
        self.data.len()
    }

    /// Makes its bytes shared: clones and splits of it copy entries only. (Appending to it again
    /// first takes back bytes of its own.)
    pub fn share(&mut self) {
        self.data.share();
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
    #[inline]
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
        self.push_entry(offset, timestamp_ms, key, value, index.min(NO_INDEX - 1));
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
        self.append(offset, timestamp_ms, key, index.min(NO_INDEX - 1), write)
    }

    #[inline]
    fn push_entry(
        &mut self,
        offset: i64,
        timestamp_ms: Option<i64>,
        key: Option<&[u8]>,
        value: &[u8],
        index: u32,
    ) {
        let copied = self.append(offset, timestamp_ms, key, index, |out| {
            out.extend_from_slice(value);
            Ok::<(), std::convert::Infallible>(())
        });
        match copied {
            Ok(()) => {}
            Err(never) => match never {},
        }
    }

    /// Appends a record: its key, then the value `write` writes, both into the buffer; on
    /// `write`'s error nothing is appended.
    #[inline]
    fn append<E>(
        &mut self,
        offset: i64,
        timestamp_ms: Option<i64>,
        key: Option<&[u8]>,
        index: u32,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let data = self.data.own(&mut self.entries);
        let start = data.len();
        let key_len = key.map_or(NO_KEY, |key| {
            data.extend_from_slice(key);
            span_len(key.len())
        });
        let value_start = data.len();
        if let Err(error) = write(data) {
            data.truncate(start);
            return Err(error);
        }
        let value_len = span_len(data.len() - value_start);
        self.entries.push(Entry {
            offset,
            timestamp_ms: timestamp_ms.unwrap_or(NO_TIMESTAMP),
            start: span_start(start),
            key_len,
            value_len,
            index,
        });
        Ok(())
    }

    /// Drops every record after the first `records` (a flat_map taking back the pieces of a
    /// record its function refused).
    pub fn truncate(&mut self, records: usize) {
        self.entries.truncate(records);
        let data = self.data.own(&mut self.entries);
        // Also drops bytes past the last record's (a value half written when its writer
        // panicked).
        let end = self
            .entries
            .last()
            .map_or(0, |entry| entry.start as usize + entry.bytes_len());
        data.truncate(end);
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
        let bytes = self.data.as_slice();
        self.entries
            .iter()
            .map(move |entry| record_at(bytes, entry))
    }

    /// A batch of the same partition incarnation holding `entries`, sharing this one's bytes
    /// (which must be shared).
    fn sharing(&self, entries: Vec<Entry>) -> Batch {
        debug_assert!(self.data.is_shared());
        Batch {
            topic: Arc::clone(&self.topic),
            partition: self.partition,
            incarnation: self.incarnation,
            entries,
            data: self.data.clone(),
            covered: Vec::new(),
            lease: self.lease.clone(),
        }
    }

    /// Splits off the first `count` records into a batch of their own; the rest stay. Both
    /// share the bytes (the rest take back bytes of their own when appended to).
    pub fn split_front(&mut self, count: usize) -> Batch {
        let count = count.min(self.len());
        self.share();
        let mut back = Vec::with_capacity(self.entries.capacity());
        back.extend_from_slice(&self.entries[count..]);
        self.entries.truncate(count);
        let front = std::mem::replace(&mut self.entries, back);
        // Covered offsets stay with the last records: acknowledged once all of them are.
        self.sharing(front)
    }

    /// Splits its records over `parts` batches (none for a part without records): each record
    /// to the part `part_of` names (the last for a larger number), in order. The parts share its
    /// bytes; the offsets it covers stay with it (see [`Batch::covered`]).
    pub fn split_by(
        &mut self,
        parts: usize,
        mut part_of: impl FnMut(&RecordRef<'_>) -> usize,
    ) -> Vec<Option<Batch>> {
        self.share();
        let mut split: Vec<Option<Batch>> = (0..parts).map(|_| None).collect();
        let Some(last) = parts.checked_sub(1) else {
            return split;
        };
        // Room for an even share, and some: keys rarely split evenly.
        let room = self.len() / parts + self.len() / (4 * parts) + 1;
        let bytes = self.data.as_slice();
        for entry in &self.entries {
            let part = part_of(&record_at(bytes, entry)).min(last);
            split[part]
                .get_or_insert_with(|| self.sharing(Vec::with_capacity(room)))
                .entries
                .push(*entry);
        }
        split
    }

    /// The offsets, in order.
    pub fn offsets(&self) -> impl Iterator<Item = i64> + '_ {
        self.entries.iter().map(|entry| entry.offset)
    }
}

/// The record `entry` describes, its bytes in `bytes`.
fn record_at<'a>(bytes: &'a [u8], entry: &Entry) -> RecordRef<'a> {
    let start = entry.start as usize;
    let key_end = start + entry.key_len();
    RecordRef {
        offset: entry.offset,
        timestamp_ms: (entry.timestamp_ms != NO_TIMESTAMP).then_some(entry.timestamp_ms),
        key: (entry.key_len != NO_KEY).then(|| &bytes[start..key_end]),
        value: &bytes[key_end..key_end + entry.value_len as usize],
        index: (entry.index != NO_INDEX).then_some(entry.index),
    }
}

/// Batches are equal when they hold the same records of the same partition incarnation and
/// cover the same offsets, wherever their bytes lie.
impl PartialEq for Batch {
    fn eq(&self, other: &Self) -> bool {
        self.topic == other.topic
            && self.partition == other.partition
            && self.incarnation == other.incarnation
            && self.covered == other.covered
            && self.iter().eq(other.iter())
    }
}

impl Eq for Batch {}

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
        assert_eq!(std::mem::size_of::<Entry>(), 32);
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

    fn values(batch: &Batch) -> Vec<&[u8]> {
        batch.iter().map(|record| record.value).collect()
    }

    #[test]
    fn parts_split_by_a_rule_share_the_bytes_and_keep_order_keys_and_stamps() {
        let mut batch = Batch::new(Arc::from("events"), 2, 5, 8);
        for offset in 0..6_i64 {
            let key = [b'k', b'0' + (offset % 3) as u8];
            let stamp = (offset != 4).then_some(100 + offset);
            batch.push(
                offset,
                stamp,
                (offset != 5).then_some(&key[..]),
                &[b'v'; 3][..offset as usize % 3 + 1],
            );
        }
        batch.cover([40, 41]);
        let whole = batch.data_len();
        let parts = batch.split_by(4, |record| match record.key {
            Some(key) => usize::from(key[1] - b'0'),
            None => 9, // past the last part: goes to the last
        });
        assert_eq!(parts.len(), 4);
        let offsets = |part: &Option<Batch>| -> Vec<i64> {
            part.as_ref()
                .map_or_else(Vec::new, |part| part.offsets().collect())
        };
        assert_eq!(offsets(&parts[0]), [0, 3]);
        assert_eq!(offsets(&parts[1]), [1, 4]);
        assert_eq!(offsets(&parts[2]), [2]);
        assert_eq!(offsets(&parts[3]), [5]);
        let first = parts[1].as_ref().expect("keys k1 make part 1");
        let records: Vec<RecordRef<'_>> = first.iter().collect();
        assert_eq!(records[0].key, Some(&b"k1"[..]));
        assert_eq!(records[0].value, b"vv");
        assert_eq!(records[0].timestamp_ms, Some(101));
        assert_eq!(records[1].timestamp_ms, None);
        assert_eq!(
            parts[3]
                .as_ref()
                .and_then(|part| part.iter().next())
                .map(|record| record.key),
            Some(None)
        );
        // No bytes copied: every part sees the one buffer; covered offsets stay with the batch.
        for part in parts.iter().flatten() {
            assert_eq!((part.data_len(), part.covered()), (whole, &[][..]));
            assert_eq!((part.partition(), part.incarnation()), (2, 5));
        }
        assert_eq!(batch.covered(), [40, 41]);
        assert!(Batch::new(Arc::from("events"), 0, 1, 0)
            .split_by(0, |_| 0)
            .is_empty());
    }

    #[test]
    fn a_shared_batch_appended_to_takes_back_only_its_own_bytes() {
        let mut batch = Batch::new(Arc::from("events"), 0, 1, 4);
        batch.push(1, None, Some(b"a"), b"one");
        batch.push(2, None, Some(b"b"), b"two");
        batch.push(3, None, None, b"three");
        let front = batch.split_front(2);
        assert_eq!(values(&front), [&b"one"[..], b"two"]);
        assert_eq!(values(&batch), [&b"three"[..]]);
        // The front still holds the bytes: the rest copies its own record's bytes only.
        batch.push(4, Some(9), Some(b"d"), b"four");
        assert_eq!(batch.data_len(), "three".len() + "d".len() + "four".len());
        assert_eq!(values(&batch), [&b"three"[..], b"four"]);
        assert_eq!(values(&front), [&b"one"[..], b"two"]);
        // Nothing else holds a shared buffer: appending takes it back (no copy) and drops the
        // bytes of the records split off from it ("three" went with the rest).
        let mut alone = front.clone();
        drop(front);
        alone.share();
        alone.push(5, None, None, b"five");
        assert_eq!(values(&alone), [&b"one"[..], b"two", b"five"]);
        assert_eq!(alone.data_len(), "aonebtwo".len() + "five".len());
        // Taken back from the middle: the bytes move to the front with their records.
        let mut middle = Batch::new(Arc::from("events"), 0, 1, 4);
        for (offset, value) in [(1, &b"first"[..]), (2, b"second"), (3, b"third")] {
            middle.push(offset, None, Some(b"k"), value);
        }
        let front = middle.split_front(1);
        drop(front);
        middle.push(4, Some(7), None, b"fourth");
        assert_eq!(values(&middle), [&b"second"[..], b"third", b"fourth"]);
        assert_eq!(middle.data_len(), "ksecondkthirdfourth".len());
        let keys: Vec<Option<&[u8]>> = middle.iter().map(|record| record.key).collect();
        assert_eq!(keys, [Some(&b"k"[..]), Some(b"k"), None]);
        // A clone of a shared batch is equal, truncates apart and writes pieces apart.
        alone.share();
        let mut copy = alone.clone();
        assert_eq!(copy, alone);
        copy.truncate(1);
        copy.push_piece(6, None, Some(b"p"), b"piece", 0);
        assert_eq!(values(&copy), [&b"one"[..], b"piece"]);
        assert_eq!(values(&alone), [&b"one"[..], b"two", b"five"]);
        assert_ne!(copy, alone);
    }

    #[test]
    fn equal_records_make_equal_batches_wherever_their_bytes_lie() {
        let mut split = Batch::new(Arc::from("events"), 0, 1, 4);
        split.push(1, None, Some(b"x"), b"skipped");
        split.push(2, Some(3), Some(b"y"), b"kept");
        let mut parts = split.split_by(2, |record| usize::from(record.offset == 2));
        let kept = parts.pop().flatten().expect("offset 2 makes part 1");
        let mut fresh = Batch::new(Arc::from("events"), 0, 1, 1);
        fresh.push(2, Some(3), Some(b"y"), b"kept");
        assert_eq!(kept, fresh);
        fresh.cover([7]);
        assert_ne!(kept, fresh);
    }
}
