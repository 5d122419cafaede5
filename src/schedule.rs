//! When rounds start (pure). Each agent has a fixed offset within the interval, taken from a
//! stable hash of its pod name, and its rounds start when `(unix time - offset)` is a multiple
//! of the interval. Anchored to the wall clock, so agents that start together (a rollout, a
//! cluster restart) still spread over the interval: 5,000 agents do not send their echoes in
//! the same millisecond. The offset comes from a fixed hash ([`crate::hash`]), so a restarted
//! agent keeps its slot. The first round runs at once (readiness waits for it).

use std::time::Duration;

use crate::hash;

/// The rounds of one agent: every `interval`, at `offset` past each multiple of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    interval: Duration,
    offset: Duration,
}

impl Schedule {
    /// The schedule of the agent in pod `pod_name`.
    pub fn new(pod_name: &str, interval: Duration) -> Schedule {
        let period = interval.as_nanos().max(1);
        let offset = u128::from(hash::of(pod_name)) % period;
        Schedule {
            interval,
            offset: nanos(offset),
        }
    }

    /// How far into each interval this agent's rounds start.
    pub fn offset(&self) -> Duration {
        self.offset
    }

    /// From a round that started at `started` (time since the Unix epoch) to the start of the
    /// next one: the first slot at least half an interval after `started`, so the wait is
    /// between half an interval and one and a half (exactly one interval when rounds start on
    /// their slots). The caller subtracts the round's own (monotonic) duration, and starts at
    /// once when that is more: an overrun never piles rounds up, and a wall clock that jumps
    /// during a round cannot make the agent wait longer than this.
    pub fn delay_to_next(&self, started: Duration) -> Duration {
        let period = self.interval.as_nanos().max(1);
        let offset = self.offset.as_nanos();
        let earliest = started.as_nanos().saturating_add(period / 2);
        // The first slot (offset + k * period) at or after `earliest`.
        let slot = match earliest.checked_sub(offset) {
            None => offset,
            Some(since) => {
                let k = since.div_ceil(period);
                offset.saturating_add(k.saturating_mul(period))
            }
        };
        nanos(slot.saturating_sub(started.as_nanos()))
    }
}

fn nanos(n: u128) -> Duration {
    let secs = u64::try_from(n / 1_000_000_000).unwrap_or(u64::MAX);
    // The remainder is below 10^9, so it always fits.
    let sub = u32::try_from(n % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn offsets_are_stable_within_the_interval_and_spread() {
        let s = Schedule::new("k8s-network-test-daemonset-x7k2p", MIN);
        assert_eq!(s, Schedule::new("k8s-network-test-daemonset-x7k2p", MIN));
        assert!(s.offset() < MIN);
        // 5,000 pod names over 60 one-second buckets: every bucket gets some (a uniform
        // spread puts about 83 in each; a bad hash would leave buckets empty).
        let mut buckets = [0u32; 60];
        for i in 0..5000 {
            let s = Schedule::new(&format!("k8s-network-test-daemonset-{i:05x}"), MIN);
            buckets[s.offset().as_secs() as usize] += 1;
        }
        let (least, most) = (buckets.iter().min(), buckets.iter().max());
        assert!(
            least >= Some(&40) && most <= Some(&140),
            "uneven: {buckets:?}"
        );
    }

    #[test]
    fn rounds_start_on_the_slots_of_the_wall_clock() {
        let s = Schedule::new("agent-a", MIN);
        let slot = |k: u64| Duration::from_secs(1_800_000_000 + 60 * k) + s.offset();
        // A first round at any moment: the next starts on a slot, between half an
        // interval and one and a half later.
        for into in [0, 1, 29, 30, 31, 59] {
            let started = slot(0) + Duration::from_secs(into);
            let next = started + s.delay_to_next(started);
            assert!(
                next == slot(1) || next == slot(2),
                "{into}: {next:?} is no slot"
            );
            let wait = next - started;
            assert!(wait >= MIN / 2 && wait < MIN * 3 / 2, "{into}: {wait:?}");
        }
        // Started on its slot (or a little late, or a little early): the next slot.
        for started in [
            slot(3),
            slot(3) + Duration::from_millis(7),
            slot(3) - Duration::from_millis(3),
        ] {
            assert_eq!(started + s.delay_to_next(started), slot(4));
        }
    }

    #[test]
    fn agents_started_together_spread_over_the_interval() {
        let start = Duration::from_secs(1_800_000_000);
        let mut seconds = std::collections::BTreeSet::new();
        for i in 0..100 {
            let s = Schedule::new(&format!("agent-{i}"), MIN);
            let next = start + s.delay_to_next(start);
            seconds.insert(next.as_secs() % 60);
        }
        assert!(seconds.len() > 40, "second rounds bunched: {seconds:?}");
    }

    #[test]
    fn extreme_times_and_intervals_do_not_overflow() {
        for interval in [Duration::from_secs(1), Duration::from_secs(u64::MAX / 4)] {
            let s = Schedule::new("p", interval);
            for t in [Duration::ZERO, Duration::from_secs(u64::MAX)] {
                let _ = s.delay_to_next(t);
            }
        }
        // Before the offset (a clock near the epoch): the first slot is the offset itself.
        let s = Schedule::new("p", MIN);
        assert!(s.delay_to_next(Duration::ZERO) <= MIN * 3 / 2);
    }
}
