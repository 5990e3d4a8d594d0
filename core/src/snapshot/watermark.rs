//! Watermark snapshots (Netflix DBLog, as Flink CDC and Debezium's
//! incremental snapshots do it): how a chunk's read position `L` and its
//! emission point are found on a server without MariaDB's
//! `binlog_snapshot_file/position` (MySQL), or wherever
//! `source.snapshot_method` is `watermark`.
//!
//! Flow in: the reader writes a LOW watermark row to the signal table (its
//! own transaction, committed), reads the chunk with a plain `SELECT` in key
//! order, then writes a HIGH watermark row ([`Signal`]). The stream sees
//! both rows as row events of the signal table ([`parse_row`], fed to
//! [`Watermarks::observe`] with the start of their transaction).
//! Flow out: for each chunk, `L` = the start of the LOW watermark's
//! transaction, and the emission point = the first transaction boundary
//! after the HIGH watermark's transaction ([`Watermarks::ready`]). From there
//! on the chunk goes through the same merge as a consistent-snapshot chunk
//! ([`super::merge`]: keys the stream changed at or after `L` are left out),
//! the same emission, positions, context progress and per-partition tail
//! comparison: only how `L` and the emission point are found differs.
//!
//! Why this is exact: the source commits transactions to the engine in
//! binlog order (MySQL's `binlog_order_commits=ON`, checked by
//! [`preflight`]; MariaDB always does), so when the LOW watermark's commit
//! returns, every transaction before it in the binlog is visible to a read
//! that starts afterwards: the chunk holds their values, and every later
//! change of a key in the chunk's range is at or after `L` and is left out
//! of it up to the emission point (the stream sends it). A transaction the
//! `SELECT` saw was committed before the read ended, so it is in the binlog
//! before the HIGH watermark: emitted after the HIGH watermark, every row of
//! the chunk is the row's value at its emission point.
//!
//! Why not positions from `SHOW MASTER STATUS` around the `SELECT`: a
//! transaction is written to the binlog before it commits in the engine, so
//! a transaction that `SHOW MASTER STATUS` already counts may still be
//! invisible to the `SELECT` that follows. The chunk would hold the row's
//! older value while the stream had already sent the newer one before `L`,
//! and the chunk, emitted later, would overwrite it. A watermark is a
//! transaction of its own whose commit has returned: everything before it
//! in the binlog is committed.
//!
//! Tables without a usable key: the LOW watermark, then one
//! `START TRANSACTION WITH CONSISTENT SNAPSHOT` read of the whole table,
//! streamed in pieces that all carry that LOW watermark; there is no HIGH
//! watermark (the read ends after the pieces are sent), so a piece is
//! emitted at any boundary at or after `L`, keys changed since `L` left out.
//! A piece may then hold a row already changed by a transaction the stream
//! has not reached; that transaction's message follows, so the table a
//! consumer rebuilds is the same.
//!
//! Resume: nothing about watermarks is stored. Each run writes its marks
//! under a random run id; marks of other runs and other tasks (the signal
//! table holds one row per task) are ignored, so a replayed binlog with an
//! earlier run's marks changes nothing.
//!
//! Failure: a signal table that is missing and cannot be created, or that
//! the source user may not write, is a definite error naming the table and
//! the grants ([`SignalError`]); so is a signal table whose writes do not
//! reach the binlog (binlog filters on the source), found exactly: the
//! probe written by [`preflight`] must come through the stream before the
//! position the binlog had when it was written.

use crate::decode::Flavor;
use crate::error::{ConfigError, DefiniteError, PreflightError, SignalError, TaskError};
use crate::source::{self, StartAt};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use replicator_common::config::{NamedStart, SnapshotMethod, SourceConfig, StartPosition};
use replicator_common::position::{BinlogPos, PositionError};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

/// How snapshot chunks are made consistent with the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// MariaDB's consistent snapshot at an exact binlog position.
    ConsistentSnapshot,
    /// LOW/HIGH watermark rows in the signal table.
    Watermark,
}

