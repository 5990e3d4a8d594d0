//! Polling helpers: wait for a condition with a deadline instead of sleeping.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often the helpers check.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Polls `cond` every 50 ms until it returns true; panics after `timeout`
/// with `what` in the message. Returns how long it took.
///
/// ```no_run
/// # async fn f(stack: &replicator_tests::Stack) {
/// use std::time::Duration;
/// replicator_tests::wait_until(Duration::from_secs(10), "three rows", || async {
///     stack.query::<i64>("SELECT COUNT(*) FROM db.t").await[0] == 3
/// })
/// .await;
/// # }
/// ```
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut cond: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    wait_for(timeout, what, || {
        let fut = cond();
        async move { fut.await.then_some(()) }
    })
    .await;
    start.elapsed()
}

/// Polls `probe` every 50 ms until it returns `Some(value)`, and returns the
/// value; panics after `timeout` with `what` in the message.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match try_wait_for(timeout, &mut probe).await {
        Some(v) => v,
        None => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// Like [`wait_for`] but returns `None` on timeout instead of panicking
/// (to check that something does *not* happen, for instance).
pub async fn try_wait_for<T, F, Fut>(timeout: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
