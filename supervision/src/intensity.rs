//! Restart intensity: at most `max_restarts` restarts within a sliding window.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Remembers when a supervisor restarted children, to tell when it must give up.
#[derive(Debug)]
pub(crate) struct RestartIntensity {
    max_restarts: u32,
    within: Duration,
    restarts: VecDeque<Instant>,
}

impl RestartIntensity {
    pub(crate) fn new(max_restarts: u32, within: Duration) -> Self {
        RestartIntensity {
            max_restarts,
            within,
            restarts: VecDeque::new(),
        }
    }

    /// Records a restart at `now`; false when it is one too many for the window (escalate).
    pub(crate) fn allow_restart(&mut self, now: Instant) -> bool {
        while let Some(oldest) = self.restarts.front() {
            if now.saturating_duration_since(*oldest) >= self.within {
                self.restarts.pop_front();
            } else {
                break;
            }
        }
        self.restarts.push_back(now);
        self.restarts.len() <= self.max_restarts as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_max_restarts_in_window_then_refuses() {
        let start = Instant::now();
        let mut intensity = RestartIntensity::new(5, Duration::from_secs(10));
        for i in 0..5 {
            assert!(
                intensity.allow_restart(start + Duration::from_millis(i)),
                "restart {i}"
            );
        }
        assert!(!intensity.allow_restart(start + Duration::from_millis(5)));
    }

    #[test]
    fn old_restarts_leave_the_window() {
        let start = Instant::now();
        let mut intensity = RestartIntensity::new(2, Duration::from_secs(1));
        assert!(intensity.allow_restart(start));
        assert!(intensity.allow_restart(start + Duration::from_millis(500)));
        assert!(!intensity.allow_restart(start + Duration::from_millis(600)));
        // At 1,550 ms the restarts at 0 and 500 ms have left the window; 600 ms is still in it.
        assert!(intensity.allow_restart(start + Duration::from_millis(1550)));
        assert!(!intensity.allow_restart(start + Duration::from_millis(1560)));
    }

    #[test]
    fn zero_restarts_escalates_at_the_first() {
        let mut intensity = RestartIntensity::new(0, Duration::from_secs(1));
        assert!(!intensity.allow_restart(Instant::now()));
    }
}
