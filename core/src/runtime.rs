//! The Core process: one ZooKeeper session at a time, shared by every task.
//!
//! For each session: keep the lease fresh, register `/cores/<host>` with a
//! heartbeat, run the hot-standby loop of every `--task` and the cold-standby
//! scanner of every `--group`. When the session expires every task stops
//! producing (their lease lapses first), a new session is opened and every
//! task rejoins as a candidate. Shutdown stops every task gracefully (final
//! context, instance node deleted) and closes the session.

use crate::cold::{self, ColdOptions};
use crate::error::Backoff;
use crate::hot::{self, TaskEnv};
use crate::lease::Lease;
use crate::pipeline::PipelineOptions;
use crate::running::Running;
use replicator_common::nodes::CoreInfo;
use replicator_common::paths::TaskRef;
use replicator_common::zk::{self, is_terminal, Zk, ZkOptions};
use replicator_common::zk_watchdog::Silence;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use zookeeper_client::CreateMode;

/// How long shutdown waits for tasks to stop gracefully.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

/// Everything the Core process was started with.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub host: String,
    /// Where to serve Prometheus metrics, if anywhere.
    pub metrics_addr: Option<String>,
    pub zk: ZkOptions,
    pub tasks: Vec<TaskRef>,
    pub groups: Vec<String>,
    pub cold: ColdOptions,
    pub pipeline: PipelineOptions,
}

/// Runs the Core until `shutdown`.
pub async fn run(config: CoreConfig, shutdown: CancellationToken) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let config = Arc::new(config);
    // The metrics server stops with `shutdown`; it gets a second to finish
    // (a scraper's kept-alive connection would hold a graceful end open),
    // then it is aborted.
    let mut background = JoinSet::new();
    if let Some(addr) = config.metrics_addr.clone() {
        let stop = shutdown.clone();
        background.spawn(async move {
            if let Err(e) = crate::metrics::serve(addr.clone(), stop).await {
                tracing::error!(addr = %addr, error = %e, "cannot serve metrics");
            }
        });
    }
    sessions(&config, &mut backoff, &shutdown).await;
    if !crate::sink::wait_closed(Duration::from_secs(2)).await {
        tracing::warn!("Kafka clients still closing at exit");
    }
    drain(&mut background, Duration::from_secs(1)).await;
}

/// Waits up to `deadline` for every task of `set` to end, then aborts the
/// rest (and waits for them to be gone). False when some had to be aborted.
async fn drain<T: 'static>(set: &mut JoinSet<T>, deadline: Duration) -> bool {
    let all = async { while set.join_next().await.is_some() {} };
    let in_time = tokio::time::timeout(deadline, all).await.is_ok();
    set.shutdown().await;
    in_time
}

