//! Per-child backoff state: the delay before the next restart.

use std::time::{Duration, Instant};

use crate::settings::Backoff;

/// Counts a child's consecutive restarts and turns them into delays.
#[derive(Debug, Default)]
pub(crate) struct BackoffState {
    streak: u32,
    last_failure: Option<Instant>,
}

impl BackoffState {
    /// The delay before restarting after a failure at `now`; `unit_random` in `[0, 1)` draws the
    /// jitter.
    pub(crate) fn next_delay(
        &mut self,
        settings: &Backoff,
        now: Instant,
        unit_random: f64,
    ) -> Duration {
        if let Some(last) = self.last_failure {
            if now.saturating_duration_since(last) >= settings.reset_after {
                self.streak = 0;
            }
        }
        self.last_failure = Some(now);
        let base = settings.delay(self.streak.saturating_add(1));
        self.streak = self.streak.saturating_add(1);
        base + base.mul_f64(settings.jitter * unit_random.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Backoff {
        Backoff {
            min: Duration::from_millis(20),
            max: Duration::from_millis(1000),
            factor: 2.0,
            jitter: 0.5,
            reset_after: Duration::from_secs(5),
        }
    }

    #[test]
    fn delays_double_up_to_max_and_jitter_only_adds() {
        let settings = settings();
        let mut state = BackoffState::default();
        let start = Instant::now();
        let expected = [20u64, 40, 80, 160, 320, 640, 1000, 1000];
        for (i, base) in expected.iter().enumerate() {
            let now = start + Duration::from_millis(i as u64);
            let delay = state.next_delay(&settings, now, 0.999);
            let base = Duration::from_millis(*base);
            assert!(delay >= base, "restart {i}: {delay:?} below {base:?}");
            assert!(
                delay <= base.mul_f64(1.5),
                "restart {i}: {delay:?} above 1.5x {base:?}"
            );
        }
    }

    #[test]
    fn retries_in_place_keep_their_schedule_and_never_shrink() {
        let millis = |backoff: &Backoff| -> Vec<u128> {
            (1..=8).map(|n| backoff.delay(n).as_millis()).collect()
        };
        let postgres = Backoff::retrying(Duration::from_millis(100), Duration::from_secs(5), 2.0);
        assert_eq!(
            millis(&postgres),
            [100, 200, 400, 800, 1600, 3200, 5000, 5000]
        );
        let file = Backoff::retrying(Duration::from_millis(20), Duration::from_secs(5), 2.0);
        assert_eq!(millis(&file), [20, 40, 80, 160, 320, 640, 1280, 2560]);
        assert_eq!(file.delay(9).as_millis(), 5000);
        for factor in [0.5, f64::NAN] {
            let shrinking =
                Backoff::retrying(Duration::from_millis(100), Duration::from_secs(5), factor);
            assert_eq!(millis(&shrinking), [100; 8], "factor {factor}");
        }
    }

    #[test]
    fn quiet_period_resets_the_streak() {
        let settings = settings();
        let mut state = BackoffState::default();
        let start = Instant::now();
        state.next_delay(&settings, start, 0.0);
        state.next_delay(&settings, start, 0.0);
        let third = state.next_delay(&settings, start, 0.0);
        assert_eq!(third, Duration::from_millis(80));
        let later = start + Duration::from_secs(6);
        assert_eq!(
            state.next_delay(&settings, later, 0.0),
            Duration::from_millis(20)
        );
    }
}
