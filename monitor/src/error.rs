//! Errors of the Monitor.
//!
//! Start-up errors (a listen address in use, a bad config file, a webhook URL
//! that cannot work) stop the process; ZooKeeper errors during a pass are
//! logged and the pass is retried at the next tick; an expired session is
//! replaced by a new one (the leader candidacy starts again).

use crate::config::{ConfigFileError, ThresholdError};
use replicator_common::zk::ZkError;

/// What can go wrong in the Monitor.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    Zk(#[from] ZkError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    ConfigFile(#[from] ConfigFileError),
    #[error("bad webhook URL `{0}`: give an http://HOST:PORT/PATH URL (https is not supported; use a relay)")]
    BadWebhook(String),
    #[error("Kafka alert channel: {0}")]
    Kafka(#[source] rdkafka::error::KafkaError),
    #[error("bad setting: {0}")]
    Setting(#[from] ThresholdError),
}

/// Why a source's binlog position could not be read (the `stalled` rule
/// waits for the next sample).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    MySql(#[from] mysql_async::Error),
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("binary logging is off on the source")]
    NoBinlog,
    #[error("SHOW MASTER STATUS has no {0} column")]
    MissingColumn(&'static str),
    #[error(transparent)]
    Options(#[from] replicator_common::source_conn::SourceConnError),
}

/// Why one delivery attempt of a notification failed (retried with
/// back-off, then given up).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("HTTP: {0}")]
    Http(#[from] ureq::Error),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("delivery task: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("Kafka topic {topic}: {code}")]
    Topic {
        topic: String,
        code: rdkafka::types::RDKafkaErrorCode,
    },
}