/// One ZooKeeper session after another, until `shutdown`.
async fn sessions(config: &Arc<CoreConfig>, backoff: &mut Backoff, shutdown: &CancellationToken) {
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let zk = match zk::connect(&config.zk).await {
            Ok(z) => z,
            Err(e) => {
                let d = backoff.next_delay();
                tracing::warn!(error = %e, retry_ms = d.as_millis() as u64, "cannot open a ZooKeeper session");
                tokio::select! {
                    _ = tokio::time::sleep(d) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        backoff.reset();
        tracing::info!(
            session_timeout_ms = zk.session_timeout().as_millis() as u64,
            "ZooKeeper session open"
        );
        session(config, zk, shutdown).await;
    }
}

async fn session(config: &Arc<CoreConfig>, zk: Zk, shutdown: &CancellationToken) {
    let lease = Lease::for_session(zk.session_timeout());
    let session_lost = CancellationToken::new();
    let mut background = JoinSet::new();
    background.spawn(keep_lease(zk.clone(), lease.clone(), session_lost.clone()));
    let running = Arc::new(Running::default());
    background.spawn(heartbeat(
        zk.clone(),
        config.clone(),
        running.clone(),
        session_lost.clone(),
    ));
    let env = TaskEnv {
        zk: zk.clone(),
        lease,
        host: config.host.clone(),
        options: config.pipeline.clone(),
        shutdown: shutdown.clone(),
        session_lost: session_lost.clone(),
        release: CancellationToken::new(),
    };
    let mut tasks = JoinSet::new();
    for task in &config.tasks {
        let env = env.clone();
        let task = task.clone();
        let running = running.clone();
        tasks.spawn(async move {
            loop {
                running.set(&task, true);
                let r = hot::run_task(env.clone(), task.clone(), hot::Mode::Hot, None).await;
                running.set(&task, false);
                match r {
                    Ok(hot::TaskEnd::Deleted) => {
                        // serve it again if someone creates it again
                        if !wait_for_node(&env, &env.zk.layout().task(&task)).await {
                            return;
                        }
                        tracing::info!(task = %task, "task exists again");
                    }
                    Ok(end) => {
                        tracing::info!(task = %task, end = ?end, "task loop ended");
                        return;
                    }
                    Err(e) => {
                        if env.session_lost.is_cancelled() || env.shutdown.is_cancelled() {
                            return;
                        }
                        tracing::warn!(task = %task, error = %e, "ZooKeeper error in task loop; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
    }
    for group in &config.groups {
        tasks.spawn(cold::run_group(
            env.clone(),
            group.clone(),
            config.cold.clone(),
            running.clone(),
        ));
    }
    let mut events = zk.session_events();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                // tasks see the same token and stop gracefully, while the
                // lease keeper still confirms the session
                if !drain(&mut tasks, SHUTDOWN_DEADLINE).await {
                    tracing::warn!("tasks did not stop in time; aborted them");
                }
                session_lost.cancel();
                background.shutdown().await;
                zk.close().await;
                return;
            }
            _ = session_lost.cancelled() => {
                // the lease keeper's watchdog gave the session up
                while tasks.join_next().await.is_some() {}
                background.shutdown().await;
                return;
            }
            state = events.next() => {
                if is_terminal(state) {
                    tracing::warn!(state = ?state, "ZooKeeper session is over; rejoining as a candidate");
                    session_lost.cancel();
                    while tasks.join_next().await.is_some() {}
                    background.shutdown().await;
                    return;
                }
                tracing::info!(state = ?state, "ZooKeeper session state");
            }
        }
    }
}

/// Waits until `path` exists; false on shutdown or session loss.
async fn wait_for_node(env: &TaskEnv, path: &str) -> bool {
    loop {
        let watch = match env.zk.client().check_and_watch_stat(path).await {
            Ok((Some(_), _)) => return true,
            Ok((None, w)) => w,
            Err(e) => {
                tracing::debug!(error = %e, path, "watch failed");
                return false;
            }
        };
        tokio::select! {
            _ = watch.changed() => {}
            _ = env.shutdown.cancelled() => return false,
            _ = env.session_lost.cancelled() => return false,
        }
    }
}

/// Renews the lease after each confirmed round trip. When no reply came
/// for a whole session timeout, ends the session as expired (the watchdog
/// of `replicator_common::zk_watchdog`: zookeeper-client 0.11.2 may never
/// report the expiry itself).
async fn keep_lease(zk: Zk, lease: Lease, session_lost: CancellationToken) {
    let timeout = zk.session_timeout();
    let every = (timeout / 6).max(Duration::from_millis(50));
    let root = zk.layout().root().to_string();
    let mut silence = Silence::new(Instant::now(), timeout);
    loop {
        let sent = Instant::now();
        // bounded: a request may wait in the client until it reconnects
        match tokio::time::timeout(every, zk.client().check_stat(&root)).await {
            Ok(Ok(_)) => {
                lease.renew(sent);
                silence.heard(Instant::now());
            }
            Ok(Err(e)) => {
                if is_terminal(zk.state()) {
                    lease.revoke();
                    session_lost.cancel();
                    return;
                }
                tracing::debug!(error = %e, "lease ping failed");
            }
            Err(_) => tracing::debug!(
                waited_ms = every.as_millis() as u64,
                "lease ping unanswered"
            ),
        }
        if let Some(silent) = silence.overdue(Instant::now()) {
            lease.revoke();
            crate::metrics::session_abandoned();
            tracing::warn!(
                silent_ms = silent.as_millis() as u64,
                session_timeout_ms = timeout.as_millis() as u64,
                state = ?zk.state(),
                "no ZooKeeper reply for a whole session timeout: the session is over; opening a new one"
            );
            session_lost.cancel();
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = session_lost.cancelled() => { lease.revoke(); return; }
        }
    }
}

/// Keeps `/cores/<host>` up to date (EPHEMERAL).
async fn heartbeat(
    zk: Zk,
    config: Arc<CoreConfig>,
    running: Arc<Running>,
    session_lost: CancellationToken,
) {
    let Ok(path) = zk.layout().core(&config.host) else {
        return;
    };
    if let Err(e) = zk.ensure_path(&zk.layout().cores()).await {
        tracing::warn!(error = %e, "cannot create the cores node");
    }
    let mut created = false;
    let mut last_tasks: Option<Vec<String>> = None;
    let mut last_write = Instant::now();
    loop {
        let tasks = running.list();
        let due = last_write.elapsed() >= Duration::from_secs(5);
        if !created || due || last_tasks.as_ref() != Some(&tasks) {
            let info = CoreInfo {
                host: config.host.clone(),
                pid: std::process::id(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                groups: config.groups.clone(),
                load: tasks.len() as u32,
                tasks: tasks.clone(),
                heartbeat_ms: replicator_common::now_ms(),
            };
            let data = serde_json::to_vec(&info).expect("core info serializes");
            let r = if created {
                zk.client().set_data(&path, &data, None).await.map(|_| ())
            } else {
                zk.client()
                    .create(&path, &data, &zk.options(CreateMode::Ephemeral))
                    .await
                    .map(|_| ())
            };
            match r {
                Ok(()) => {
                    created = true;
                    last_tasks = Some(tasks);
                    last_write = Instant::now();
                }
                Err(zookeeper_client::Error::NodeExists) => {
                    // a previous session of ours may still hold it: take it over
                    let _ = zk.client().delete(&path, None).await;
                }
                Err(zookeeper_client::Error::NoNode) => created = false,
                Err(e) => tracing::debug!(error = %e, "core heartbeat failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = session_lost.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod drain_tests {
    use super::drain;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::task::JoinSet;
    use tokio::time::Instant;

    /// Tasks that stop within the deadline are waited for, no longer.
    #[tokio::test(start_paused = true)]
    async fn tasks_that_stop_in_time_are_waited_for() {
        let done = Arc::new(AtomicUsize::new(0));
        let mut set = JoinSet::new();
        for ms in [0, 100, 900] {
            let done = done.clone();
            set.spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        let start = Instant::now();
        assert!(drain(&mut set, Duration::from_secs(1)).await);
        assert_eq!(start.elapsed(), Duration::from_millis(900));
        assert_eq!(done.load(Ordering::SeqCst), 3);
        assert!(set.is_empty());
        // an empty set drains at once
        assert!(drain(&mut JoinSet::<()>::new(), Duration::from_secs(1)).await);
        assert_eq!(start.elapsed(), Duration::from_millis(900));
    }

    /// A task that does not stop is aborted at the deadline (the others
    /// still end normally), and the drain says so.
    #[tokio::test(start_paused = true)]
    async fn a_task_that_does_not_stop_is_aborted_at_the_deadline() {
        let done = Arc::new(AtomicUsize::new(0));
        let mut set = JoinSet::new();
        for ms in [10, 3_600_000] {
            let done = done.clone();
            set.spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        let start = Instant::now();
        assert!(!drain(&mut set, Duration::from_secs(30)).await);
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        assert_eq!(
            done.load(Ordering::SeqCst),
            1,
            "the hung task never finished"
        );
        assert!(set.is_empty(), "aborted and reaped");
    }
}
