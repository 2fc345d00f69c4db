//! [`ChoreClock`]: when the polling thread does its chores (inputs, pause and resume, partial
//! batches out, gauges, commits): at most every [`CHORES_EVERY`], without reading the clock
//! per record where records come fast (a clock read costs more than a record there).
//!
//! On a slow flow (under [`CLOCK_EVERY_POLLS`] polls a millisecond) it reads the clock at every
//! poll; on a fast one every [`CLOCK_EVERY_POLLS`] polls (so within about a millisecond of the
//! chores being due), and once at the next poll after an input (an ack, a grant) arrives. A
//! poll that comes back empty brings a look on at once. (After a fast spell, a flow that turns
//! slow without inputs can wait [`CLOCK_EVERY_POLLS`] polls once before it is seen as slow.)

use std::time::{Duration, Instant};

/// How often the polling thread looks at its inputs, pauses and resumes, and commits.
pub(super) const CHORES_EVERY: Duration = Duration::from_millis(1);

/// Polls between two clock reads while records come fast (at least this many a millisecond).
const CLOCK_EVERY_POLLS: u32 = 8;

/// Decides, poll by poll, whether the chores are due.
#[derive(Debug)]
pub(super) struct ChoreClock {
    /// When the chores last ran.
    last: Option<Instant>,
    /// Polls since the chores last ran.
    polls: u32,
    /// Polls since the clock was last read.
    since_look: u32,
    /// Polls between two clock reads (1 on a slow flow).
    polls_per_look: u32,
    /// The waiting input has had its look (the next one comes with the count).
    input_looked: bool,
}

impl ChoreClock {
    /// Chores due at the first poll.
    pub(super) fn new() -> Self {
        ChoreClock {
            last: None,
            polls: 0,
            since_look: 0,
            polls_per_look: 1,
            input_looked: false,
        }
    }

    /// Called at every poll: true when the chores are due now. `input_waiting`: an input waits;
    /// `now` reads the clock (called only when the clock is looked at).
    pub(super) fn due(&mut self, input_waiting: bool, now: impl FnOnce() -> Instant) -> bool {
        self.polls = self.polls.saturating_add(1);
        self.since_look = self.since_look.saturating_add(1);
        let input_look = input_waiting && !self.input_looked;
        if !input_look && self.since_look < self.polls_per_look {
            return false;
        }
        self.since_look = 0;
        self.input_looked = input_waiting;
        let now = now();
        let since = self.last.map_or(CHORES_EVERY, |at| now.duration_since(at));
        if since < CHORES_EVERY {
            return false;
        }
        // Fewer than CLOCK_EVERY_POLLS polls a millisecond: a slow flow, where a clock read
        // per poll costs nothing next to the records (and keeps the chores on time).
        let slow = u128::from(self.polls) * CHORES_EVERY.as_nanos()
            < u128::from(CLOCK_EVERY_POLLS) * since.as_nanos();
        self.polls_per_look = if slow { 1 } else { CLOCK_EVERY_POLLS };
        self.polls = 0;
        self.input_looked = false;
        self.last = Some(now);
        true
    }

    /// A poll came back empty: the clock is looked at on the next poll.
    pub(super) fn idle(&mut self) {
        self.since_look = self.polls_per_look;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_polls_read_the_clock_every_few_polls_and_slow_ones_every_poll() {
        let start = Instant::now();
        let at = |micros: u64| start + Duration::from_micros(micros);
        let mut clock = ChoreClock::new();
        let mut reads = 0;
        let mut due = |clock: &mut ChoreClock, input: bool, micros: u64| {
            clock.due(input, || {
                reads += 1;
                at(micros)
            })
        };
        assert!(due(&mut clock, false, 0), "the first poll does the chores");
        // 40 polls in 2 ms: a fast flow (20 a millisecond).
        for poll in 1..40 {
            assert!(
                !due(&mut clock, false, poll * 24),
                "poll {poll}: not due yet"
            );
        }
        assert!(due(&mut clock, false, 2_000));
        assert_eq!(clock.polls_per_look, CLOCK_EVERY_POLLS);
        // Fast: the clock is read every 8 polls; an input gets one look at once.
        for poll in 1..CLOCK_EVERY_POLLS {
            assert!(!due(&mut clock, false, 2_000 + u64::from(poll)));
        }
        assert!(
            !due(&mut clock, false, 2_010),
            "the 8th poll looks: not due yet"
        );
        assert!(
            !due(&mut clock, true, 2_020),
            "an input: one look, within the millisecond"
        );
        assert!(
            !due(&mut clock, true, 5_000),
            "no second look for the same input"
        );
        for _ in 2..CLOCK_EVERY_POLLS {
            assert!(!due(&mut clock, true, 5_000));
        }
        assert!(
            due(&mut clock, true, 5_000),
            "the count brings the next look"
        );
        // 17 polls in 3 ms: slow, so every poll looks.
        assert_eq!(clock.polls_per_look, 1);
        assert!(due(&mut clock, false, 6_500));
        clock.idle();
        assert!(
            !due(&mut clock, false, 6_600),
            "looked, but within the millisecond"
        );
        assert!(reads > 0);
    }
}
