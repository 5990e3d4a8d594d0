//! Errors of the Core, split by what to do about them.
//!
//! A [`TaskError::Transient`] (connection lost, broker down, ZooKeeper blip) is
//! retried with capped, jittered back-off from the last context. A
//! [`TaskError::Definite`] (binlog purged, access denied, bad config, table
//! metadata that does not match the rows) stops the task: it is written into
//! the instance node and logged once. [`TaskError::Fenced`] means another
//! instance owns the task now: stop writing at once.

use crate::decode::Flavor;
use crate::sink::kafka::error::DeliveryError;
use crate::source::preflight::PreflightProblem;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
pub use replicator_common::backoff::Backoff;
use replicator_common::config::{PasswordError, UnknownFormat};
use replicator_common::gtid::{GtidSet, GtidSetParseError};
use replicator_common::kafka_security::PropertyErrors;
use replicator_common::kafka_security::SaslPasswordError;
use replicator_common::position::PositionError;
use replicator_common::source_conn::SourceConnError;
use replicator_common::zk::{ZkClientError, ZkError};
use std::sync::Arc;

/// The typed error of a lower layer (the Core's own Kafka client, which
/// itself uses this module, so its types are not named here: no import
/// circle; rdkafka's types are named).
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
    /// The source server answered with an error of its own.
    #[error("source error {code}: {message}")]
    SourceServer { code: u16, message: String },
    /// The connection to the source failed (I/O, protocol, driver).
    #[error("source: {0}")]
    Source(#[source] mysql_async::Error),
    /// The source did not accept a connection in time.
    #[error("source {addr} did not answer within {waited_s} s")]
    SourceTimeout { addr: String, waited_s: u64 },
    /// The source ended the binlog stream.
    #[error("source closed the binlog stream")]
    SourceClosed,
    /// No server of `source.hosts` is usable now, and some may be later.
    #[error("no usable source server: {}", refusals_text(.0))]
    NoUsableSource(Vec<Refusal>),
    /// `snapshot: when_needed` after a purged binlog: the context now starts
    /// at `at` with a snapshot, which the next run takes.
    #[error("binlog gone ({}); snapshot.when_needed restarts at {at} with a snapshot", .gone.message)]
    RestartWithSnapshot {
        at: replicator_common::position::BinlogPos,
        #[source]
        gone: mysql_async::ServerError,
    },
    #[error(transparent)]
    Zk(#[from] ZkError),
    /// The context node disappeared between its creation and its read.
    #[error("context {path} vanished")]
    ContextVanished { path: String },
    /// ZooKeeper refused or lost a context write (not a fence: that is
    /// [`TaskError::Fenced`]).
    #[error("writing context {path}: {source}")]
    ContextWrite {
        path: String,
        #[source]
        source: ZkClientError,
    },
    /// The pipeline's task panicked or was cancelled.
    #[error("pipeline task: {0}")]
    PipelineTask(#[source] tokio::task::JoinError),
    /// Kafka did not take or acknowledge what was sent.
    #[error("{context}: {source}")]
    Kafka {
        context: &'static str,
        #[source]
        source: BoxError,
    },
    /// The producer could not deliver a message (after its retries): the
    /// first failure, as the tracker recorded it.
    #[error("Kafka delivery failed: {0}")]
    Delivery(#[source] Arc<DeliveryError>),
    /// The producer refused a message for `topic` for now.
    #[error("producing to {topic}: {source}")]
    Produce {
        topic: String,
        #[source]
        source: BoxError,
    },
    /// Creating `topic` failed in a way a retry may get past.
    #[error("creating topic {topic}: {source}")]
    CreateTopic {
        topic: String,
        #[source]
        source: Box<KafkaError>,
    },
    /// The broker's metadata names no leader for some partition of `topic`.
    #[error("topic {topic} has no partition leaders in metadata (waited {waited_ms} ms)")]
    NoLeaders { topic: String, waited_ms: u128 },
    /// Reading the tail of `topic` (the last positions this task delivered)
    /// failed at `step`, on `partition` when it concerns one.
    #[error("{step} {topic}{}: {source}", partition.map(|p| format!("/{p}")).unwrap_or_default())]
    Tail {
        step: &'static str,
        topic: String,
        partition: Option<i32>,
        #[source]
        source: Box<KafkaError>,
    },
    /// Partitions of `topic` whose tail read did not reach the reported end.
    #[error(
        "reading the tail of {topic}: partitions {} did not reach their end within {waited_s} s",
        join(partitions, ",")
    )]
    TailBehind {
        topic: String,
        partitions: Vec<i32>,
        waited_s: u64,
    },
}

/// Why one server of `source.hosts` was passed over.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{addr}: {source}")]
    Failed {
        addr: String,
        #[source]
        source: TaskError,
    },
    #[error("{addr}: read-only (a replica, not a primary)")]
    ReadOnly { addr: String },
}

