//! Exactly-once never passes the acknowledged prefix: before a transaction commits, its sink
//! asks the source where each partition's acknowledged prefix would end with the transaction's
//! records acknowledged too, and commits no offset past that end. A record of the transaction
//! past a gap (an earlier record still in flight: a dead letter on its way, a slower branch
//! into the same sink, an unordered map_async) is held for a later transaction, which commits
//! it once the gap is closed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::pipeline::acks::AckRouter;
use crate::record::Batch;
use crate::source::kafka::SourceInput;

/// How long a source may take to answer (its polling thread answers between polls).
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// The end of each partition's acknowledged prefix, by (topic, partition).
pub(super) type Prefixes = BTreeMap<(Arc<str>, i32), i64>;

/// The offsets a transaction would acknowledge, by (partition, incarnation).
type Asked = BTreeMap<(i32, u64), Vec<i64>>;

/// Asks the sources of `batches` where each of their partitions' acknowledged prefix would end
/// with every record of `batches` acknowledged. A partition missing from the answer may not
/// commit (rewound since, or not read here).
pub(super) fn ask(acks: &AckRouter, batches: &[Batch]) -> Result<Prefixes, String> {
    let mut asked: BTreeMap<Arc<str>, Asked> = BTreeMap::new();
    for batch in batches {
        asked
            .entry(Arc::clone(batch.topic()))
            .or_default()
            .entry((batch.partition(), batch.incarnation()))
            .or_default()
            .extend(batch.ack_offsets());
    }
    let mut prefixes = Prefixes::new();
    for (topic, partitions) in asked {
        let Some(source) = acks.source(&topic) else {
            continue; // its source stopped: nothing of it may commit
        };
        let (reply, answer) = std::sync::mpsc::channel();
        let asked = partitions
            .into_iter()
            .map(|((partition, incarnation), offsets)| (partition, incarnation, offsets))
            .collect();
        if !source.send(SourceInput::AckedPrefix { asked, reply }) {
            continue;
        }
        let answers = answer.recv_timeout(ANSWER_WITHIN).map_err(|_| {
            format!("the source of {topic} did not say within {ANSWER_WITHIN:?} where its acknowledged prefixes end")
        })?;
        for (partition, end) in answers {
            if let Some(end) = end {
                prefixes.insert((Arc::clone(&topic), partition), end);
            }
        }
    }
    Ok(prefixes)
}

/// Takes out of `batches` the records at or past their partition's prefix end (all of a
/// partition the answer left out) and returns them, to be held for a later transaction. A batch
/// that covers offsets of absorbed records (a window's aggregates) stays or goes whole.
pub(super) fn hold_past(batches: &mut Vec<Batch>, prefixes: &Prefixes) -> Vec<Batch> {
    let mut held = Vec::new();
    let mut kept = Vec::with_capacity(batches.len());
    for mut batch in std::mem::take(batches) {
        let end = prefixes
            .get(&(Arc::clone(batch.topic()), batch.partition()))
            .copied()
            .unwrap_or(i64::MIN);
        if batch.ack_offsets().all(|offset| offset < end) {
            kept.push(batch);
        } else if !batch.covered().is_empty() || batch.ack_offsets().all(|offset| offset >= end) {
            held.push(batch);
        } else {
            let mut parts = batch.split_by(2, |record| usize::from(record.offset >= end));
            kept.extend(parts[0].take());
            held.extend(parts[1].take());
        }
    }
    *batches = kept;
    held
}

/// The offset to commit for each partition of `batches`: the end of its acknowledged prefix
/// with them (past the last record of it in the transaction, since all of them lie below it,
/// see [`hold_past`]; and past offsets no record stands for, such as transaction markers).
pub(super) fn next_offsets(
    batches: &[Batch],
    prefixes: &Prefixes,
) -> BTreeMap<(Arc<str>, i32), i64> {
    let mut next: BTreeMap<(Arc<str>, i32), i64> = BTreeMap::new();
    for batch in batches {
        if let Some(last) = batch.ack_offsets().max() {
            let at = (Arc::clone(batch.topic()), batch.partition());
            let end = prefixes.get(&at).copied().unwrap_or(last + 1).max(last + 1);
            let entry = next.entry(at).or_default();
            *entry = (*entry).max(end);
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(partition: i32, offsets: std::ops::Range<i64>) -> Batch {
        let mut batch = Batch::new(Arc::from("in"), partition, 1, 8);
        for offset in offsets {
            batch.push(offset, None, None, b"{}");
        }
        batch
    }

    #[test]
    fn records_past_a_gap_are_held_and_commits_stop_below_it() {
        let mut batches = vec![batch(0, 0..5), batch(0, 6..100), batch(1, 0..10)];
        let prefixes = Prefixes::from([
            ((Arc::from("in"), 0), 5), // offset 5 is in flight elsewhere
            ((Arc::from("in"), 1), 10),
        ]);
        let held = hold_past(&mut batches, &prefixes);
        assert_eq!(held.len(), 1);
        assert_eq!(
            held[0].offsets().collect::<Vec<_>>(),
            (6..100).collect::<Vec<_>>()
        );
        let next = next_offsets(&batches, &prefixes);
        assert_eq!(
            next[&(Arc::from("in"), 0)],
            5,
            "at most 5 while 5 is in flight"
        );
        assert_eq!(next[&(Arc::from("in"), 1)], 10);
        let past_a_marker = Prefixes::from([((Arc::from("in"), 0), 6)]);
        assert_eq!(
            next_offsets(&[batch(0, 0..5)], &past_a_marker)[&(Arc::from("in"), 0)],
            6,
            "the prefix's end, past a marker at 5"
        );

        // A batch across the gap splits; a partition the source did not answer for is held.
        let mut across = vec![batch(0, 3..8), batch(2, 0..4)];
        let held = hold_past(&mut across, &Prefixes::from([((Arc::from("in"), 0), 5)]));
        assert_eq!(across[0].offsets().collect::<Vec<_>>(), [3, 4]);
        assert_eq!(held[0].offsets().collect::<Vec<_>>(), [5, 6, 7]);
        assert_eq!(held[1].partition(), 2);
    }
}
