//! A token bucket ([`Throttle`]): at most `rate` tokens per `per`, with bursts of up to `burst`
//! tokens (Akka Streams' `throttle(cost, per, maximumBurst)` in its shaping mode: the caller
//! waits rather than fails).
//!
//! The rate is an integer count per [`Duration`] (`rate = 100, per = "1s"`) rather than an
//! `f64` per second, so that the bucket's arithmetic is exact: it counts in units of
//! 1/`per`-nanoseconds of a token, each nanosecond adds `rate` units, a token costs
//! `per`-in-nanoseconds units. Waits are rounded up to the nanosecond, so that waiting exactly
//! the wait given always suffices.
//!
//! The bucket starts full. A batch of `n > burst` tokens is taken as soon as the bucket is full,
//! leaving it in debt (negative): big batches pass, at the rate, instead of never.
//! The clock is passed in (`now`), never read.

use std::time::{Duration, Instant};

use super::error::OperatorError;

/// A token bucket: `rate` tokens per `per`, holding at most `burst` tokens.
#[derive(Debug, Clone)]
pub(crate) struct Throttle {
    /// Units added per nanosecond: `rate`.
    rate: i128,
    /// Units per token: `per` in nanoseconds.
    unit: i128,
    burst: u32,
    /// Units in the bucket; negative after a batch larger than what it held.
    level: i128,
    /// When `level` was last brought up to date; `None` until the first take.
    last: Option<Instant>,
}

impl Throttle {
    /// A full bucket of `burst` tokens refilled at `rate` tokens per `per`. A zero `rate`,
    /// `per` or `burst` is [`OperatorError::Zero`].
    pub(crate) fn new(rate: u32, per: Duration, burst: u32) -> Result<Self, OperatorError> {
        let zero = |setting| OperatorError::Zero {
            operator: "throttle",
            setting,
        };
        if rate == 0 {
            return Err(zero("rate"));
        }
        if per.is_zero() {
            return Err(zero("per"));
        }
        if burst == 0 {
            return Err(zero("burst"));
        }
        // `per` is at most u64::MAX seconds, under 2^94 nanoseconds: it fits in an i128, and so
        // does a burst (< 2^32) of it.
        let unit = i128::try_from(per.as_nanos()).unwrap_or(i128::MAX >> 32);
        Ok(Throttle {
            rate: i128::from(rate),
            unit,
            burst,
            level: i128::from(burst) * unit,
            last: None,
        })
    }

    /// Takes `n` tokens at `now`, or says how long until they are there (nothing is taken then;
    /// take again after the wait). `n` up to `burst` needs `n` tokens in the bucket; `n` above
    /// `burst` needs a full bucket and leaves it in debt. Taking zero tokens always succeeds.
    pub(crate) fn try_take(&mut self, n: u32, now: Instant) -> Result<(), Duration> {
        if n == 0 {
            return Ok(());
        }
        self.refill(now);
        let needed = i128::from(n.min(self.burst)) * self.unit;
        if self.level >= needed {
            self.level -= i128::from(n) * self.unit;
            Ok(())
        } else {
            Err(self.wait_for(needed - self.level))
        }
    }

    /// Whole tokens in the bucket at `now` (negative while in debt).
    #[cfg(test)]
    pub(crate) fn tokens(&mut self, now: Instant) -> i64 {
        self.refill(now);
        let tokens = self.level.div_euclid(self.unit);
        i64::try_from(tokens).unwrap_or(i64::MIN)
    }

    /// Adds what accrued since the last call, up to a full bucket. A `now` earlier than the
    /// last one adds nothing.
    fn refill(&mut self, now: Instant) {
        let elapsed = match self.last {
            Some(last) => now.saturating_duration_since(last),
            None => Duration::ZERO,
        };
        if self.last.is_none_or(|last| now > last) {
            self.last = Some(now);
        }
        let nanos = i128::try_from(elapsed.as_nanos()).unwrap_or(i128::MAX);
        let full = i128::from(self.burst) * self.unit;
        self.level = self
            .level
            .saturating_add(nanos.saturating_mul(self.rate))
            .min(full);
    }

