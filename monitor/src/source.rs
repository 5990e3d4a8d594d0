//! Source binlog positions for the `stalled` rule.
//!
//! The collector asks [`Sources::lookup`] for each RUNNING task; that marks
//! the task's source as wanted and returns its latest fresh sample. A
//! background poller ([`Sources::run`]) asks every wanted source
//! `SHOW MASTER STATUS` (MySQL 8.4: `SHOW BINARY LOG STATUS`) and its GTID
//! position once per interval, each source in its own task with a timeout, so
//! a hung source delays nothing else, and never rule evaluation. Tasks on the
//! same source (same address and credentials) share one sample and one
//! connection.
//!
//! The server polled is the one the task reads from, reached the way the
//! Core reaches it ([`replicator_common::source_conn`]): the `host:port` the
//! context records (the Core's pick from `source.hosts`) while the config
//! lists it, else the first endpoint; with the task's `source.tls`.
//!
//! The password comes from the task config through
//! `SourceConfig::resolve_password`, on the monitor host: when it is not
//! resolvable here (`password_env` unset, `password_file` missing), the
//! `stalled` rule is skipped for that task, with one warning.

use crate::error::SourceError;
use crate::snapshot::SourceStatus;
use mysql_async::prelude::Queryable;
use mysql_async::{Pool, PoolConstraints, PoolOpts, Row};
use replicator_common::config::{SourceConfig, SourceTls};
use replicator_common::nodes::SourceServer;
use replicator_common::paths::TaskRef;
use replicator_common::source_conn;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long one source query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(3);

/// A source and the credentials and TLS settings to read it.
#[derive(Clone, PartialEq, Eq, Hash)]
struct SourceKey {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    tls: Option<SourceTls>,
}

impl std::fmt::Debug for SourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}:{}", self.user, self.host, self.port)
    }
}

#[derive(Default)]
struct Inner {
    /// Source -> when it was last wanted (ms).
    wanted: HashMap<SourceKey, i64>,
    samples: HashMap<SourceKey, SourceStatus>,
    /// Last error per source, to log each new one once.
    errors: HashMap<SourceKey, String>,
    /// Tasks whose password cannot be resolved here (warned once).
    skipped: HashSet<TaskRef>,
}

/// Shared between the collector and the poller.
#[derive(Clone)]
pub struct Sources {
    inner: Arc<Mutex<Inner>>,
    interval: Duration,
}

impl Sources {
    pub fn new(interval: Duration) -> Self {
        Self {
            inner: Arc::default(),
            interval,
        }
    }

    /// Marks the task's source as wanted; its latest sample if fresh (taken
    /// within three poll intervals). `server`: the source server the task's
    /// context names, if any.
    pub fn lookup(
        &self,
        task: &TaskRef,
        cfg: &SourceConfig,
        server: Option<&SourceServer>,
    ) -> Option<SourceStatus> {
        let mut inner = self.inner.lock().expect("sources lock");
        let password = match cfg.resolve_password() {
            Ok(p) => p.map(|s| s.expose().to_string()),
            Err(e) => {
                if inner.skipped.insert(task.clone()) {
                    tracing::warn!(task = %task, error = %e,
                        "stalled rule skipped for this task: its source password is not resolvable on the monitor host");
                }
                return None;
            }
        };
        inner.skipped.remove(task);
        let (host, port) = source_conn::reading_endpoint(cfg, server)?;
        let key = SourceKey {
            host,
            port,
            user: cfg.user.clone(),
            password,
            tls: cfg.tls.clone(),
        };
        let now = replicator_common::now_ms();
        inner.wanted.insert(key.clone(), now);
        let fresh = 3 * self.interval.as_millis() as i64;
        inner
            .samples
            .get(&key)
            .filter(|s| now - s.observed_ms <= fresh)
            .cloned()
    }

