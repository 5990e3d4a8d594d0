//! Notification channels: structured log (always), webhooks, a Kafka topic.
//!
//! [`Notifier::notify`] logs the change and puts the alert on each channel's
//! bounded queue with `try_send`: it never waits, so rule evaluation never
//! blocks on a slow receiver. A full queue drops the notification (logged and
//! counted in `replicator_monitor_notifications_total{outcome="dropped"}`).
//! Each channel has one worker task that delivers in order, retrying with
//! capped back-off ([`webhook`], [`kafka`]). Dropping the Notifier closes the
//! queues; the workers deliver what is queued and end (the caller bounds
//! that with a deadline).

pub mod kafka;
pub mod webhook;

use crate::config::MonitorConfig;
use crate::error::MonitorError;
use crate::lifecycle::{Change, ChangeKind};
use replicator_common::nodes::{Alert, Severity};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Delivery counters of one channel kind.
#[derive(Debug, Default)]
pub struct ChannelStats {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
}

/// Delivery counters, by channel kind.
#[derive(Debug, Default)]
pub struct Stats {
    pub log: ChannelStats,
    pub webhook: ChannelStats,
    pub kafka: ChannelStats,
}

impl Stats {
    /// `(channel, outcome, count)` for the metrics page.
    pub fn rows(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut rows = Vec::new();
        for (name, c) in [
            ("log", &self.log),
            ("webhook", &self.webhook),
            ("kafka", &self.kafka),
        ] {
            for (outcome, v) in [
                ("sent", &c.sent),
                ("failed", &c.failed),
                ("dropped", &c.dropped),
            ] {
                rows.push((name, outcome, v.load(Ordering::Relaxed)));
            }
        }
        rows
    }
}

pub use replicator_common::backoff::Backoff;

/// The channels.
pub struct Notifier {
    queues: Vec<(String, &'static str, mpsc::Sender<Alert>)>,
    stats: Arc<Stats>,
}

impl Notifier {
    /// Starts one worker per webhook and one for the Kafka topic, tracked in
    /// `workers`; `stop` makes them give up retrying.
    pub fn start(
        config: &MonitorConfig,
        workers: &mut JoinSet<()>,
        stop: CancellationToken,
    ) -> Result<Notifier, MonitorError> {
        let stats = Arc::new(Stats::default());
        let mut queues = Vec::new();
        for url in &config.webhooks {
            let hook = webhook::Webhook::new(url, &config.webhook)?;
            let (tx, rx) = mpsc::channel(config.webhook.queue.max(1));
            workers.spawn(hook.run(rx, stats.clone(), stop.clone()));
            queues.push((url.clone(), "webhook", tx));
        }
        if let Some(k) = &config.kafka {
            let sink = kafka::AlertTopic::new(k)?;
            let (tx, rx) = mpsc::channel(config.webhook.queue.max(1));
            workers.spawn(sink.run(rx, stats.clone(), stop.clone()));
            queues.push((format!("kafka:{}", k.topic), "kafka", tx));
        }
        Ok(Notifier { queues, stats })
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Logs the change and queues it on every channel, without waiting.
    pub fn notify(&self, change: &Change) {
        let a = &change.alert;
        let task = a.task.as_deref().unwrap_or("");
        let core = a.core.as_deref().unwrap_or("");
        let severity = severity_name(a.severity);
        macro_rules! log_at {
            ($level:ident, $what:literal) => {
                tracing::$level!(alert = %a.id, rule = %a.rule, task, core, severity,
                    since_ms = a.since_ms, detail = %a.message, $what)
            };
        }
        match (change.kind, a.severity) {
            (ChangeKind::Track, _) => return,
            (ChangeKind::Resolve, _) => log_at!(info, "alert resolved"),
            (ChangeKind::Fire, Severity::Critical) => log_at!(error, "alert firing"),
            (ChangeKind::Fire, Severity::Warning) => log_at!(warn, "alert firing"),
            (ChangeKind::Fire, Severity::Info) => log_at!(info, "alert firing"),
            (ChangeKind::Repeat, Severity::Critical) => log_at!(error, "alert still firing"),
            (ChangeKind::Repeat, Severity::Warning) => log_at!(warn, "alert still firing"),
            (ChangeKind::Repeat, Severity::Info) => log_at!(info, "alert still firing"),
        }
        self.stats.log.sent.fetch_add(1, Ordering::Relaxed);
        for (name, kind, tx) in &self.queues {
            if tx.try_send(a.clone()).is_err() {
                let c = if *kind == "kafka" {
                    &self.stats.kafka
                } else {
                    &self.stats.webhook
                };
                c.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(channel = %name, alert = %a.id, "notification queue full or closed; notification dropped");
            }
        }
    }
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_rows_cover_every_channel_and_outcome() {
        let s = Stats::default();
        s.webhook.sent.fetch_add(2, Ordering::Relaxed);
        let rows = s.rows();
        assert_eq!(rows.len(), 9);
        assert!(rows.contains(&("webhook", "sent", 2)));
    }
}
