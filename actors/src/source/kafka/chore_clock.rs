//! [`ChoreClock`]: when the polling thread does its chores (inputs, pause and resume, partial
//! batches out, gauges, commits): at most every [`CHORES_EVERY`], without reading the clock
//! per record where records come fast (a clock read costs more than a record there).

use std::time::{Duration, Instant};

/// How often the polling thread looks at its inputs, pauses and resumes, and commits.
pub(super) const CHORES_EVERY: Duration = Duration::from_millis(1);

/// Polls between two clock reads while records come fast (at least this many a millisecond):
/// the chores then run within about a millisecond of being due.
const CLOCK_EVERY_POLLS: u32 = 8;

/// Decides, poll by poll, whether the chores are due.
#[derive(Debug)]
pub(super) struct ChoreClock {
    last: Option<Instant>,
    polls: u32,
    polls_per_look: u32,
}

impl ChoreClock {
    /// Chores due at the first poll.
    pub(super) fn new() -> Self {
        ChoreClock {
            last: None,
            polls: 0,
            polls_per_look: 1,
        }
    }

    /// Called at every poll: true when the chores are due now. `input_waiting`: an input (an
    /// ack, a grant) waits, so the clock is read at once.
    pub(super) fn due(&mut self, input_waiting: bool) -> bool {
        self.polls = self.polls.saturating_add(1);
        if !input_waiting && self.polls < self.polls_per_look {
            return false;
        }
        let now = Instant::now();
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
        self.last = Some(now);
        true
    }

    /// A poll came back empty: the chores are looked at on the next poll.
    pub(super) fn idle(&mut self) {
        self.polls = self.polls_per_look;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_polls_read_the_clock_every_few_polls_and_slow_ones_every_poll() {
        let mut clock = ChoreClock::new();
        assert!(clock.due(false), "the first poll does the chores");
        // Many polls within a millisecond: not due, whatever the clock says.
        for _ in 0..CLOCK_EVERY_POLLS * 4 {
            assert!(!clock.due(false));
        }
        std::thread::sleep(CHORES_EVERY * 2);
        // Polls are counted since the last chores: 33 in 2 ms is fast.
        assert!(clock.due(false));
        assert_eq!(clock.polls_per_look, CLOCK_EVERY_POLLS);
        std::thread::sleep(CHORES_EVERY * 2);
        assert!(!clock.due(false), "one poll in: the clock is not read yet");
        assert!(clock.due(true), "an input waits: read the clock at once");
        assert_eq!(clock.polls_per_look, 1, "2 polls in 2 ms is slow");
        std::thread::sleep(CHORES_EVERY * 2);
        assert!(clock.due(false), "slow: every poll looks");
        clock.idle();
        assert!(!clock.due(false), "due, but within the millisecond");
    }
}
