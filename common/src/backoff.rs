//! Capped exponential back-off with jitter, for retries of transient errors.

use std::time::Duration;

/// Capped exponential back-off with ±25 % jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            next: min,
            min,
            max,
        }
    }
    /// The next delay: doubles up to the cap, with ±25 % jitter.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = rand::random::<f64>() * 0.5 + 0.75;
        base.mul_f64(jitter)
    }
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let d: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(75) && d[0] <= Duration::from_millis(125));
        assert!(d[7] <= Duration::from_millis(2500) && d[7] >= Duration::from_millis(1500));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(125));
    }
}
