//! Webhook channel: HTTP POST of the Alert JSON (docs/design.md §9) to a URL.
//!
//! One worker per URL takes notifications from its bounded queue in order.
//! A POST that fails (connection refused, timeout, a non-2xx status) is
//! retried with capped, jittered back-off (500 ms doubling to 30 s) up to
//! `max_attempts`, then given up and counted as failed. The POST itself is
//! blocking (ureq) and runs on the blocking pool, bounded by the timeout.
//! Plain `http://` only: put a relay in front of an HTTPS receiver.

use super::{Backoff, Stats};
use crate::config::WebhookOptions;
use crate::error::{DeliveryError, MonitorError};
use replicator_common::nodes::Alert;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One webhook receiver.
pub struct Webhook {
    url: String,
    agent: ureq::Agent,
    max_attempts: u32,
}

impl Webhook {
    pub fn new(url: &str, opts: &WebhookOptions) -> Result<Self, MonitorError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| MonitorError::BadWebhook(url.to_string()))?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(MonitorError::BadWebhook(url.to_string()));
        }
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(opts.timeout_ms.max(1))))
            .http_status_as_error(false)
            .build();
        Ok(Self {
            url: url.to_string(),
            agent: ureq::Agent::new_with_config(config),
            max_attempts: opts.max_attempts.max(1),
        })
    }

    /// Delivers queued alerts until the queue closes.
    pub async fn run(
        self,
        mut rx: mpsc::Receiver<Alert>,
        stats: Arc<Stats>,
        stop: CancellationToken,
    ) {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        while let Some(alert) = rx.recv().await {
            let body = serde_json::to_vec(&alert).expect("alert serializes");
            backoff.reset();
            let mut attempt = 1;
            loop {
                match self.post(body.clone()).await {
                    Ok(()) => {
                        stats.webhook.sent.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(url = %self.url, alert = %alert.id, attempt, "webhook delivered");
                        break;
                    }
                    Err(e) if attempt >= self.max_attempts || stop.is_cancelled() => {
                        stats.webhook.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(url = %self.url, alert = %alert.id, attempt, error = %e, "webhook failed; notification given up");
                        break;
                    }
                    Err(e) => {
                        let delay = backoff.next_delay();
                        tracing::debug!(url = %self.url, alert = %alert.id, attempt, error = %e,
                            retry_ms = delay.as_millis() as u64, "webhook failed; retrying");
                        attempt += 1;
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = stop.cancelled() => {}
                        }
                    }
                }
            }
        }
    }

    async fn post(&self, body: Vec<u8>) -> Result<(), DeliveryError> {
        let agent = self.agent.clone();
        let url = self.url.clone();
        tokio::task::spawn_blocking(move || {
            let resp = agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(&body[..])?;
            if resp.status().is_success() {
                Ok(())
            } else {
                Err(DeliveryError::Status(resp.status().as_u16()))
            }
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls() {
        let o = WebhookOptions::default();
        assert!(Webhook::new("http://127.0.0.1:9/hook", &o).is_ok());
        assert!(Webhook::new("https://example.com/hook", &o).is_err());
        assert!(Webhook::new("ftp://x", &o).is_err());
        assert!(Webhook::new("http://", &o).is_err());
    }
}
