//! The monitor process: HTTP listener, channels and source poller for its
//! whole life; one ZooKeeper session at a time, and a pass per poll interval.
//!
//! A pass collects a snapshot, evaluates the rules (every monitor, so a
//! follower's state is warm), and on the leader plans the alert changes,
//! persists each (`/alerts/<id>`) and notifies it. Leadership counts only
//! while the session is connected: a disconnected leader neither writes nor
//! notifies, and after a reconnection it adopts `/alerts` again. An expired
//! session ends the session loop; a new one is opened with back-off and the
//! monitor stands again. Shutdown closes the session (a follower takes over
//! at once), gives queued notifications up to 5 s, then stops.

use crate::collect::collect;
use crate::config::MonitorConfig;
use crate::election::campaign;
use crate::error::MonitorError;
use crate::http::{self, SharedView, View};
use crate::lifecycle::{Book, ChangeKind};
use crate::metrics::{self, MetricsInput};
use crate::notify::{Backoff, Notifier};
use crate::rules::{evaluate, RuleState};
use crate::source::Sources;
use crate::store::AlertStore;
use replicator_common::nodes::AlertState;
use replicator_common::zk::{self, is_terminal, Zk};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use zookeeper_client::SessionState;

/// How long queued notifications may take to leave at shutdown.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// Runs the monitor until `shutdown`. Fails only at start-up (listen
/// address, channel set-up).
pub async fn run(config: MonitorConfig, shutdown: CancellationToken) -> Result<(), MonitorError> {
    let listener =
        TcpListener::bind(&config.listen)
            .await
            .map_err(|source| MonitorError::Listen {
                addr: config.listen.clone(),
                source,
            })?;
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(addr = %addr, host = %config.host, "monitor listening");
    let view: SharedView = Arc::new(RwLock::new(View {
        poll_interval_ms: config.thresholds.poll_interval_ms,
        ..View::default()
    }));
    let stop_workers = CancellationToken::new();
    let mut workers = JoinSet::new();
    let notifier = Notifier::start(&config, &mut workers, stop_workers.clone())?;
    let mut background = JoinSet::new();
    background.spawn(http::serve(listener, view.clone(), shutdown.clone()));
    let sources = Sources::new(Duration::from_millis(
        config.thresholds.source_poll_interval_ms,
    ));
    background.spawn(sources.clone().run(shutdown.clone()));

    let mut monitor = Monitor {
        config,
        view,
        sources,
        notifier,
        rules: RuleState::default(),
        book: None,
    };
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    while !shutdown.is_cancelled() {
        let zk = tokio::select! {
            r = zk::connect(&monitor.config.zk) => r,
            _ = shutdown.cancelled() => break,
        };
        match zk {
            Ok(zk) => {
                backoff.reset();
                tracing::info!(
                    session_timeout_ms = zk.session_timeout().as_millis() as u64,
                    "ZooKeeper session open"
                );
                monitor.session(zk, &shutdown).await;
            }
            Err(e) => {
                let d = backoff.next_delay();
                tracing::warn!(error = %e, retry_ms = d.as_millis() as u64, "cannot open a ZooKeeper session");
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
        }
    }
    // closing the queues lets the workers finish what is queued
    drop(monitor);
    let drained = tokio::time::timeout(DRAIN_DEADLINE, async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("notifications still queued at shutdown were dropped");
    }
    stop_workers.cancel();
    workers.shutdown().await;
    background.shutdown().await;
    tracing::info!("monitor stopped");
    Ok(())
}

struct Monitor {
    config: MonitorConfig,
    view: SharedView,
    sources: Sources,
    notifier: Notifier,
    rules: RuleState,
    /// The leader's active alerts; `None` while not leading.
    book: Option<Book>,
}

impl Monitor {
    async fn session(&mut self, zk: Zk, shutdown: &CancellationToken) {
        let (leader_tx, leader_rx) = watch::channel(false);
        let stop = CancellationToken::new();
        let mut candidacy = JoinSet::new();
        candidacy.spawn(campaign(
            zk.clone(),
            self.config.host.clone(),
            leader_tx,
            stop.clone(),
        ));
        let store = AlertStore::new(zk.clone());
        if let Err(e) = store.ensure().await {
            tracing::warn!(error = %e, "cannot create the alerts node");
        }
        let mut events = zk.session_events();
        let mut tick = tokio::time::interval(Duration::from_millis(
            self.config.thresholds.poll_interval_ms,
        ));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                state = events.next() => {
                    if is_terminal(state) {
                        tracing::warn!(state = ?state, "ZooKeeper session is over; standing again with a new one");
                        break;
                    }
                    tracing::info!(state = ?state, "ZooKeeper session state");
                }
                _ = tick.tick() => {
                    let leader = *leader_rx.borrow() && zk.state() == SessionState::SyncConnected;
                    self.pass(&zk, &store, leader).await;
                }
                Some(r) = candidacy.join_next() => {
                    // a failed candidacy may leave a node of ours behind:
                    // only a new session clears it for sure
                    match r {
                        Ok(Err(e)) => tracing::warn!(error = %e, "leader candidacy failed; opening a new session"),
                        Ok(Ok(())) => tracing::info!("leader candidacy ended; opening a new session"),
                        Err(e) => tracing::warn!(error = %e, "leader candidacy task failed; opening a new session"),
                    }
                    break;
                }
            }
        }
        stop.cancel();
        candidacy.shutdown().await;
        self.book = None;
        zk.close().await;
    }

    /// One pass: collect, evaluate, and on the leader persist and notify.
    async fn pass(&mut self, zk: &Zk, store: &AlertStore, leader: bool) {
        let th = &self.config.thresholds;
        let snap = match collect(zk, &self.sources).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the cluster; retrying at the next tick");
                return;
            }
        };
        let now = replicator_common::now_ms();
        if !leader && self.book.take().is_some() {
            tracing::info!("no longer the leader (or disconnected): not notifying");
        }
        if leader && self.book.is_none() {
            match store.load().await {
                Ok(stored) => {
                    tracing::info!(
                        active = stored.len(),
                        "leading: adopted the active alerts of /alerts"
                    );
                    self.rules.adopt(&stored, th);
                    self.book = Some(Book::adopt(stored, now));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot load /alerts; retrying at the next tick");
                    return;
                }
            }
        }
        let eval = evaluate(&snap, &self.rules, now, th);
        self.rules = eval.state;
        let repeat = i64::try_from(th.repeat_interval_ms).unwrap_or(i64::MAX);
        let alerts = match &mut self.book {
            Some(book) => {
                for change in book.plan(&eval.conditions, now, repeat) {
                    let persisted = match change.kind {
                        ChangeKind::Fire | ChangeKind::Repeat => store.put(&change.alert).await,
                        ChangeKind::Resolve if th.resolved_linger_ms > 0 => {
                            store.put(&change.alert).await
                        }
                        ChangeKind::Resolve => store.delete(&change.alert.id).await,
                        ChangeKind::Track => Ok(()),
                    };
                    match persisted {
                        Ok(()) => {
                            book.apply(&change, now);
                            self.notifier.notify(&change);
                        }
                        Err(e) => {
                            tracing::warn!(alert = %change.alert.id, kind = ?change.kind, error = %e,
                                "cannot persist an alert change; retrying at the next tick");
                        }
                    }
                }
                let linger = i64::try_from(th.resolved_linger_ms).unwrap_or(i64::MAX);
                for a in &snap.alerts {
                    let expired = a.state == AlertState::Resolved && now - a.since_ms >= linger;
                    if expired && !book.contains(&a.id) {
                        if let Err(e) = store.delete(&a.id).await {
                            tracing::debug!(alert = %a.id, error = %e, "cannot delete a resolved alert");
                        }
                    }
                }
                book.alerts()
            }
            None => snap
                .alerts
                .iter()
                .filter(|a| a.state == AlertState::Firing)
                .cloned()
                .collect(),
        };
        let text = metrics::render(&MetricsInput {
            snapshot: &snap,
            alerts: &alerts,
            leader,
            notifications: self.notifier.stats().rows(),
            now_ms: now,
        });
        let mut v = self.view.write().expect("view lock");
        v.alerts = alerts;
        v.metrics = text;
        v.leader = leader;
        v.last_pass_ms = now;
    }
}