fn join<T: std::fmt::Display>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

fn refusals_text(r: &[Refusal]) -> String {
    join(r, "; ")
}

/// Errors that retrying cannot fix.
#[derive(Debug, thiserror::Error)]
pub enum DefiniteError {
    /// The server no longer has the binlog the stream asked for (error 1236).
    #[error("binlog position is gone on the source (server error {}): {}; to start over from source.start, delete the task's context node", .0.code, .0.message)]
    BinlogGone(#[source] mysql_async::ServerError),
    /// The source user may not log in or lacks a privilege.
    #[error("access denied on the source: {} ({})", .0.message, .0.code)]
    AccessDenied(#[source] mysql_async::ServerError),
    #[error("source is not set up for row replication: {0}")]
    Preflight(#[from] PreflightError),
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
    /// The Kafka admin client cannot be made from the task's settings.
    #[error("cannot create the Kafka admin client: {0}")]
    KafkaAdmin(#[source] KafkaError),
    /// The broker refused for good to create `topic` as configured.
    #[error("Kafka refused to create topic {topic} (partitions {partitions}, replication factor {}, min.insync.replicas {}): {code}",
        or_default(.replication_factor), or_default(.min_insync_replicas))]
    TopicRefused {
        topic: String,
        partitions: u32,
        replication_factor: Option<u16>,
        min_insync_replicas: Option<u16>,
        #[source]
        code: RDKafkaErrorCode,
    },
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

fn or_default(v: &Option<u16>) -> String {
    v.map_or_else(|| "broker default".to_string(), |v| v.to_string())
}

/// Why the source (or, for a snapshot, its grants and signal table) cannot
/// be replicated as configured; one variant per check.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// The server's settings and grants: every problem at once.
    #[error("{}", join(.0, "; "))]
    Server(Vec<PreflightProblem>),
    /// `source.start` is `earliest` and the server lists no binlog.
    #[error("SHOW BINARY LOGS lists no binlog")]
    NoBinlog,
    /// The binlog status query returned no row.
    #[error("the binlog status (SHOW MASTER STATUS) is empty: binary logging is off")]
    NoBinlogStatus,
    /// Every server of `source.hosts` refused for good.
    #[error("no usable source server: {}", refusals_text(.0))]
    NoUsableServer(Vec<Refusal>),
    /// The snapshot's tables the source user may not read.
    #[error("snapshot: source user `{user}` lacks SELECT on {}: grant it, exclude the tables, or set \"snapshot\": \"never\"", .tables.join(", "))]
    SnapshotSelect { user: String, tables: Vec<String> },
    /// `snapshot_method: consistent_snapshot` on a server without MariaDB's
    /// `binlog_snapshot_file/position` status.
    #[error("\"snapshot_method\": \"consistent_snapshot\" needs MariaDB (binlog_snapshot_file/position status); use \"snapshot_method\": \"auto\" or \"watermark\" (signal-table watermarks), or \"snapshot\": \"never\"")]
    ConsistentSnapshot,
    /// A watermark snapshot needs a file position, and the source gives a GTID state.
    #[error("the source's current position is a GTID ({0}), not a binlog position")]
    PositionIsGtid(GtidSet),
    /// The watermark signal table cannot work.
    #[error(transparent)]
    Signal(#[from] SignalError),
}

/// Why watermark snapshots cannot run (see [`crate::snapshot::watermark`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error(
        "snapshot watermarks: the signal table {table} does not exist and source user `{user}` \
         cannot create it ({} ({})): create it with `{ddl}` and grant INSERT, UPDATE on it to \
         `{user}`, or grant CREATE, INSERT, UPDATE ON `{database}`.* TO `{user}` (or set \
         source.snapshot_signal_table, \"snapshot_method\": \"consistent_snapshot\" on MariaDB, \
         or \"snapshot\": \"never\")",
        .source.message, .source.code
    )]
    CannotCreate {
        table: String,
        database: String,
        user: String,
        ddl: String,
        #[source]
        source: Box<mysql_async::ServerError>,
    },
    #[error(
        "snapshot watermarks: source user `{user}` cannot write the signal table {table} \
         ({} ({})): grant INSERT, UPDATE ON {table} TO `{user}` (the table must have the \
         columns `task` and `mark`, see docs/snapshots.md)",
        .source.message, .source.code
    )]
    CannotWrite {
        table: String,
        user: String,
        #[source]
        source: Box<mysql_async::ServerError>,
    },
    #[error(
        "snapshot watermarks need binlog_order_commits=ON on the source (it is OFF): without \
         it a transaction before a watermark in the binlog may not be visible to the chunk read"
    )]
    OrderCommits,
    #[error(
        "snapshot watermarks: the signal table's writes do not reach the binlog stream (the \
         stream passed {after} without the probe written before it): check binlog_do_db / \
         binlog_ignore_db on the source, or choose another source.snapshot_signal_table"
    )]
    NotInBinlog { after: String },
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
    #[error("source.snapshot_signal_table `{name}` is not DATABASE.TABLE")]
    SignalTableName { name: String },
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

