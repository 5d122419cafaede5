//! Randomness for the watches (pure apart from the seed): exponential back-off with full
//! jitter, capped, so thousands of agents that lost the API at once do not come back at
//! once; and randomized watch timeouts, so their watches do not all end together.

use std::time::Duration;

/// A small xorshift generator: jitter needs spread, not cryptographic strength.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from the clock and the process and thread, so agents and watches differ.
    pub fn from_entropy() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&std::thread::current().id(), &mut h);
        let thread = std::hash::Hasher::finish(&h);
        Rng::seeded(nanos ^ thread ^ u64::from(std::process::id()).rotate_left(32))
    }

    pub fn seeded(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A duration uniformly in `[low, high]`.
    pub fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let (low, high) = (low.min(high), low.max(high));
        let span = u64::try_from((high - low).as_millis()).unwrap_or(u64::MAX);
        let pick = self.next_u64() % span.saturating_add(1);
        low + Duration::from_millis(pick)
    }
}

/// Exponential back-off with full jitter: the n-th consecutive failure waits a random time
/// in `[0, min(cap, base * 2^n)]`; a success starts over.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap,
            failures: 0,
        }
    }

    /// The wait before the next attempt after one more failure.
    pub fn fail(&mut self, rng: &mut Rng) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32.checked_shl(self.failures.min(20)).unwrap_or(u32::MAX))
            .min(self.cap);
        self.failures = self.failures.saturating_add(1);
        rng.between(Duration::ZERO, ceiling)
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let mut rng = Rng::seeded(7);
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let waits: Vec<Duration> = (0..40).map(|_| b.fail(&mut rng)).collect();
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(30)));
        assert!(waits[0] <= Duration::from_secs(1));
        assert!(waits[3] <= Duration::from_secs(8));
        // Jittered: later waits are not all the same.
        let late: std::collections::BTreeSet<_> = waits[10..].iter().collect();
        assert!(late.len() > 10, "{late:?}");
        b.reset();
        assert_eq!(b.failures(), 0);
        assert!(b.fail(&mut rng) <= Duration::from_secs(1));
    }

    #[test]
    fn between_stays_in_range() {
        let mut rng = Rng::seeded(1);
        let (lo, hi) = (Duration::from_secs(1800), Duration::from_secs(3600));
        let picks: Vec<Duration> = (0..1000).map(|_| rng.between(lo, hi)).collect();
        assert!(picks.iter().all(|p| *p >= lo && *p <= hi));
        let mean = picks.iter().sum::<Duration>() / 1000;
        assert!(
            mean > Duration::from_secs(2500) && mean < Duration::from_secs(2900),
            "{mean:?}"
        );
        assert_eq!(rng.between(hi, hi), hi);
    }
}