/// The method `source.snapshot_method` asks for on a server of `flavor`.
pub fn method(configured: SnapshotMethod, flavor: Flavor) -> Method {
    match (configured, flavor) {
        (SnapshotMethod::Watermark, _) | (SnapshotMethod::Auto, Flavor::MySql) => Method::Watermark,
        (SnapshotMethod::ConsistentSnapshot, _) | (SnapshotMethod::Auto, Flavor::MariaDb) => {
            Method::ConsistentSnapshot
        }
    }
}

/// Which watermark a signal row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// Before a chunk read.
    Low,
    /// After a chunk read.
    High,
    /// Written once by [`preflight`]: proves the signal table reaches the
    /// stream.
    Probe,
}

impl Edge {
    fn as_str(self) -> &'static str {
        match self {
            Edge::Low => "low",
            Edge::High => "high",
            Edge::Probe => "probe",
        }
    }
}

/// A watermark as written to the signal table's `mark` column:
/// `<run, 16 hex digits>:<number>:<low|high|probe>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub run: u64,
    pub n: u64,
    pub edge: Edge,
}

impl std::fmt::Display for Mark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}:{}:{}", self.run, self.n, self.edge.as_str())
    }
}

impl std::str::FromStr for Mark {
    type Err = BadMark;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadMark(s.to_string());
        let mut parts = s.split(':');
        let (Some(run), Some(n), Some(edge), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let edge = match edge {
            "low" => Edge::Low,
            "high" => Edge::High,
            "probe" => Edge::Probe,
            _ => return Err(bad()),
        };
        Ok(Mark {
            run: u64::from_str_radix(run, 16).map_err(|_| bad())?,
            n: n.parse().map_err(|_| bad())?,
            edge,
        })
    }
}

/// A `mark` value that is not a watermark of this version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a snapshot watermark")]
pub struct BadMark(pub String);

/// What a chunk read under watermarks waits for in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMark {
    /// The number of its LOW (and HIGH) watermark.
    pub n: u64,
    /// A HIGH watermark was written after the read (not for the pieces of
    /// a single read of a table without a usable key).
    pub high: bool,
}

/// The signal row of `task`: the after image (message JSON) of a row of
/// the signal table. `None` for a row that is not one (another shape).
pub fn parse_row(after: &[u8]) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Row {
        task: String,
        mark: String,
    }
    let row: Row = serde_json::from_slice(after).ok()?;
    Some((row.task, row.mark))
}

/// The stream's view of one run's watermarks, pure.
#[derive(Debug)]
pub struct Watermarks {
    task: String,
    run: u64,
    /// Where the binlog ended once the probe was committed: the stream
    /// must see the probe before it passes this.
    probe_after: BinlogPos,
    probe_seen: bool,
    /// Per watermark number, where its LOW and HIGH transactions start.
    seen: BTreeMap<u64, Seen>,
}

#[derive(Debug, Default, Clone)]
struct Seen {
    low: Option<BinlogPos>,
    high: Option<BinlogPos>,
}

impl Watermarks {
    pub fn new(signal: &Signal) -> Watermarks {
        Watermarks {
            task: signal.task.clone(),
            run: signal.run,
            probe_after: signal.probe_after.clone(),
            probe_seen: false,
            seen: BTreeMap::new(),
        }
    }

    /// A signal row of `task` with `mark`, written by the transaction that
    /// starts at `at`. Rows of other tasks and runs are ignored.
    pub fn observe(&mut self, task: &str, mark: &str, at: &BinlogPos) {
        let Ok(m) = mark.parse::<Mark>() else {
            return;
        };
        if task != self.task || m.run != self.run {
            return;
        }
        match m.edge {
            Edge::Probe => self.probe_seen = true,
            // a retried read writes new numbers: the latest of a number wins
            Edge::Low => self.seen.entry(m.n).or_default().low = Some(at.clone()),
            Edge::High => self.seen.entry(m.n).or_default().high = Some(at.clone()),
        }
    }

