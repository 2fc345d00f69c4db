//! [`UserCode`]: calls a stage's user function on one record under panic containment, with a
//! retry budget per record. A panic fails only the stage actor (its supervisor restarts it and
//! the partition replays from its acknowledged prefix, so the record is tried again); once a
//! record has made the function panic `budget` times, the next panic sends it to the dead
//! letters with the panic's message instead, and the pipeline goes on. An aggregate (a window's
//! output, offset -1) has no offset to count against: a panic on it sends it to the dead letters
//! at once.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use streamvisor_supervision::Failure;

/// How many times a record may make a user function panic before it goes to the dead letters.
pub(crate) const DEFAULT_RETRY_BUDGET: u32 = 3;

/// (partition, offset, piece index or `u32::MAX`).
type RecordKey = (i32, i64, u32);

/// Panics per record, kept across restarts of the stage's actors (shared by their recipe).
#[derive(Clone, Debug, Default)]
pub struct RecordFailures {
    /// Panics so far and the last panic's message, by (partition, offset, piece index; a
    /// record that is no flat_map's piece has `u32::MAX`). A record past its budget stays
    /// listed: a replay of it goes to the dead letters without another try.
    panics: Arc<DashMap<RecordKey, (u32, String)>>,
    /// Entries in `panics` (checked before any lookup: the common case has none).
    count: Arc<AtomicUsize>,
}

/// A user function's calls for one stage.
#[derive(Clone, Debug)]
pub struct UserCode {
    /// Panics so far, by (partition, offset).
    pub failures: RecordFailures,
    /// Panics a record may cause before it goes to the dead letters.
    pub budget: u32,
}

impl Default for UserCode {
    fn default() -> Self {
        UserCode {
            failures: RecordFailures::default(),
            budget: DEFAULT_RETRY_BUDGET,
        }
    }
}

/// The text of a panic's payload.
pub(super) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| {
            payload
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
        })
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

impl UserCode {
    /// Calls `function` for record `offset` of `partition` (piece `index` of it, when a
    /// flat_map made it: each piece has a budget of its own). `Ok(Ok(value))`: it returned;
    /// `Ok(Err(why))`: it panicked past the record's budget (send the record to the dead
    /// letters with `why`); `Err(failure)`: it panicked within the budget (fail the actor).
    #[inline]
    pub fn call<T>(
        &self,
        partition: i32,
        offset: i64,
        index: Option<u32>,
        function: impl FnOnce() -> T,
    ) -> Result<Result<T, String>, Failure> {
        if offset == crate::record::NO_OFFSET {
            return Ok(Self::call_on_aggregate(function));
        }
        let key = (partition, offset, index.unwrap_or(u32::MAX));
        // The common case: no record is listed, so none is past its budget or to forget.
        let listed = self.failures.count.load(Ordering::Acquire) > 0;
        if listed {
            if let Some(why) = self.past_budget(&key) {
                return Ok(Err(why));
            }
        }
        match catch_unwind(AssertUnwindSafe(function)) {
            Ok(value) => {
                if listed {
                    self.forget(&key);
                }
                Ok(Ok(value))
            }
            Err(payload) => self.panicked(key, payload.as_ref()).map(Err),
        }
    }

    /// An aggregate: derived data with no offset of its own to count tries against (a replay
    /// would compute it again). A panic sends it to the dead letters at once.
    #[cold]
    fn call_on_aggregate<T>(function: impl FnOnce() -> T) -> Result<T, String> {
        catch_unwind(AssertUnwindSafe(function)).map_err(|payload| {
            format!(
                "the stage's function panicked on an aggregate: {}",
                panic_message(payload.as_ref())
            )
        })
    }

    /// Why the record at `key` goes to the dead letters, if it is past its budget.
    #[cold]
    fn past_budget(&self, key: &RecordKey) -> Option<String> {
        let entry = self.failures.panics.get(key)?;
        let (times, why) = entry.value();
        (*times > self.budget).then(|| past_budget(*times, why))
    }

    /// Forgets the panics of a record that passed.
    #[cold]
    fn forget(&self, key: &RecordKey) {
        if self.failures.panics.remove(key).is_some() {
            self.failures.count.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Counts a panic on the record at `key`: `Ok(why)` past its budget (to the dead letters),
    /// else the actor's failure.
    #[cold]
    #[inline(never)]
    fn panicked(
        &self,
        key: RecordKey,
        payload: &(dyn std::any::Any + Send),
    ) -> Result<String, Failure> {
        let why = panic_message(payload);
        let mut entry = self.failures.panics.entry(key).or_insert_with(|| {
            self.failures.count.fetch_add(1, Ordering::AcqRel);
            (0, String::new())
        });
        entry.0 += 1;
        entry.1.clone_from(&why);
        let times = entry.0;
        drop(entry);
        if times > self.budget {
            return Ok(past_budget(times, &why));
        }
        let (partition, offset, _) = key;
        Err(Failure::new(format!(
            "the stage's function panicked on partition {partition} offset {offset} \
             ({times} of {} tries before the dead letters): {why}",
            self.budget + 1
        )))
    }
}

/// The dead letter's reason for a record past its budget.
fn past_budget(times: u32, why: &str) -> String {
    format!("the stage's function panicked {times} times on this record: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_piece_of_a_record_has_a_budget_of_its_own() {
        let code = UserCode {
            failures: RecordFailures::default(),
            budget: 1,
        };
        let boom = || -> u32 { panic!("bad piece") };
        // Piece 1 panics; piece 0 passing on each replay must not wipe its count.
        assert_eq!(code.call(0, 5, Some(0), || 1).expect("passes"), Ok(1));
        code.call(0, 5, Some(1), boom)
            .expect_err("within the budget");
        assert_eq!(code.call(0, 5, Some(0), || 1).expect("passes"), Ok(1));
        let past = code.call(0, 5, Some(1), boom).expect("past the budget");
        assert!(past.is_err_and(|why| why.contains("2 times")));
        // Its sibling is still tried, and passes.
        assert_eq!(code.call(0, 5, Some(0), || 2).expect("passes"), Ok(2));
    }

    #[test]
    fn a_record_gets_its_budget_then_goes_to_the_dead_letters() {
        let code = UserCode {
            failures: RecordFailures::default(),
            budget: 2,
        };
        let boom = || -> u32 { panic!("bad amount") };
        for attempt in 1..=2 {
            let failure = code.call(3, 10, None, boom).expect_err("within the budget");
            assert!(
                failure
                    .to_string()
                    .contains(&format!("({attempt} of 3 tries")),
                "{failure}"
            );
        }
        assert_eq!(code.call(3, 11, None, || 5).expect("no panic"), Ok(5));
        let past = code.call(3, 10, None, boom).expect("past the budget");
        assert_eq!(
            past,
            Err("the stage's function panicked 3 times on this record: bad amount".to_owned())
        );
        // Replayed, it goes straight to the dead letters: the function is not called again.
        let again = code
            .call(3, 10, None, || -> u32 {
                unreachable!("not called past the budget")
            })
            .expect("past the budget");
        assert_eq!(
            again,
            Err("the stage's function panicked 3 times on this record: bad amount".to_owned())
        );
        // A record that panicked once and then passes is forgotten.
        let _ = code.call(1, 1, None, boom);
        assert_eq!(code.call(1, 1, None, || 1).expect("passes"), Ok(1));
        assert_eq!(
            code.failures.count.load(Ordering::Acquire),
            1,
            "only the poison record"
        );
    }
}
