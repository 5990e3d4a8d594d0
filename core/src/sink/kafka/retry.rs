//! The delivery budget of a batch: how long to wait before resending it
//! after a transient failure, and when to give up. Pure.
//!
//! Each batch is resent at most `retries` times within
//! `delivery.timeout.ms` of its first attempt, on whichever link (the
//! count and the first send travel with the batch when its partition is
//! handed over), backing off from `retry.backoff.ms` doubling up to 1 s.
//! A request's batches share one decision: the most tried batch and the
//! oldest first send count.

use super::seal::Sealed;
use replicator_common::producer::ProducerSettings;
use std::time::{Duration, Instant};

/// Longest back-off between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Counts a failed attempt at `batches` (marking the first send of those
/// never sent); returns the most attempts of any of them and the time since
/// the oldest first send.
pub fn count_failure(batches: &mut [Sealed]) -> (u32, Duration) {
    let mut attempts = 0;
    for b in batches.iter_mut() {
        b.attempts += 1;
        attempts = attempts.max(b.attempts);
    }
    let oldest = batches.iter().filter_map(|b| b.first_sent).min();
    (attempts, oldest.map_or(Duration::ZERO, |t| t.elapsed()))
}

/// Marks the batches about to go on the wire for the first time.
pub fn mark_sent(batches: &mut [Sealed], now: Instant) {
    for b in batches.iter_mut() {
        b.first_sent.get_or_insert(now);
    }
}

/// The back-off before resending after `attempts` failed attempts, the
/// first `elapsed` ago; `None` when the budget is spent (give up).
pub fn backoff(s: &ProducerSettings, attempts: u32, elapsed: Duration) -> Option<Duration> {
    let backoff = s
        .retry_backoff
        .saturating_mul(1 << (attempts.max(1) - 1).min(10))
        .min(MAX_BACKOFF);
    if attempts > s.retries || elapsed + backoff > s.delivery_timeout {
        None
    } else {
        Some(backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(retries: u32, backoff_ms: u64, timeout_ms: u64) -> ProducerSettings {
        ProducerSettings {
            retries,
            retry_backoff: Duration::from_millis(backoff_ms),
            delivery_timeout: Duration::from_millis(timeout_ms),
            ..ProducerSettings::default()
        }
    }

    #[test]
    fn backoff_doubles_from_the_setting_up_to_one_second() {
        let s = settings(100, 100, 1_000_000);
        let got: Vec<u64> = (1..=6)
            .map(|a| backoff(&s, a, Duration::ZERO).unwrap().as_millis() as u64)
            .collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000]);
        // the exponent stops growing; the cap holds far out
        assert_eq!(backoff(&s, 60, Duration::ZERO), Some(MAX_BACKOFF));
    }

    #[test]
    fn gives_up_after_retries_resends() {
        let s = settings(3, 10, 1_000_000);
        assert!(backoff(&s, 3, Duration::ZERO).is_some());
        assert_eq!(backoff(&s, 4, Duration::ZERO), None);
        let none = settings(0, 10, 1_000_000);
        assert_eq!(backoff(&none, 1, Duration::ZERO), None);
    }

    #[test]
    fn gives_up_when_the_backoff_would_pass_the_delivery_timeout() {
        let s = settings(100, 100, 1_000);
        assert_eq!(
            backoff(&s, 1, Duration::from_millis(900)),
            Some(Duration::from_millis(100))
        );
        assert_eq!(backoff(&s, 1, Duration::from_millis(901)), None);
        assert_eq!(backoff(&s, 2, Duration::from_millis(801)), None);
    }
}
