//! Errors of the Core, split by what to do about them.
//!
//! A [`TaskError::Transient`] (connection lost, broker down, ZooKeeper blip) is
//! retried with capped, jittered back-off from the last context. A
//! [`TaskError::Definite`] (binlog purged, access denied, bad config, table
//! metadata that does not match the rows) stops the task: it is written into
//! the instance node and logged once. [`TaskError::Fenced`] means another
//! instance owns the task now: stop writing at once.

pub use replicator_common::backoff::Backoff;

/// Why a task stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Definite(#[from] DefiniteError),
    #[error("fenced: another instance wrote the context (version {seen} expected {expected})")]
    Fenced { expected: i32, seen: i32 },
    #[error("lease lost: no ZooKeeper confirmation within 2/3 of the session timeout")]
    LeaseLost,
}

/// Errors that retrying cannot fix.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DefiniteError {
    #[error("binlog position is gone on the source (server error 1236): {0}; to start over from source.start, delete the task's context node")]
    BinlogGone(String),
    #[error("access denied on the source: {0}")]
    AccessDenied(String),
    #[error("source is not set up for row replication: {0}")]
    Preflight(String),
    #[error("task config: {0}")]
    Config(String),
    /// The source failed over to a server whose GTIDs do not continue the
    /// context (see [`crate::source::failover`]).
    #[error("source failover: {0}")]
    SourceGap(String),
    /// TLS to the source cannot work as configured (`source.tls`).
    #[error("source TLS: {0}")]
    SourceTls(String),
    #[error("cannot decode binlog: {0}")]
    Decode(String),
    #[error("Kafka refused a message: {0}")]
    Kafka(String),
    /// The broker's certificate did not verify, or the SASL login was refused.
    #[error("cannot connect to Kafka securely: {0}")]
    KafkaSecurity(String),
}

impl TaskError {
    pub fn transient(msg: impl std::fmt::Display) -> Self {
        TaskError::Transient(msg.to_string())
    }
}

impl From<mysql_async::Error> for TaskError {
    fn from(e: mysql_async::Error) -> Self {
        classify_mysql(&e)
    }
}

/// Sorts a MySQL client error into definite or transient.
pub fn classify_mysql(e: &mysql_async::Error) -> TaskError {
    match e {
        mysql_async::Error::Server(s) => match s.code {
            1236 => DefiniteError::BinlogGone(s.message.clone()).into(),
            1045 | 1044 | 1142 | 1227 | 1698 | 1370 => {
                DefiniteError::AccessDenied(format!("{} ({})", s.message, s.code)).into()
            }
            _ => TaskError::Transient(format!("source error {}: {}", s.code, s.message)),
        },
        other => TaskError::Transient(format!("source: {other}")),
    }
}