impl From<mysql_async::Error> for TaskError {
    fn from(e: mysql_async::Error) -> Self {
        classify_mysql(e)
    }
}

impl From<SignalError> for TaskError {
    fn from(e: SignalError) -> Self {
        DefiniteError::Preflight(e.into()).into()
    }
}

impl From<PreflightError> for TaskError {
    fn from(e: PreflightError) -> Self {
        DefiniteError::Preflight(e).into()
    }
}

impl From<ZkError> for TaskError {
    fn from(e: ZkError) -> Self {
        TransientError::Zk(e).into()
    }
}

/// Sorts a MySQL client error into definite or transient.
pub fn classify_mysql(e: mysql_async::Error) -> TaskError {
    match e {
        mysql_async::Error::Server(s) => match s.code {
            1236 => DefiniteError::BinlogGone(s).into(),
            1045 | 1044 | 1142 | 1227 | 1698 | 1370 => DefiniteError::AccessDenied(s).into(),
            _ => TransientError::SourceServer {
                code: s.code,
                message: s.message,
            }
            .into(),
        },
        other => TransientError::Source(other).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    fn server(code: u16, message: &str) -> mysql_async::Error {
        mysql_async::ServerError {
            code,
            message: message.into(),
            state: "HY000".into(),
        }
        .into()
    }

    #[test]
    fn server_errors_are_sorted_by_code_and_keep_the_server_error() {
        let gone = TaskError::from(server(1236, "Could not find first log file name"));
        let text = gone.to_string();
        assert!(
            matches!(gone, TaskError::Definite(DefiniteError::BinlogGone(ref s)) if s.code == 1236),
            "{gone:?}"
        );
        assert!(
            text.starts_with("binlog position is gone on the source (server error 1236): Could not find first log file name;"),
            "{text}"
        );
        let TaskError::Definite(d) = &gone else {
            unreachable!()
        };
        assert_eq!(
            d.source().map(|s| s.to_string()).as_deref(),
            Some("ERROR 1236 (HY000): Could not find first log file name")
        );

        for code in [1045, 1044, 1142, 1227, 1698, 1370] {
            let e = TaskError::from(server(code, "Access denied for user 'repl'"));
            assert!(
                matches!(e, TaskError::Definite(DefiniteError::AccessDenied(_))),
                "{e:?}"
            );
            assert_eq!(
                e.to_string(),
                format!("access denied on the source: Access denied for user 'repl' ({code})")
            );
        }

        let other = TaskError::from(server(1146, "Table 'db.t' doesn't exist"));
        assert!(matches!(
            other,
            TaskError::Transient(TransientError::SourceServer { code: 1146, .. })
        ));
        assert_eq!(
            other.to_string(),
            "source error 1146: Table 'db.t' doesn't exist"
        );

        let closed = classify_mysql(mysql_async::DriverError::ConnectionClosed.into());
        assert!(
            matches!(closed, TaskError::Transient(TransientError::Source(_))),
            "{closed:?}"
        );
        assert_eq!(
            closed.to_string(),
            "source: Driver error: `Connection to the server is closed.'"
        );
    }

    #[test]
    fn preflight_errors_are_definite_and_say_the_source_is_not_set_up() {
        let one = TaskError::from(PreflightError::Server(vec![PreflightProblem::BinlogOff]));
        assert!(matches!(
            one,
            TaskError::Definite(DefiniteError::Preflight(_))
        ));
        assert_eq!(
            one.to_string(),
            "source is not set up for row replication: binary logging is off (set log_bin)"
        );
        let few = TaskError::from(PreflightError::Server(vec![
            PreflightProblem::FormatNotRow("STATEMENT".into()),
            PreflightProblem::RowImageNotFull("MINIMAL".into()),
        ]));
        assert_eq!(
            few.to_string(),
            "source is not set up for row replication: binlog_format is STATEMENT, it must be ROW; \
             binlog_row_image is MINIMAL, it must be FULL"
        );
        let signal = TaskError::from(SignalError::OrderCommits);
        assert!(matches!(
            signal,
            TaskError::Definite(DefiniteError::Preflight(PreflightError::Signal(
                SignalError::OrderCommits
            )))
        ));
        assert!(signal.to_string().starts_with(
            "source is not set up for row replication: snapshot watermarks need binlog_order_commits=ON"
        ));
        let select = TaskError::from(PreflightError::SnapshotSelect {
            user: "repl".into(),
            tables: vec!["db.a".into(), "db.secret".into()],
        });
        assert!(
            select
                .to_string()
                .contains("source user `repl` lacks SELECT on db.a, db.secret: grant it"),
            "{select}"
        );
    }

    #[test]
    fn refusals_name_every_server_in_order() {
        let refusals = || {
            vec![
                Refusal::Failed {
                    addr: "a:3306".into(),
                    source: server(1045, "Access denied").into(),
                },
                Refusal::ReadOnly {
                    addr: "b:3306".into(),
                },
            ]
        };
        let want =
            "no usable source server: a:3306: access denied on the source: Access denied (1045); \
                    b:3306: read-only (a replica, not a primary)";
        assert_eq!(TransientError::NoUsableSource(refusals()).to_string(), want);
        assert_eq!(
            TaskError::from(PreflightError::NoUsableServer(refusals())).to_string(),
            format!("source is not set up for row replication: {want}")
        );
        let one = Refusal::ReadOnly { addr: "c:1".into() };
        assert_eq!(
            TransientError::NoUsableSource(vec![one]).to_string(),
            "no usable source server: c:1: read-only (a replica, not a primary)"
        );
    }

    #[test]
    fn tail_errors_name_topic_partition_and_the_kafka_error() {
        let e = TransientError::Tail {
            step: "watermarks of",
            topic: "t".into(),
            partition: Some(3),
            source: Box::new(KafkaError::MetadataFetch(
                RDKafkaErrorCode::BrokerTransportFailure,
            )),
        };
        assert!(e.to_string().starts_with("watermarks of t/3: "), "{e}");
        assert!(e.source().is_some());
        let whole = TransientError::Tail {
            step: "assign",
            topic: "t".into(),
            partition: None,
            source: Box::new(KafkaError::MetadataFetch(
                RDKafkaErrorCode::BrokerTransportFailure,
            )),
        };
        assert!(whole.to_string().starts_with("assign t: "), "{whole}");
        let behind = |partitions: Vec<i32>| {
            TransientError::TailBehind {
                topic: "t".into(),
                partitions,
                waited_s: 30,
            }
            .to_string()
        };
        assert_eq!(
            behind(vec![2]),
            "reading the tail of t: partitions 2 did not reach their end within 30 s"
        );
        assert_eq!(
            behind(vec![0, 2, 5]),
            "reading the tail of t: partitions 0,2,5 did not reach their end within 30 s"
        );
    }

    #[test]
    fn topic_refusal_says_what_was_asked() {
        let e = DefiniteError::TopicRefused {
            topic: "db.t".into(),
            partitions: 3,
            replication_factor: Some(2),
            min_insync_replicas: None,
            code: RDKafkaErrorCode::PolicyViolation,
        };
        let text = e.to_string();
        assert!(
            text.starts_with("Kafka refused to create topic db.t (partitions 3, replication factor 2, min.insync.replicas broker default): "),
            "{text}"
        );
        assert!(e.source().is_some());
    }
}
