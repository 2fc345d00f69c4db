//! Records the exactly-once sink's target refuses for what they are (too large for the producer
//! or the topic, a keyless record on a compacted topic; see [`ProduceError::RecordLevel`]). The
//! producer refuses some at once, and the broker others in their delivery reports, which name
//! a record by the tag it was sent with ([`SentLog`]). A broker refuses a whole message set for
//! one record's size: of a set refused for its size, the records whose batch alone would pass
//! the topic's `max.message.bytes` (asked of the broker once) are refused, the others sent
//! again; a record refused in a set with others for another reason (or with the limit unknown)
//! is only a suspect, sent again alone in the next transaction; a record refused alone is
//! refused. A transaction holding a refused
//! record or a suspect aborts; refused records are taken out of the sink's batches and sent to
//! the dead letters (acknowledged when the broker has them), and the next transaction carries
//! the rest. Its commit waits for their dead letters: they close the gap in the acknowledged
//! prefix.

use std::sync::{Arc, Mutex, PoisonError};

use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

use crate::record::Batch;
use crate::sink::produce::ProduceError;

/// A record of a transaction: its partition incarnation, offset and piece index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RecordId {
    pub partition: i32,
    pub incarnation: u64,
    pub offset: i64,
    pub index: Option<u32>,
}

/// A refusal in a delivery report: whether it was for the message set's size, and the error.
pub(super) type Refusal = (bool, String);

/// What delivery reports said of records sent alone or refused: (tag, the refusal, if any).
pub(super) type Reported = Arc<Mutex<Vec<(usize, Option<Refusal>)>>>;

/// The transactional producer's context: keeps the record-level refusals of delivery reports,
/// and the deliveries of records sent alone (a suspect cleared).
pub(super) struct RefusalContext {
    pub reported: Reported,
}

impl ClientContext for RefusalContext {}

impl ProducerContext for RefusalContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: usize) {
        let report = match result {
            Err((error, _))
                if ProduceError::of(error.rdkafka_error_code()) == ProduceError::RecordLevel =>
            {
                let size = matches!(
                    error.rdkafka_error_code(),
                    Some(
                        RDKafkaErrorCode::MessageSizeTooLarge
                            | RDKafkaErrorCode::MessageBatchTooLarge
                    )
                );
                Some((size, error.to_string()))
            }
            // Only deliveries of records sent alone are kept (no lock per record otherwise).
            Ok(_) if SentLog::sent_alone(tag) => None,
            _ => return,
        };
        self.reported
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((tag, report));
    }
}

/// Which record each tag of the transaction being written stands for. Tags go on counting
/// across transactions, so that a late report of an aborted one names nothing; a tag's lowest
/// bit says whether its record was sent alone.
#[derive(Debug, Default)]
pub(super) struct SentLog {
    base: usize,
    /// Each record, whether it was sent alone (its own message set), and the bytes of a batch
    /// of it alone.
    records: Vec<(RecordId, bool, usize)>,
}

impl SentLog {
    /// A new transaction begins: earlier tags name nothing any more.
    pub(super) fn begin(&mut self) {
        self.base += self.records.len();
        self.records.clear();
    }

    /// The tag of `record`, sent now (`alone`: in a message set of its own) with `bytes` as a
    /// batch of its own.
    pub(super) fn tag(&mut self, record: RecordId, alone: bool, bytes: usize) -> usize {
        self.records.push((record, alone, bytes));
        ((self.base + self.records.len() - 1) << 1) | usize::from(alone)
    }

    /// Whether the record of `tag` was sent alone.
    pub(super) fn sent_alone(tag: usize) -> bool {
        tag & 1 == 1
    }

    /// The record `tag` stands for, when it is of the current transaction, whether it was
    /// sent alone, and its bytes as a batch of its own.
    pub(super) fn record(&self, tag: usize) -> Option<(RecordId, bool, usize)> {
        self.records
            .get((tag >> 1).checked_sub(self.base)?)
            .copied()
    }
}

/// The bytes of an uncompressed record batch (Kafka's format v2) holding only a record of
/// `key` and `value` bytes with `headers` ((key, value) bytes each): what the broker compares
/// with the topic's `max.message.bytes`.
pub(super) fn alone_batch_bytes(
    key: Option<usize>,
    value: usize,
    headers: impl Iterator<Item = (usize, usize)>,
) -> usize {
    /// A zigzag varint's bytes.
    fn varint(value: i64) -> usize {
        let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
        let mut bytes = 1;
        while zigzag >= 0x80 {
            zigzag >>= 7;
            bytes += 1;
        }
        bytes
    }
    let length = |bytes: usize| i64::try_from(bytes).unwrap_or(i64::MAX);
    let mut header_bytes = 0;
    let mut count = 0;
    for (key, value) in headers {
        header_bytes += varint(length(key)) + key + varint(length(value)) + value;
        count += 1;
    }
    // Attributes, timestamp delta and offset delta (0: one byte each), then the fields.
    let body = 3
        + key.map_or(varint(-1), |key| varint(length(key)) + key)
        + varint(length(value))
        + value
        + varint(count)
        + header_bytes;
    const BATCH_HEADER: usize = 61;
    BATCH_HEADER + varint(length(body)) + body
}

