//! Errors of the Core, split by what to do about them.
//!
//! A [`TaskError::Transient`] (connection lost, broker down, ZooKeeper blip) is
//! retried with capped, jittered back-off from the last context. A
//! [`TaskError::Definite`] (binlog purged, access denied, bad config, table
//! metadata that does not match the rows) stops the task: it is written into
//! the instance node and logged once. [`TaskError::Fenced`] means another
//! instance owns the task now: stop writing at once.

use crate::decode::Flavor;
pub use replicator_common::backoff::Backoff;
use replicator_common::config::{PasswordError, UnknownFormat};
use replicator_common::gtid::{GtidSet, GtidSetParseError};
use replicator_common::kafka_security::PropertyErrors;
use replicator_common::kafka_security::SaslPasswordError;
use replicator_common::position::PositionError;
use replicator_common::source_conn::SourceConnError;
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
    Config(#[from] ConfigError),
    /// The source failed over to a server whose GTIDs do not continue the
    /// context (see [`crate::source::failover`]).
    #[error("source failover: {0}")]
    SourceGap(#[from] crate::source::gap::FailoverError),
    /// TLS to the source cannot work as configured (`source.tls`).
    #[error("source TLS: {0}")]
    SourceTls(#[from] SourceTlsError),
    #[error("cannot decode binlog: {0}")]
    Decode(#[from] DataError),
    /// The source reports a GTID state this process cannot read.
    #[error("the source's {variable} is not a GTID state: {source}")]
    ServerGtid {
        variable: &'static str,
        #[source]
        source: GtidSetParseError,
    },
    /// A MariaDB GTID state to start a MySQL stream from.
    #[error("cannot start a {flavor:?} stream at the MariaDB GTID state {gtid}")]
    GtidFlavour { gtid: GtidSet, flavor: Flavor },
    /// The replication protocol refused a MySQL GTID set.
    #[error("cannot start the stream at the GTID set {gtid}: {source}")]
    StreamGtid {
        gtid: replicator_common::gtid_set::MysqlGtidSet,
        #[source]
        source: std::io::Error,
    },
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

/// Why TLS to the source server cannot work as `source.tls` says (`mode`
/// is the configured mode's name).
#[derive(Debug, thiserror::Error)]
pub enum SourceTlsError {
    #[error("{addr} does not offer TLS (source.tls.mode is {mode}; enable ssl on the server or set the mode to disabled)")]
    NotOffered { addr: String, mode: &'static str },
    /// The TLS handshake failed.
    #[error("TLS to {addr} (source.tls.mode {mode}): {source}")]
    Handshake {
        addr: String,
        mode: &'static str,
        #[source]
        source: Box<mysql_async::Error>,
    },
    /// The server's certificate did not verify (against `ca_file` when set).
    #[error("the certificate of {addr} does not verify (source.tls.mode {mode}{}): {source}", ca_file.as_deref().map(|f| format!(", ca_file {f}")).unwrap_or_default())]
    Certificate {
        addr: String,
        mode: &'static str,
        ca_file: Option<String>,
        #[source]
        source: Box<mysql_async::Error>,
    },
}

/// A task config (or context) that cannot work; the text names the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Password(#[from] PasswordError),
    #[error("{0}")]
    SourceConnection(#[from] SourceConnError),
    #[error("{0}")]
    Route(#[from] regex::Error),
    #[error("{0}")]
    Format(#[from] UnknownFormat),
    /// `sink.properties` names a SASL password that cannot be read.
    #[error("{0}")]
    SaslPassword(#[from] SaslPasswordError),
    /// `sink.properties` TLS files that do not make a client config (the
    /// Kafka client's type, boxed: it uses this module).
    #[error("{0}")]
    KafkaTls(#[source] BoxError),
    /// `source.start` names a GTID that does not parse.
    #[error("source.start: {0}")]
    StartGtid(#[source] GtidSetParseError),
    /// The context node was edited into something that is not progress.
    #[error("context {path} is not valid progress JSON: {source}")]
    Context {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// `source.snapshot_signal_table` is not `DATABASE.TABLE`.
    #[error("source.snapshot_signal_table `{0}` is not DATABASE.TABLE")]
    SignalTableName(String),
    /// A snapshot needs a file position, and the source gives a GTID state.
    #[error("current position is a GTID {0}")]
    SnapshotAtGtid(GtidSet),
}

/// Binlog events or snapshot rows that cannot become messages; each names
/// where.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An event that belongs to a transaction (`what`) came outside one.
    #[error("{0} outside a transaction")]
    OutsideTransaction(&'static str),
    #[error("rows event for unknown table id {0}")]
    UnknownTable(u64),
    /// An event that did not decode, and where it starts (`place`).
    #[error("{source} ({place})")]
    Event {
        place: String,
        #[source]
        source: crate::decode::DecodeError,
    },
    /// A row of `table` (`db.name`) that did not decode, render or format.
    #[error("{table}: {source}")]
    Row {
        table: String,
        #[source]
        source: BoxError,
    },
    /// The binlog's table map and information_schema disagree.
    #[error("{table} has {binlog} columns in the binlog but {schema} in information_schema")]
    Columns {
        table: String,
        binlog: usize,
        schema: usize,
    },
    /// Positions of different logs (`what` compared them).
    #[error("{what}: {source}")]
    Position {
        what: &'static str,
        #[source]
        source: PositionError,
    },
    /// A snapshot key that does not read back (from a topic tail, or as a
    /// query parameter).
    #[error("snapshot key `{key}`: {source}")]
    SnapshotKey {
        key: String,
        #[source]
        source: BoxError,
    },
    /// A table's snapshot key changed while the copy ran.
    #[error("{table}: the snapshot key has {now} columns now, {began} when the copy began")]
    KeyColumns {
        table: String,
        now: usize,
        began: usize,
    },
}

impl DataError {
    /// A row of `db.table` that did not decode, render or format.
    pub fn row(
        db: &str,
        table: &str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        DataError::Row {
            table: format!("{db}.{table}"),
            source: Box::new(source),
        }
    }
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
