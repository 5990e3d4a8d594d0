//! Kafka channel: each notification as a message on the alert topic, keyed
//! by alert id, value the Alert JSON (docs/design.md §9).
//!
//! The topic is created with the admin API when missing (one partition, so
//! every consumer sees the alerts in order; Tansu does not auto-create
//! topics); creation is retried with back-off while notifications wait in
//! the queue. A message the broker does not acknowledge within the message
//! timeout is retried with back-off, up to 5 attempts, then counted failed.

use super::{Backoff, Stats};
use crate::config::KafkaChannel;
use crate::error::{DeliveryError, MonitorError};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::ClientConfig;
use replicator_common::nodes::Alert;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Attempts per message.
const ATTEMPTS: u32 = 5;

/// The alert topic.
pub struct AlertTopic {
    topic: String,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
}

impl AlertTopic {
    pub fn new(ch: &KafkaChannel) -> Result<Self, MonitorError> {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &ch.brokers)
            .set("message.timeout.ms", "10000")
            .set("socket.timeout.ms", "10000")
            .set("log_level", "3");
        for (k, v) in &ch.properties {
            cfg.set(*k, v);
        }
        let producer: FutureProducer = cfg.create().map_err(MonitorError::Kafka)?;
        let admin: AdminClient<DefaultClientContext> = cfg.create().map_err(MonitorError::Kafka)?;
        Ok(Self {
            topic: ch.topic.clone(),
            producer,
            admin,
        })
    }

    async fn ensure_topic(&self) -> Result<(), DeliveryError> {
        let new = NewTopic::new(&self.topic, 1, TopicReplication::Fixed(1));
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for r in self.admin.create_topics([&new], &opts).await? {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(DeliveryError::Topic { topic, code }),
            }
        }
        Ok(())
    }

    /// Delivers queued alerts until the queue closes.
    pub async fn run(
        self,
        mut rx: mpsc::Receiver<Alert>,
        stats: Arc<Stats>,
        stop: CancellationToken,
    ) {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        loop {
            match self.ensure_topic().await {
                Ok(()) => {
                    tracing::info!(topic = %self.topic, "alert topic ready");
                    break;
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(topic = %self.topic, error = %e, retry_ms = delay.as_millis() as u64,
                        "cannot create the alert topic; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.cancelled() => break,
                    }
                }
            }
        }
        while let Some(alert) = rx.recv().await {
            let body = serde_json::to_vec(&alert).expect("alert serializes");
            backoff.reset();
            let mut attempt = 1;
            loop {
                let record = FutureRecord::to(&self.topic).key(&alert.id).payload(&body);
                match self
                    .producer
                    .send(record, Timeout::After(Duration::from_secs(10)))
                    .await
                {
                    Ok(_) => {
                        stats.kafka.sent.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Err((e, _)) if attempt >= ATTEMPTS || stop.is_cancelled() => {
                        stats.kafka.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(topic = %self.topic, alert = %alert.id, error = %e, "alert not written to Kafka; given up");
                        break;
                    }
                    Err((e, _)) => {
                        let delay = backoff.next_delay();
                        tracing::debug!(topic = %self.topic, alert = %alert.id, error = %e, "alert not written to Kafka; retrying");
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
}