/// The topic's `max.message.bytes`, asked of the brokers (none when they do not say within
/// 10 s).
pub(super) fn topic_limit(settings: &crate::sink::kafka_sink::KafkaSinkSettings) -> Option<usize> {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> =
        crate::sink::produce::producer_config(&settings.brokers, &settings.properties)
            .create()
            .ok()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let topic = ResourceSpecifier::Topic(&settings.topic);
    let options = AdminOptions::new().request_timeout(Some(std::time::Duration::from_secs(10)));
    let described = runtime
        .block_on(admin.describe_configs([&topic], &options))
        .ok()?;
    let config = described.into_iter().next()?.ok()?;
    config
        .get("max.message.bytes")?
        .value
        .as_deref()?
        .parse()
        .ok()
}

/// Takes the `refused` records out of `batches`: returns, per batch that held some, a batch of
/// them (with its partition incarnation) and their errors in its order.
pub(super) fn take_out(
    batches: &mut Vec<Batch>,
    refused: &[(RecordId, String)],
) -> Vec<(Batch, Vec<String>)> {
    let mut taken = Vec::new();
    for batch in batches.iter_mut() {
        let (partition, incarnation) = (batch.partition(), batch.incarnation());
        let why = |offset: i64, index: Option<u32>| {
            refused.iter().find(|(id, _)| {
                id.partition == partition
                    && id.incarnation == incarnation
                    && id.offset == offset
                    && id.index == index
            })
        };
        if !batch
            .iter()
            .any(|record| why(record.offset, record.index).is_some())
        {
            continue;
        }
        let mut parts = batch.split_by(2, |record| {
            usize::from(why(record.offset, record.index).is_some())
        });
        let (kept, out) = (parts[0].take(), parts[1].take());
        let Some(out) = out else { continue };
        let errors = out
            .iter()
            .filter_map(|record| why(record.offset, record.index).map(|(_, error)| error.clone()))
            .collect();
        let mut kept = kept.unwrap_or_else(|| batch.successor(0));
        // What the batch covered goes with the records that stay.
        kept.cover(batch.covered().iter().copied());
        *batch = kept;
        taken.push((out, errors));
    }
    batches.retain(|batch| !batch.is_empty() || !batch.covered().is_empty());
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_records_leave_their_batches_with_their_errors() {
        let mut batch = Batch::new(Arc::from("in"), 0, 3, 4);
        for offset in 10..14 {
            batch.push(offset, None, None, b"{}");
        }
        let mut lone = Batch::new(Arc::from("in"), 1, 3, 1);
        lone.push(7, None, None, b"{}");
        let id = |partition, offset| RecordId {
            partition,
            incarnation: 3,
            offset,
            index: None,
        };
        let refused = [
            (id(0, 11), "too large".to_owned()),
            (id(1, 7), "no key".to_owned()),
            (id(0, 99), "not here".to_owned()),
        ];
        let mut batches = vec![batch, lone];
        let taken = take_out(&mut batches, &refused);
        assert_eq!(batches.len(), 1, "the batch left empty is gone");
        assert_eq!(batches[0].offsets().collect::<Vec<_>>(), [10, 12, 13]);
        assert_eq!(taken[0].0.offsets().collect::<Vec<_>>(), [11]);
        assert_eq!(taken[0].1, ["too large"]);
        assert_eq!(taken[1].1, ["no key"]);

        let mut log = SentLog::default();
        assert_eq!(log.tag(id(0, 1), false, 100), 0);
        log.begin();
        assert_eq!(log.record(0), None, "a tag of an earlier transaction");
        let alone = log.tag(id(0, 2), true, 100);
        assert!(SentLog::sent_alone(alone));
        assert_eq!(log.record(alone), Some((id(0, 2), true, 100)));
    }

    /// Figures of Kafka's format: a 61-byte batch header; a record of key "k" and value "v"
    /// without headers is 7 bytes of body and 1 of length.
    #[test]
    fn a_batch_alone_is_measured_as_the_broker_measures_it() {
        assert_eq!(
            alone_batch_bytes(Some(1), 1, std::iter::empty()),
            61 + 1 + 8
        );
        assert_eq!(alone_batch_bytes(None, 0, std::iter::empty()), 61 + 1 + 6);
        // 4,000 bytes of value and one header of 5 and 3 bytes: a two-byte length.
        let bytes = alone_batch_bytes(Some(2), 4_000, [(5, 3)].into_iter());
        assert_eq!(bytes, 61 + 2 + (3 + 1 + 2 + 2 + 4_000 + 1 + 1 + 5 + 1 + 3));
    }
}