    /// How long until `missing` units accrue, rounded up to the nanosecond.
    fn wait_for(&self, missing: i128) -> Duration {
        let nanos = (missing + self.rate - 1) / self.rate;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// 10 tokens a second (one per 100 ms), bursts of 5.
    fn ten_a_second() -> Throttle {
        Throttle::new(10, Duration::from_secs(1), 5).expect("positive settings")
    }

    #[test]
    fn starts_full_then_waits_for_each_token() {
        let base = Instant::now();
        let mut throttle = ten_a_second();
        assert_eq!(throttle.try_take(5, base), Ok(()));
        assert_eq!(throttle.try_take(1, base), Err(100 * MS));
        assert_eq!(throttle.try_take(1, base + 40 * MS), Err(60 * MS));
        assert_eq!(throttle.try_take(2, base + 40 * MS), Err(160 * MS));
        assert_eq!(throttle.try_take(1, base + 100 * MS), Ok(()));
        assert_eq!(throttle.try_take(1, base + 100 * MS), Err(100 * MS));
    }

    #[test]
    fn refills_up_to_burst_only() {
        let base = Instant::now();
        let mut throttle = ten_a_second();
        assert_eq!(throttle.try_take(5, base), Ok(()));
        let later = base + Duration::from_secs(60);
        assert_eq!(throttle.tokens(later), 5);
        assert_eq!(throttle.try_take(5, later), Ok(()));
        assert_eq!(throttle.try_take(1, later), Err(100 * MS));
    }

    #[test]
    fn a_batch_over_burst_waits_for_a_full_bucket_and_leaves_debt() {
        let base = Instant::now();
        let mut throttle = ten_a_second();
        assert_eq!(throttle.try_take(2, base), Ok(()));
        // 3 tokens held, 5 (a full bucket) needed: 200 ms.
        assert_eq!(throttle.try_take(20, base), Err(200 * MS));
        assert_eq!(throttle.try_take(20, base + 200 * MS), Ok(()));
        assert_eq!(throttle.tokens(base + 200 * MS), -15);
        // 16 tokens to accrue before the next one can be taken: 1.6 s, the rate kept.
        assert_eq!(throttle.try_take(1, base + 200 * MS), Err(1_600 * MS));
        assert_eq!(throttle.try_take(1, base + 1_800 * MS), Ok(()));
    }

    #[test]
    fn waits_round_up_to_the_nanosecond_and_suffice() {
        let base = Instant::now();
        let mut throttle = Throttle::new(3, Duration::from_secs(1), 1).expect("positive settings");
        assert_eq!(throttle.try_take(1, base), Ok(()));
        let wait = Duration::from_nanos(333_333_334);
        assert_eq!(throttle.try_take(1, base), Err(wait));
        assert_eq!(
            throttle.try_take(1, base + wait - Duration::from_nanos(1)),
            Err(Duration::from_nanos(1))
        );
        assert_eq!(throttle.try_take(1, base + wait), Ok(()));
    }

    #[test]
    fn zero_tokens_and_a_clock_going_back() {
        let base = Instant::now() + Duration::from_secs(1);
        let mut throttle = ten_a_second();
        assert_eq!(throttle.try_take(5, base), Ok(()));
        assert_eq!(throttle.try_take(0, base), Ok(()));
        // An earlier `now` adds nothing and does not move the clock back.
        assert_eq!(throttle.try_take(1, base - 500 * MS), Err(100 * MS));
        assert_eq!(throttle.try_take(1, base + 100 * MS), Ok(()));
    }

    #[test]
    fn zero_settings_are_refused() {
        let second = Duration::from_secs(1);
        let zero = |setting| {
            Some(OperatorError::Zero {
                operator: "throttle",
                setting,
            })
        };
        assert_eq!(Throttle::new(0, second, 1).err(), zero("rate"));
        assert_eq!(Throttle::new(1, Duration::ZERO, 1).err(), zero("per"));
        assert_eq!(Throttle::new(1, second, 0).err(), zero("burst"));
    }

    #[test]
    fn huge_settings_do_not_overflow() {
        let base = Instant::now();
        let per = Duration::from_secs(u64::MAX);
        let mut throttle = Throttle::new(u32::MAX, per, u32::MAX).expect("positive settings");
        assert_eq!(throttle.try_take(u32::MAX, base), Ok(()));
        assert!(throttle.try_take(1, base).is_err());
        let mut fast = Throttle::new(u32::MAX, Duration::from_nanos(1), u32::MAX).expect("valid");
        assert_eq!(fast.try_take(u32::MAX, base), Ok(()));
        assert_eq!(
            fast.try_take(u32::MAX, base + Duration::from_nanos(1)),
            Ok(())
        );
    }
}