    /// `Some(L)` when a chunk waiting for `m` may be emitted at the
    /// boundary `last` (no transaction open): its LOW watermark was seen at
    /// `L` and, when it has one, the stream is past its HIGH watermark's
    /// transaction.
    pub fn ready(
        &self,
        m: ChunkMark,
        last: &BinlogPos,
    ) -> Result<Option<BinlogPos>, PositionError> {
        let Some(seen) = self.seen.get(&m.n) else {
            return Ok(None);
        };
        let Some(low) = &seen.low else {
            return Ok(None);
        };
        let past = if m.high {
            match &seen.high {
                Some(high) => last.compare(high)? == Ordering::Greater,
                None => false,
            }
        } else {
            last.compare(low)? != Ordering::Less
        };
        Ok(past.then(|| low.clone()))
    }

    /// A chunk waiting for `n` was emitted: watermarks before `n` are not
    /// needed any more (the pieces of one single read share `n`).
    pub fn emitted(&mut self, n: u64) {
        self.seen = self.seen.split_off(&n);
    }

    /// An error once the stream passed where the binlog ended after the
    /// probe without having seen it: the signal table does not reach the
    /// stream, and no chunk could ever be emitted.
    pub fn check_probe(&self, last: &BinlogPos) -> Result<(), SignalError> {
        if self.probe_seen {
            return Ok(());
        }
        match last.compare(&self.probe_after) {
            Ok(Ordering::Less) | Err(_) => Ok(()),
            Ok(_) => Err(SignalError::NotInBinlog {
                after: self.probe_after.to_string(),
            }),
        }
    }

    /// Watermark numbers remembered (memory bound check).
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The statement that creates the signal table `db`.`table`.
pub fn create_table_sql(db: &str, table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {}.{} (task VARCHAR(128) NOT NULL PRIMARY KEY, \
         mark VARCHAR(64) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        quote(db),
        quote(table)
    )
}

/// Writes one run's watermarks (one row per task, updated in place, so
/// the table stays as small as the number of tasks).
#[derive(Debug)]
pub struct Signal {
    database: String,
    table: String,
    task: String,
    run: u64,
    next: AtomicU64,
    probe_after: BinlogPos,
}

impl Signal {
    /// The next watermark number of this run.
    pub fn next(&self) -> u64 {
        self.next.fetch_add(1, AtomicOrdering::Relaxed)
    }

    /// Writes watermark `n` at `edge`, committed when this returns.
    pub async fn write(
        &self,
        conn: &mut Conn,
        n: u64,
        edge: Edge,
    ) -> Result<(), mysql_async::Error> {
        let mark = Mark {
            run: self.run,
            n,
            edge,
        }
        .to_string();
        conn.exec_drop(
            format!(
                "INSERT INTO {}.{} (task, mark) VALUES (?, ?) ON DUPLICATE KEY UPDATE mark = ?",
                quote(&self.database),
                quote(&self.table)
            ),
            (&self.task, &mark, &mark),
        )
        .await
    }

