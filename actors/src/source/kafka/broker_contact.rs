//! [`BrokerContact`]: when the source's consumer last heard from a broker, read from librdkafka's
//! statistics (each broker connection's `rxidle`: the time since it last received anything, a
//! fetch answer, a heartbeat answer, a metadata answer). A healthy consumer hears from its
//! brokers at least once per heartbeat interval (3 s by default, even with every partition
//! paused); a broker that is stopped, dead or unreachable leaves the silence growing. The
//! runtime reports the pipeline unready past [`BROKER_SILENCE_LIMIT`], while librdkafka keeps
//! retrying in place (no actor restarts for a broker that is away).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A silence longer than this makes the pipeline unready: over three heartbeat intervals of
/// librdkafka's default (3 s) and twice a KIP-848 group's default (5 s). See [`silence_limit`].
pub const BROKER_SILENCE_LIMIT: Duration = Duration::from_secs(10);

/// The silence limit for a consumer with these pass-through `properties`: three heartbeat
/// intervals when `heartbeat.interval.ms` sets them longer than librdkafka's default (with every
/// partition paused, heartbeats are all a healthy broker answers), else [`BROKER_SILENCE_LIMIT`].
pub fn silence_limit(properties: &BTreeMap<String, String>) -> Duration {
    let heartbeat = properties
        .get("heartbeat.interval.ms")
        .and_then(|ms| ms.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_millis);
    BROKER_SILENCE_LIMIT.max(heartbeat * 3)
}

/// When the consumer last heard from a broker; clones share it (the source's settings carry it
/// across the source's restarts, the runtime reads it for readiness).
#[derive(Clone, Debug)]
pub struct BrokerContact {
    /// What `heard_ms` counts from.
    base: Instant,
    /// Milliseconds from `base` to the last contact, plus one (0: no statistics yet).
    heard_ms: Arc<AtomicU64>,
}

impl Default for BrokerContact {
    fn default() -> Self {
        BrokerContact {
            base: Instant::now(),
            heard_ms: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// Clones share one contact: all are equal (as [`TransactionFence`](crate::sink::fence)).
impl PartialEq for BrokerContact {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for BrokerContact {}

impl BrokerContact {
    /// How long no broker has answered; none before the first statistics of a consumer.
    pub fn silence(&self) -> Option<Duration> {
        self.silence_at(Instant::now())
    }

    fn silence_at(&self, now: Instant) -> Option<Duration> {
        match self.heard_ms.load(Ordering::Acquire) {
            0 => None,
            heard => {
                let heard = self.base + Duration::from_millis(heard - 1);
                Some(now.saturating_duration_since(heard))
            }
        }
    }

    /// A consumer starts: its silence counts from now (a restarted source does not inherit the
    /// silence of its predecessor's last statistics).
    pub(crate) fn starting(&self) {
        self.heard_at(Instant::now());
    }

    /// Takes in a consumer's statistics, received at `now`.
    pub(crate) fn observe(&self, statistics: &rdkafka::Statistics, now: Instant) {
        self.observe_idle(statistics.brokers.values().map(|broker| broker.rxidle), now);
    }

    /// Takes in each broker connection's time since it last received (microseconds; -1: never),
    /// as of `now`: the least idle one says when a broker last answered.
    fn observe_idle(&self, rxidle_us: impl Iterator<Item = i64>, now: Instant) {
        if let Some(idle_us) = rxidle_us.filter(|idle| *idle >= 0).min() {
            let heard = now
                .checked_sub(Duration::from_micros(idle_us.unsigned_abs()))
                .unwrap_or(self.base);
            // Statistics of a restarted source's old consumer may come late: never go back.
            self.heard_at(heard);
        }
    }

    fn heard_at(&self, at: Instant) {
        self.heard_ms
            .fetch_max(self.ms_since_base(at), Ordering::AcqRel);
    }

    fn ms_since_base(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_millis() as u64 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_outlasts_three_heartbeats() {
        let with = |ms: &str| {
            silence_limit(&BTreeMap::from([(
                "heartbeat.interval.ms".to_owned(),
                ms.to_owned(),
            )]))
        };
        assert_eq!(silence_limit(&BTreeMap::new()), BROKER_SILENCE_LIMIT);
        assert_eq!(with("1000"), BROKER_SILENCE_LIMIT);
        assert_eq!(with("5000"), Duration::from_secs(15));
    }

    #[test]
    fn the_silence_is_since_the_least_idle_broker_last_received_and_never_goes_back() {
        let contact = BrokerContact::default();
        assert_eq!(contact.silence(), None, "no statistics yet");
        let now = contact.base + Duration::from_secs(100);
        contact.observe_idle([-1, -1].into_iter(), now);
        assert_eq!(contact.silence_at(now), None, "no broker ever answered");
        contact.observe_idle([7_000_000, 2_000_000, -1].into_iter(), now);
        assert_eq!(
            contact.silence_at(now + Duration::from_secs(1)),
            Some(Duration::from_secs(3))
        );
        // Older news never moves the contact back.
        contact.observe_idle([9_000_000].into_iter(), now);
        assert_eq!(
            contact.silence_at(now + Duration::from_secs(1)),
            Some(Duration::from_secs(3))
        );
        contact.observe_idle([0].into_iter(), now + Duration::from_secs(12));
        assert_eq!(
            contact.silence_at(now + Duration::from_secs(12)),
            Some(Duration::ZERO)
        );
    }
}
