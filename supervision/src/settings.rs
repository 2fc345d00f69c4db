//! Supervisor settings: strategy, restart intensity and backoff, validated before use.

use std::time::Duration;

use crate::error::SupervisionError;
use crate::policy::SupervisionStrategy;

/// The longest backoff accepted (restarting a child once an hour is as slow as it gets).
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Exponential backoff between restarts of a child: `min * factor^n`, capped at `max`, plus a
/// random jitter of up to `jitter` times that delay (it only adds). The exponent `n` goes back to
/// zero once the child has not failed for `reset_after`.
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    /// The first delay.
    pub min: Duration,
    /// The largest delay before jitter.
    pub max: Duration,
    /// Growth per consecutive restart (at least 1.0).
    pub factor: f64,
    /// Jitter as a fraction of the delay, in `[0, 1]`.
    pub jitter: f64,
    /// The quiet period after which the delay starts again from `min`.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            min: Duration::from_millis(20),
            max: Duration::from_secs(10),
            factor: 2.0,
            jitter: 0.1,
            reset_after: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// Exponential backoff without jitter, for retries in place (a sink holding its records
    /// while its target is away): `min`, times `factor` per failure, at most `max`.
    pub fn retrying(min: Duration, max: Duration, factor: f64) -> Self {
        Backoff {
            min,
            max,
            factor,
            jitter: 0.0,
            reset_after: MAX_BACKOFF,
        }
    }

    /// The wait after the `failures`-th failure in a row (1-based), before jitter:
    /// `min * factor^(failures - 1)`, at most `max`.
    pub fn delay(&self, failures: u32) -> Duration {
        let exponent = i32::try_from(failures.saturating_sub(1)).unwrap_or(i32::MAX);
        // A factor below 1 (or NaN), which validation refuses, never shrinks the delay.
        let factor = if self.factor >= 1.0 { self.factor } else { 1.0 };
        let nanos = self.min.as_nanos() as f64 * factor.powi(exponent);
        if !nanos.is_finite() || nanos >= self.max.as_nanos() as f64 {
            self.max
        } else {
            Duration::from_nanos(nanos as u64)
        }
    }

    /// No delay at all (tests that count restarts, not time).
    pub fn none() -> Self {
        Backoff {
            min: Duration::ZERO,
            max: Duration::ZERO,
            factor: 1.0,
            jitter: 0.0,
            reset_after: Duration::from_secs(30),
        }
    }

    /// Checks the ranges; errors name the setting as `supervision.backoff.<field>`.
    pub fn validate(&self) -> Result<(), SupervisionError> {
        if self.max > MAX_BACKOFF {
            return Err(SupervisionError::InvalidSetting {
                setting: "supervision.backoff.max",
                why: format!("{:?} is above the limit of {MAX_BACKOFF:?}", self.max),
            });
        }
        if self.reset_after > MAX_BACKOFF * 24 {
            return Err(SupervisionError::InvalidSetting {
                setting: "supervision.backoff.reset_after",
                why: format!(
                    "{:?} is above the limit of {:?}",
                    self.reset_after,
                    MAX_BACKOFF * 24
                ),
            });
        }
        if self.min > self.max {
            return Err(SupervisionError::InvalidSetting {
                setting: "supervision.backoff.min",
                why: format!(
                    "{:?} is above supervision.backoff.max {:?}",
                    self.min, self.max
                ),
            });
        }
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            return Err(SupervisionError::InvalidSetting {
                setting: "supervision.backoff.factor",
                why: format!("{} must be a finite number of at least 1.0", self.factor),
            });
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(SupervisionError::InvalidSetting {
                setting: "supervision.backoff.jitter",
                why: format!("{} must lie between 0.0 and 1.0", self.jitter),
            });
        }
        Ok(())
    }
}

/// How a supervisor treats its children's failures.
#[derive(Clone, Debug, PartialEq)]
pub struct SupervisorSettings {
    /// Which children restart together.
    pub strategy: SupervisionStrategy,
    /// At most this many restarts (kills included) within `within`; one more escalates.
    pub max_restarts: u32,
    /// The window of the restart intensity.
    pub within: Duration,
    /// Delay between a failure and the restart.
    pub backoff: Backoff,
}

impl Default for SupervisorSettings {
    fn default() -> Self {
        SupervisorSettings {
            strategy: SupervisionStrategy::OneForOne,
            max_restarts: 20,
            within: Duration::from_secs(30),
            backoff: Backoff::default(),
        }
    }
}

impl SupervisorSettings {
    /// Checks every setting; errors name it as in the TOML pipeline (`supervision.within`, ...).
    pub fn validate(&self) -> Result<(), SupervisionError> {
        if self.within.is_zero() || self.within > Duration::from_secs(86_400) {
            return Err(SupervisionError::InvalidSetting {
                setting: "supervision.within",
                why: format!(
                    "{:?}: the restart intensity window must be longer than zero and at most a day",
                    self.within
                ),
            });
        }
        self.backoff.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_settings_name_the_setting() {
        let zero_window = SupervisorSettings {
            within: Duration::ZERO,
            ..SupervisorSettings::default()
        };
        let error = zero_window.validate().expect_err("zero window");
        assert!(error.to_string().contains("supervision.within"), "{error}");

        let inverted = SupervisorSettings {
            backoff: Backoff {
                min: Duration::from_secs(2),
                max: Duration::from_secs(1),
                ..Backoff::default()
            },
            ..SupervisorSettings::default()
        };
        let error = inverted.validate().expect_err("min above max");
        assert!(
            error.to_string().contains("supervision.backoff.min"),
            "{error}"
        );

        let shrinking = Backoff {
            factor: 0.5,
            ..Backoff::default()
        };
        let error = shrinking.validate().expect_err("factor below one");
        assert!(
            error.to_string().contains("supervision.backoff.factor"),
            "{error}"
        );

        assert!(SupervisorSettings::default().validate().is_ok());
    }
}
