//! Monitor settings: rule thresholds with documented defaults, channels, and
//! the optional JSON config file.
//!
//! Precedence: built-in defaults, then `--config FILE`, then flags. The file
//! is JSON with unknown fields rejected, every field optional:
//!
//! ```json
//! {"thresholds": {"not_running_grace_ms": 30000, "lag_ms": 60000},
//!  "webhooks": ["http://alerts.example:8080/hook"],
//!  "alert_topic": "replicator.alerts", "brokers": "127.0.0.1:9092",
//!  "webhook": {"timeout_ms": 5000, "max_attempts": 8, "queue": 1000}}
//! ```

use replicator_common::zk::ZkOptions;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Rule thresholds and timings, all in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// How often the cluster is read and the rules evaluated. Default 1000.
    pub poll_interval_ms: u64,
    /// `task_not_running`: how long a task that should run may have no RUNNING instance. Default 30000.
    pub not_running_grace_ms: u64,
    /// `no_standby`: how long a hot task may have fewer instances than its redundancy. Default 30000.
    pub no_standby_grace_ms: u64,
    /// `replication_lag`: the largest accepted `now - event_ts_ms` of a RUNNING task. Default 60000.
    pub lag_ms: u64,
    /// `stalled`: how long the context may stand still while the source binlog is ahead of it. Default 60000.
    pub stalled_ms: u64,
    /// How often each task's source is asked `SHOW MASTER STATUS` (for `stalled`). Default 5000.
    pub source_poll_interval_ms: u64,
    /// `task_error`: how long an instance error must last before it alerts. Default 0.
    pub task_error_grace_ms: u64,
    /// `task_retrying`: how long the RUNNING instance may keep failing with
    /// transient errors (its `retrying` streak, timed from the streak's own
    /// start) before it alerts. Default 30000.
    pub retrying_ms: u64,
    /// `core_lost`: how long a core may be gone before it alerts (a restart takes a few seconds). Default 10000.
    pub core_lost_grace_ms: u64,
    /// `core_lost`: a core gone for this long is forgotten and its alert resolved. Default 86400000 (a day).
    pub core_lost_expire_ms: u64,
    /// `failover`: how long the informational alert stays active before it resolves. Default 60000.
    pub failover_hold_ms: u64,
    /// How often an active alert is notified again. Default 3600000 (an hour).
    pub repeat_interval_ms: u64,
    /// How long a resolved alert stays in `/alerts` (state `resolved`) before
    /// it is deleted, so that `replicatorctl alerts --watch` sees it resolve. Default 60000.
    pub resolved_linger_ms: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            poll_interval_ms: 1000,
            not_running_grace_ms: 30_000,
            no_standby_grace_ms: 30_000,
            lag_ms: 60_000,
            stalled_ms: 60_000,
            source_poll_interval_ms: 5000,
            task_error_grace_ms: 0,
            retrying_ms: 30_000,
            core_lost_grace_ms: 10_000,
            core_lost_expire_ms: 86_400_000,
            failover_hold_ms: 60_000,
            repeat_interval_ms: 3_600_000,
            resolved_linger_ms: 60_000,
        }
    }
}

/// Webhook delivery settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookOptions {
    /// Timeout of one POST. Default 5000.
    pub timeout_ms: u64,
    /// Attempts per notification (back-off from 500 ms doubling to 30 s). Default 8.
    pub max_attempts: u32,
    /// Notifications waiting per webhook; beyond it new ones are dropped (and counted). Default 1000.
    pub queue: usize,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        Self {
            timeout_ms: 5000,
            max_attempts: 8,
            queue: 1000,
        }
    }
}

/// The `--config` file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub thresholds: Thresholds,
    pub webhooks: Vec<String>,
    pub alert_topic: Option<String>,
    pub brokers: Option<String>,
    /// TLS/SASL settings of the alert topic's Kafka client (`security.protocol`, ...).
    pub kafka_properties: std::collections::BTreeMap<String, String>,
    pub webhook: WebhookOptions,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, ConfigFileError> {
        let refused = |source| ConfigFileError {
            path: path.display().to_string(),
            source,
        };
        let text = std::fs::read_to_string(path).map_err(|e| refused(e.into()))?;
        Self::parse(&text).map_err(refused)
    }

    pub fn parse(text: &str) -> Result<FileConfig, FileConfigError> {
        let cfg: FileConfig = serde_json::from_str(text)?;
        cfg.thresholds.check()?;
        Ok(cfg)
    }
}

/// A config file that cannot be read or used, and which.
#[derive(Debug, thiserror::Error)]
#[error("config file {path}: {source}")]
pub struct ConfigFileError {
    pub path: String,
    #[source]
    pub source: FileConfigError,
}

/// Why a config file is refused.
#[derive(Debug, thiserror::Error)]
pub enum FileConfigError {
    #[error(transparent)]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Threshold(#[from] ThresholdError),
}

/// A threshold that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("thresholds.{0} must be at least 1")]
pub struct ThresholdError(pub &'static str);

impl Thresholds {
    /// Rejects settings that cannot work.
    pub fn check(&self) -> Result<(), ThresholdError> {
        for (name, value) in [
            ("poll_interval_ms", self.poll_interval_ms),
            ("source_poll_interval_ms", self.source_poll_interval_ms),
            ("repeat_interval_ms", self.repeat_interval_ms),
        ] {
            if value == 0 {
                return Err(ThresholdError(name));
            }
        }
        Ok(())
    }
}

/// The Kafka alert topic channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaChannel {
    pub topic: String,
    pub brokers: String,
    /// TLS/SASL settings as librdkafka properties.
    pub properties: Vec<(&'static str, String)>,
}

/// Everything the monitor runs with.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// Name of this monitor in `/monitor/leader/<host>-<seq>`.
    pub host: String,
    pub zk: ZkOptions,
    /// HTTP listen address (`GET /alerts`, `/metrics`, `/healthz`).
    pub listen: String,
    pub webhooks: Vec<String>,
    pub webhook: WebhookOptions,
    pub kafka: Option<KafkaChannel>,
    pub thresholds: Thresholds,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_only_what_it_names() {
        let cfg = FileConfig::parse(
            r#"{"thresholds": {"lag_ms": 5000}, "webhooks": ["http://127.0.0.1:1/x"]}"#,
        )
        .unwrap();
        assert_eq!(cfg.thresholds.lag_ms, 5000);
        assert_eq!(
            cfg.thresholds.not_running_grace_ms,
            Thresholds::default().not_running_grace_ms
        );
        assert_eq!(cfg.webhooks.len(), 1);
        assert_eq!(cfg.webhook, WebhookOptions::default());
    }

    #[test]
    fn file_rejects_unknown_fields_and_zero_intervals() {
        assert!(FileConfig::parse(r#"{"thresholds": {"lag": 1}}"#).is_err());
        assert!(FileConfig::parse(r#"{"colour": 1}"#).is_err());
        assert!(FileConfig::parse(r#"{"thresholds": {"poll_interval_ms": 0}}"#).is_err());
        assert_eq!(FileConfig::parse("{}").unwrap(), FileConfig::default());
    }
}
