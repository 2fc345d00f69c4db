//! [`Buffer`]: the key and payload bytes of a batch's records. A batch owns it while it is
//! built; splitting or copying a batch shares it instead of copying bytes, and a batch that is
//! written to again takes back a buffer of its own.

use std::sync::Arc;

use super::{span_start, Entry};

/// A batch's bytes: its own (appendable), or shared with the batches split or cloned from it.
#[derive(Clone, Debug, Default)]
pub(super) struct Buffer {
    /// The bytes while nothing shares them (empty while `shared` is set).
    own: Vec<u8>,
    /// The bytes once shared.
    shared: Option<Arc<Vec<u8>>>,
}

impl Buffer {
    /// An empty buffer with room for `bytes`.
    pub(super) fn with_capacity(bytes: usize) -> Self {
        Buffer {
            own: Vec::with_capacity(bytes),
            shared: None,
        }
    }

    /// All the bytes (a shared buffer's include those of the batches it is shared with).
    pub(super) fn as_slice(&self) -> &[u8] {
        match &self.shared {
            Some(shared) => shared,
            None => &self.own,
        }
    }

    /// Makes the bytes shareable: clones share them from now on (no copy).
    pub(super) fn share(&mut self) {
        if self.shared.is_none() {
            self.shared = Some(Arc::new(std::mem::take(&mut self.own)));
        }
    }

    /// True when the bytes are shared (appending first takes back bytes of its own).
    pub(super) fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// The bytes to append to. A shared buffer becomes this batch's own again, holding only the
    /// bytes of `entries` (this batch's records, whose starts move with them): taken back and
    /// compacted in place when nothing else holds it, else copied.
    #[inline]
    pub(super) fn own(&mut self, entries: &mut [Entry]) -> &mut Vec<u8> {
        if self.shared.is_some() {
            self.unshare(entries);
        }
        &mut self.own
    }

    #[cold]
    fn unshare(&mut self, entries: &mut [Entry]) {
        if let Some(shared) = self.shared.take() {
            self.own = match Arc::try_unwrap(shared) {
                Ok(whole) => compact(whole, entries),
                Err(shared) => {
                    let mut own = Vec::with_capacity(entries.iter().map(Entry::bytes_len).sum());
                    for entry in entries.iter_mut() {
                        let start = entry.start as usize;
                        let len = entry.bytes_len();
                        entry.start = span_start(own.len());
                        own.extend_from_slice(&shared[start..start + len]);
                    }
                    own
                }
            };
        }
    }

    /// The buffer's length (a shared buffer's counts every batch's bytes in it).
    pub(super) fn len(&self) -> usize {
        self.as_slice().len()
    }
}

/// `bytes` with only the bytes of `entries` (in order, their starts increasing), moved to the
/// front; their starts move with them. (The batches split off before may have left theirs.)
fn compact(mut bytes: Vec<u8>, entries: &mut [Entry]) -> Vec<u8> {
    let mut end = 0;
    for entry in entries.iter_mut() {
        let start = entry.start as usize;
        let len = entry.bytes_len();
        if start != end {
            bytes.copy_within(start..start + len, end);
            entry.start = span_start(end);
        }
        end += len;
    }
    bytes.truncate(end);
    bytes
}
