//! A workaround for a defect of zookeeper-client 0.11.2: a session whose
//! server is unreachable *at once* never ends.
//!
//! The defect: when the host's own interface towards ZooKeeper goes down,
//! every connection attempt fails immediately (ENETUNREACH). Once the
//! client's reconnection deadline has passed, its retry loop
//! (`session/mod.rs`, `Session::start`) never leaves: the `biased` select in
//! `Connector::connect` returns the connect error before it polls the
//! deadline, so `Deadline::elapsed()` (true only once the fused timer was
//! polled to completion) stays false, and the backoff between attempts is
//! capped at the time left, 0 ms. The session task spins (thousands of
//! attempts a second on one runtime worker), never reports `Expired`, and
//! dropping every `Client` does not stop it (the loop does not look at its
//! request channel). A partition that drops packets is not affected: there
//! the attempts time out and the deadline is polled.
//!
//! The workaround has two parts, both here:
//!
//! - [`SessionRuntime`]: every session's client task runs on a small
//!   runtime of its own (one worker thread), owned by the session's handles
//!   ([`crate::zk::Zk`]); when the last handle is dropped the runtime is shut
//!   down and the task with it, spinning or not, after giving a healthy
//!   session up to [`CLOSE_WAIT`] to close (so its ephemeral nodes vanish at
//!   once, as before).
//! - [`Silence`]: the Core's lease keeper records every ZooKeeper reply;
//!   when none came for a whole session timeout the server has expired the
//!   session (it expires a session it has not heard from for that long), so
//!   the Core treats it as expired: it stops its tasks, drops the client and
//!   opens a fresh session (`core/src/runtime.rs`). The lease lapsed long
//!   before (2/3 of the session timeout), so nothing is produced meanwhile.
//!
//! Remove both when the crate polls its deadline or sleeps a minimum
//! backoff between attempts.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a dropped session may take to close before its runtime stops.
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Resolves once the session is over (closed, expired).
pub type Closed = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The runtime a session's client task runs on (see the module doc).
pub struct SessionRuntime {
    runtime: Option<tokio::runtime::Runtime>,
    /// In a mutex only so that handles can be shared across threads.
    closed: Mutex<Option<Closed>>,
}

impl SessionRuntime {
    /// A one-worker multi-thread runtime named `zk-session`.
    pub fn new() -> std::io::Result<SessionRuntime> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("zk-session")
            .enable_all()
            .build()?;
        Ok(SessionRuntime {
            runtime: Some(runtime),
            closed: Mutex::new(None),
        })
    }

    /// What to wait for (at most [`CLOSE_WAIT`]) before the runtime stops.
    pub fn until_closed(&mut self, closed: Closed) {
        *self.closed.get_mut().unwrap_or_else(|p| p.into_inner()) = Some(closed);
    }

    /// Spawns `future` on this runtime.
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime
            .as_ref()
            .expect("the runtime lives until drop")
            .spawn(future)
    }
}

impl Drop for SessionRuntime {
    /// Does not block the caller: a thread of its own waits for the session
    /// to close (bounded), then shuts the runtime down without waiting; a
    /// task spinning in the client's retry loop is dropped at its next
    /// yield.
    fn drop(&mut self) {
        let Some(rt) = self.runtime.take() else {
            return;
        };
        let closed = self
            .closed
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let slot = Arc::new(Mutex::new(Some(rt)));
        let theirs = slot.clone();
        let spawned = std::thread::Builder::new()
            .name("zk-session-close".into())
            .spawn(move || {
                let rt = theirs.lock().ok().and_then(|mut g| g.take());
                if let Some(rt) = rt {
                    if let Some(closed) = closed {
                        rt.block_on(async {
                            let _ = tokio::time::timeout(CLOSE_WAIT, closed).await;
                        });
                    }
                    rt.shutdown_background();
                }
            });
        if spawned.is_err() {
            if let Some(rt) = slot.lock().ok().and_then(|mut g| g.take()) {
                rt.shutdown_background();
            }
        }
    }
}

impl std::fmt::Debug for SessionRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionRuntime")
    }
}

/// How long a session has gone without a ZooKeeper reply (pure: the
/// caller passes the clock).
#[derive(Debug, Clone, Copy)]
pub struct Silence {
    last_reply: Instant,
    limit: Duration,
}

impl Silence {
    /// A session that was just heard from and may stay silent for `limit`
    /// (its session timeout).
    pub fn new(now: Instant, limit: Duration) -> Silence {
        Silence {
            last_reply: now,
            limit,
        }
    }

    /// A reply arrived at `at`.
    pub fn heard(&mut self, at: Instant) {
        self.last_reply = self.last_reply.max(at);
    }

    /// `Some(silence)` once no reply came for the whole limit.
    pub fn overdue(&self, now: Instant) -> Option<Duration> {
        let silent = now.saturating_duration_since(self.last_reply);
        (silent >= self.limit).then_some(silent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overdue_only_after_a_whole_limit_without_a_reply() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Silence::new(t0, ms(4000));
        assert_eq!(s.overdue(t0), None);
        assert_eq!(s.overdue(t0 + ms(3999)), None);
        assert_eq!(s.overdue(t0 + ms(4000)), Some(ms(4000)));
        s.heard(t0 + ms(3000));
        assert_eq!(s.overdue(t0 + ms(6999)), None);
        assert_eq!(s.overdue(t0 + ms(7500)), Some(ms(4500)));
        // a late-arriving older reply does not move the mark back
        s.heard(t0 + ms(1000));
        assert_eq!(s.overdue(t0 + ms(6999)), None);
        assert!(s.overdue(t0 + ms(7000)).is_some());
    }

    #[test]
    fn dropping_the_runtime_ends_a_task_that_never_finishes() {
        let rt = SessionRuntime::new().expect("runtime");
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        rt.spawn(async move {
            let _keep = tx;
            loop {
                tokio::task::yield_now().await;
            }
        });
        let never: Closed = Box::pin(std::future::pending());
        let mut rt = rt;
        rt.until_closed(never);
        drop(rt);
        // the sender is dropped with the task, after CLOSE_WAIT
        assert_eq!(
            rx.recv_timeout(CLOSE_WAIT + Duration::from_secs(5)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        );
    }
}
