//! The right to write to Kafka, bounded in time.
//!
//! A RUNNING instance may produce only while its lease is valid. The lease is
//! renewed after each successful ZooKeeper round trip to
//! `sent_at + 2/3 × session timeout`: the server cannot expire the session
//! before `sent_at + session timeout`, so a lease never outlives the session
//! that holds the instance node. A process paused (SIGSTOP) or cut off from
//! ZooKeeper finds its lease expired the moment it runs again, before it
//! sends anything.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

fn epoch() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

fn micros_since_start(at: Instant) -> u64 {
    at.saturating_duration_since(epoch()).as_micros() as u64
}

/// A shared, renewable deadline.
#[derive(Debug, Clone)]
pub struct Lease {
    until_us: Arc<AtomicU64>,
    length: Duration,
}

impl Lease {
    /// An expired lease of `length` per renewal.
    pub fn new(length: Duration) -> Self {
        epoch();
        Self {
            until_us: Arc::new(AtomicU64::new(0)),
            length,
        }
    }

    /// Lease for a session of `session_timeout`: 2/3 of it.
    pub fn for_session(session_timeout: Duration) -> Self {
        Self::new(session_timeout * 2 / 3)
    }

    /// Extends the lease from `sent_at`, the moment the confirming request was sent.
    pub fn renew(&self, sent_at: Instant) {
        let until = micros_since_start(sent_at + self.length);
        self.until_us.fetch_max(until, Ordering::AcqRel);
    }

    /// Ends the lease now.
    pub fn revoke(&self) {
        self.until_us.store(0, Ordering::Release);
    }

    pub fn is_valid(&self) -> bool {
        micros_since_start(Instant::now()) < self.until_us.load(Ordering::Acquire)
    }

    pub fn length(&self) -> Duration {
        self.length
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_only_within_its_length() {
        let l = Lease::new(Duration::from_millis(50));
        assert!(!l.is_valid(), "starts expired");
        l.renew(Instant::now());
        assert!(l.is_valid());
        std::thread::sleep(Duration::from_millis(70));
        assert!(!l.is_valid());
        l.renew(Instant::now() - Duration::from_millis(100));
        assert!(!l.is_valid(), "renewal from an old send time does not help");
        l.renew(Instant::now());
        l.revoke();
        assert!(!l.is_valid());
    }
}