    /// Polls every wanted source once per interval until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let mut pools: HashMap<SourceKey, Pool> = HashMap::new();
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => break,
            }
            let keys = self.wanted_now();
            // forget sources nobody asked about lately
            let stale: Vec<SourceKey> = pools
                .keys()
                .filter(|k| !keys.contains(k))
                .cloned()
                .collect();
            for k in stale {
                if let Some(pool) = pools.remove(&k) {
                    let _ = tokio::time::timeout(Duration::from_secs(1), pool.disconnect()).await;
                }
            }
            let mut queries = JoinSet::new();
            for key in keys {
                let pool = match pools.get(&key) {
                    Some(p) => p.clone(),
                    None => match pool(&key) {
                        Ok(p) => pools.entry(key.clone()).or_insert(p).clone(),
                        Err(e) => {
                            self.record(key, Err(e));
                            continue;
                        }
                    },
                };
                queries.spawn(async move {
                    let r = tokio::time::timeout(QUERY_TIMEOUT, query(&pool)).await;
                    let r = r.unwrap_or(Err(SourceError::Timeout(QUERY_TIMEOUT)));
                    (key, r)
                });
            }
            let deadline = tokio::time::sleep(QUERY_TIMEOUT + Duration::from_millis(500));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    r = queries.join_next() => match r {
                        Some(Ok((key, result))) => self.record(key, result),
                        Some(Err(_)) => {}
                        None => break,
                    },
                    _ = &mut deadline => { queries.abort_all(); break; }
                    _ = stop.cancelled() => { queries.abort_all(); break; }
                }
            }
        }
        for (_, pool) in pools {
            let _ = tokio::time::timeout(Duration::from_secs(1), pool.disconnect()).await;
        }
    }

    fn wanted_now(&self) -> HashSet<SourceKey> {
        let mut inner = self.inner.lock().expect("sources lock");
        let now = replicator_common::now_ms();
        let keep = 10 * self.interval.as_millis() as i64;
        inner.wanted.retain(|_, at| now - *at <= keep);
        let wanted: HashSet<SourceKey> = inner.wanted.keys().cloned().collect();
        inner.samples.retain(|k, _| wanted.contains(k));
        wanted
    }

    fn record(&self, key: SourceKey, result: Result<SourceStatus, SourceError>) {
        let mut inner = self.inner.lock().expect("sources lock");
        match result {
            Ok(status) => {
                if inner.errors.remove(&key).is_some() {
                    tracing::info!(source = ?key, "source status readable again");
                }
                inner.samples.insert(key, status);
            }
            Err(e) => {
                let e = e.to_string();
                if inner.errors.get(&key) != Some(&e) {
                    tracing::warn!(source = ?key, error = %e, "cannot read the source binlog position; stalled rule waits");
                    inner.errors.insert(key.clone(), e);
                }
                inner.samples.remove(&key);
            }
        }
    }
}

fn pool(key: &SourceKey) -> Result<Pool, SourceError> {
    let cfg = SourceConfig {
        user: key.user.clone(),
        tls: key.tls.clone(),
        ..SourceConfig::default()
    };
    let opts = source_conn::opts_builder(&cfg, &key.host, key.port, key.password.as_deref())?
        .pool_opts(
            PoolOpts::default()
                .with_constraints(PoolConstraints::new(0, 1).expect("0 <= 1"))
                .with_inactive_connection_ttl(Duration::from_secs(60)),
        );
    Ok(Pool::new(opts))
}

async fn query(pool: &Pool) -> Result<SourceStatus, SourceError> {
    let mut conn = pool.get_conn().await?;
    let row: Option<Row> = source_conn::binlog_status(&mut conn).await?;
    let row = row.ok_or(SourceError::NoBinlog)?;
    let file: String = row
        .get_opt(0)
        .and_then(Result::ok)
        .ok_or(SourceError::MissingColumn("File"))?;
    let pos: u64 = row
        .get_opt(1)
        .and_then(Result::ok)
        .ok_or(SourceError::MissingColumn("Position"))?;
    let mut gtid: Option<String> = if row.len() > 4 {
        // MySQL: Executed_Gtid_Set
        row.get_opt::<String, _>(4)
            .and_then(Result::ok)
            .filter(|g| !g.trim().is_empty())
    } else {
        None
    };
    if gtid.is_none() {
        if let Ok(Some(Some(g))) = conn
            .query_first::<Option<String>, _>("SELECT @@GLOBAL.gtid_binlog_pos")
            .await
        {
            gtid = Some(g).filter(|g| !g.is_empty());
        }
    }
    Ok(SourceStatus {
        file,
        pos,
        gtid,
        observed_ms: replicator_common::now_ms(),
    })
}