    fn name(&self) -> String {
        format!("{}.{}", self.database, self.table)
    }
}

/// Server errors of a statement the user may not run, or of a read-only
/// server.
const DENIED: &[u16] = &[1044, 1045, 1142, 1143, 1227, 1290, 1370, 1410, 1698];

/// Before a watermark snapshot: checks `binlog_order_commits` (MySQL),
/// creates the signal table of `cfg` when it is missing (a definite error
/// naming the grants when it cannot), and writes the probe of a new run of
/// `task`.
pub async fn preflight(
    conn: &mut Conn,
    cfg: &SourceConfig,
    task: &str,
) -> Result<Signal, TaskError> {
    let (database, table) = cfg.snapshot_signal().ok_or_else(|| {
        DefiniteError::Config(ConfigError::SignalTableName {
            name: cfg.snapshot_signal_table.clone(),
        })
    })?;
    match conn
        .query_first::<Option<u64>, _>("SELECT @@GLOBAL.binlog_order_commits")
        .await
    {
        Ok(Some(Some(0))) => return Err(SignalError::OrderCommits.into()),
        // MariaDB has no such variable: it always commits in binlog order
        Ok(_) | Err(mysql_async::Error::Server(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let mut signal = Signal {
        database: database.to_string(),
        table: table.to_string(),
        task: task.to_string(),
        run: rand::random(),
        next: AtomicU64::new(1),
        probe_after: BinlogPos::new("", 0),
    };
    let exists: Option<u64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (database, table),
        )
        .await?;
    if exists.unwrap_or(0) == 0 {
        let ddl = create_table_sql(database, table);
        let created = async {
            conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS {}", quote(database)))
                .await?;
            conn.query_drop(&ddl).await
        }
        .await;
        match created {
            Ok(()) => {
                tracing::info!(task = %task, table = %signal.name(), "snapshot signal table created")
            }
            Err(mysql_async::Error::Server(e)) if DENIED.contains(&e.code) => {
                return Err(SignalError::CannotCreate {
                    table: signal.name(),
                    database: database.to_string(),
                    user: cfg.user.clone(),
                    ddl,
                    source: Box::new(e),
                }
                .into())
            }
            Err(e) => return Err(e.into()),
        }
    }
    match signal.write(conn, 0, Edge::Probe).await {
        Ok(()) => {}
        // denied, read-only, or a table of another shape (unknown column)
        Err(mysql_async::Error::Server(e)) if DENIED.contains(&e.code) || e.code == 1054 => {
            return Err(SignalError::CannotWrite {
                table: signal.name(),
                user: cfg.user.clone(),
                source: Box::new(e),
            }
            .into())
        }
        Err(e) => return Err(e.into()),
    }
    signal.probe_after =
        match source::resolve_start(conn, &StartPosition::Named(NamedStart::Current)).await? {
            StartAt::File(p) => p,
            StartAt::Gtid(g) => return Err(PreflightError::PositionIsGtid(g).into()),
        };
    tracing::info!(task = %task, table = %signal.name(), run = %format_args!("{:016x}", signal.run),
        probe_after = %signal.probe_after, "snapshot uses watermarks");
    Ok(signal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pos: u64) -> BinlogPos {
        BinlogPos::new("mysql-bin.000001", pos)
    }

    fn signal(run: u64, probe_after: u64) -> Signal {
        Signal {
            database: "mysql_replicator".into(),
            table: "snapshot_signal".into(),
            task: "orders".into(),
            run,
            next: AtomicU64::new(1),
            probe_after: p(probe_after),
        }
    }

    fn mark(run: u64, n: u64, edge: Edge) -> String {
        Mark { run, n, edge }.to_string()
    }

    #[test]
    fn auto_is_the_consistent_snapshot_on_mariadb_and_watermarks_on_mysql() {
        use SnapshotMethod::*;
        assert_eq!(method(Auto, Flavor::MariaDb), Method::ConsistentSnapshot);
        assert_eq!(method(Auto, Flavor::MySql), Method::Watermark);
        assert_eq!(method(Watermark, Flavor::MariaDb), Method::Watermark);
        assert_eq!(method(Watermark, Flavor::MySql), Method::Watermark);
        assert_eq!(
            method(ConsistentSnapshot, Flavor::MariaDb),
            Method::ConsistentSnapshot
        );
        assert_eq!(
            method(ConsistentSnapshot, Flavor::MySql),
            Method::ConsistentSnapshot
        );
    }

    #[test]
    fn marks_round_trip_and_refuse_other_text() {
        let m = Mark {
            run: 0xdead_beef,
            n: 42,
            edge: Edge::High,
        };
        assert_eq!(m.to_string(), "00000000deadbeef:42:high");
        assert_eq!(m.to_string().parse::<Mark>(), Ok(m));
        for edge in [Edge::Low, Edge::High, Edge::Probe] {
            let m = Mark {
                run: u64::MAX,
                n: 0,
                edge,
            };
            assert_eq!(m.to_string().parse::<Mark>(), Ok(m));
        }
        for bad in ["", "1:2", "1:2:mid", "zz:1:low", "1:x:low", "1:2:low:3"] {
            assert_eq!(bad.parse::<Mark>(), Err(BadMark(bad.into())), "{bad}");
        }
    }

    #[test]
    fn signal_rows_are_read_from_the_after_image() {
        assert_eq!(
            parse_row(br#"{"task":"orders","mark":"01:2:low"}"#),
            Some(("orders".into(), "01:2:low".into()))
        );
        assert_eq!(parse_row(br#"{"task":"orders"}"#), None);
        assert_eq!(parse_row(b"not json"), None);
    }

    #[test]
    fn a_chunk_is_ready_past_its_high_watermark_with_its_low_as_read_position() {
        let mut w = Watermarks::new(&signal(7, 50));
        let chunk = ChunkMark { n: 1, high: true };
        assert_eq!(w.ready(chunk, &p(1000)).unwrap(), None, "nothing seen");
        w.observe("orders", &mark(7, 1, Edge::Low), &p(100));
        assert_eq!(w.ready(chunk, &p(150)).unwrap(), None, "no HIGH yet");
        w.observe("orders", &mark(7, 1, Edge::High), &p(300));
        // the boundary before the HIGH transaction is not past it
        assert_eq!(w.ready(chunk, &p(300)).unwrap(), None);
        assert_eq!(w.ready(chunk, &p(340)).unwrap(), Some(p(100)));
        assert_eq!(
            w.ready(chunk, &BinlogPos::new("mysql-bin.000002", 4))
                .unwrap(),
            Some(p(100))
        );
        assert!(w.ready(chunk, &BinlogPos::new("other.000002", 4)).is_err());
    }

    #[test]
    fn pieces_of_a_single_read_are_ready_from_their_low_watermark() {
        let mut w = Watermarks::new(&signal(7, 50));
        let piece = ChunkMark { n: 3, high: false };
        assert_eq!(w.ready(piece, &p(500)).unwrap(), None);
        w.observe("orders", &mark(7, 3, Edge::Low), &p(200));
        assert_eq!(w.ready(piece, &p(150)).unwrap(), None);
        assert_eq!(w.ready(piece, &p(200)).unwrap(), Some(p(200)));
        // the first piece emitted keeps the mark for the next pieces
        w.emitted(3);
        assert_eq!(w.ready(piece, &p(900)).unwrap(), Some(p(200)));
    }

    #[test]
    fn marks_of_other_tasks_and_runs_are_ignored_and_old_ones_forgotten() {
        let mut w = Watermarks::new(&signal(7, 50));
        let chunk = ChunkMark { n: 1, high: true };
        w.observe("other", &mark(7, 1, Edge::Low), &p(100));
        w.observe("orders", &mark(8, 1, Edge::Low), &p(100));
        w.observe("orders", "not a mark", &p(100));
        assert!(w.is_empty());
        // a retried read wrote number 1 twice: the later LOW wins
        w.observe("orders", &mark(7, 1, Edge::Low), &p(100));
        w.observe("orders", &mark(7, 1, Edge::Low), &p(200));
        w.observe("orders", &mark(7, 1, Edge::High), &p(300));
        w.observe("orders", &mark(7, 2, Edge::Low), &p(400));
        assert_eq!(w.ready(chunk, &p(400)).unwrap(), Some(p(200)));
        assert_eq!(w.len(), 2);
        w.emitted(2);
        assert_eq!(w.len(), 1, "only number 2 is left");
        assert_eq!(w.ready(chunk, &p(400)).unwrap(), None);
    }

    #[test]
    fn a_probe_that_never_comes_through_is_an_error_once_the_stream_passed_it() {
        let mut w = Watermarks::new(&signal(7, 500));
        assert_eq!(w.check_probe(&p(499)), Ok(()));
        assert_eq!(
            w.check_probe(&BinlogPos::new("other.000001", 900)),
            Ok(()),
            "another stream: not comparable, not passed"
        );
        assert!(matches!(
            w.check_probe(&p(500)),
            Err(SignalError::NotInBinlog { .. })
        ));
        // another run's probe does not count
        w.observe("orders", &mark(9, 0, Edge::Probe), &p(450));
        assert!(w.check_probe(&p(600)).is_err());
        w.observe("orders", &mark(7, 0, Edge::Probe), &p(450));
        assert_eq!(w.check_probe(&p(600)), Ok(()));
    }

    #[test]
    fn the_signal_table_statement_quotes_its_names() {
        assert_eq!(
            create_table_sql("ops", "sig`nal"),
            "CREATE TABLE IF NOT EXISTS `ops`.`sig``nal` (task VARCHAR(128) NOT NULL PRIMARY KEY, \
             mark VARCHAR(64) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        );
        let s = signal(1, 0);
        assert_eq!((s.next(), s.next()), (1, 2));
    }
}
