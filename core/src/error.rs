//! Errors of the Core, split by what to do about them.
//!
//! A [`TaskError::Transient`] (connection lost, broker down, ZooKeeper blip) is
//! retried with capped, jittered back-off from the last context. A
//! [`TaskError::Definite`] (binlog purged, access denied, bad config, table
//! metadata that does not match the rows) stops the task: it is written into
//! the instance node and logged once. [`TaskError::Fenced`] means another
//! instance owns the task now: stop writing at once.

pub use replicator_common::backoff::Backoff;
use replicator_common::kafka_security::PropertyErrors;
use replicator_common::zk::ZkError;

/// The typed error of a lower layer (the Kafka client, which itself uses
/// this module, so its types are not named here: no import circle).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a task stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Transient(#[from] TransientError),
    #[error("{0}")]
    Definite(#[from] DefiniteError),
    #[error("fenced: another instance wrote the context (version {seen} expected {expected})")]
    Fenced { expected: i32, seen: i32 },
    #[error("lease lost: no ZooKeeper confirmation within 2/3 of the session timeout")]
    LeaseLost,
}

/// Errors that a retry from the last context may get past.
#[derive(Debug, thiserror::Error)]
pub enum TransientError {
    /// Described where it happened ([`TaskError::transient`]).
    #[error("{0}")]
    Other(String),
    /// The source server answered with an error of its own.
    #[error("source error {code}: {message}")]
    SourceServer { code: u16, message: String },
    /// The connection to the source failed (I/O, protocol, driver).
    #[error("source: {0}")]
    Source(#[source] mysql_async::Error),
    #[error(transparent)]
    Zk(#[from] ZkError),
    /// Kafka did not take or acknowledge what was sent.
    #[error("{context}: {source}")]
    Kafka {
        context: &'static str,
        #[source]
        source: BoxError,
    },
}

/// Errors that retrying cannot fix.
#[derive(Debug, thiserror::Error)]
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
    /// A message for `topic` that the producer cannot send (too large,
    /// refused for good by the broker).
    #[error("Kafka refused a message: {topic}: {source}")]
    KafkaMessage {
        topic: String,
        #[source]
        source: BoxError,
    },
    /// The producer cannot start (unsupported broker, refused for good).
    #[error("Kafka refused the producer: {0}")]
    KafkaProducer(#[source] BoxError),
    /// `sink.properties` has bad entries.
    #[error("task config: sink.properties: {0}")]
    SinkProperties(#[from] PropertyErrors),
    /// The broker's certificate did not verify, or the SASL login was refused.
    #[error("cannot connect to Kafka securely: {0}")]
    KafkaSecurity(#[source] BoxError),
}

impl TaskError {
    pub fn transient(msg: impl std::fmt::Display) -> Self {
        TaskError::Transient(TransientError::Other(msg.to_string()))
    }
}

impl From<mysql_async::Error> for TaskError {
    fn from(e: mysql_async::Error) -> Self {
        match e {
            mysql_async::Error::Server(_) => classify_mysql(&e),
            other => TransientError::Source(other).into(),
        }
    }
}

impl From<ZkError> for TaskError {
    fn from(e: ZkError) -> Self {
        TransientError::Zk(e).into()
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
            _ => TransientError::SourceServer {
                code: s.code,
                message: s.message.clone(),
            }
            .into(),
        },
        other => TaskError::transient(format!("source: {other}")),
    }
}
