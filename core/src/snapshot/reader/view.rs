//! The connections and read views a snapshot read starts with: a
//! connection with the session settings every read needs ([`open`]), a
//! consistent-snapshot transaction and the exact binlog position of its
//! read view (MariaDB, [`begin`]), or a committed LOW watermark (a
//! watermark snapshot, [`low`]); and which server errors a chunk read
//! retries ([`Failure`]).
//!
//! Failure: `begin` on a server without `binlog_snapshot_*` status (not
//! MariaDB) is a definite preflight error naming the settings to use.

use super::ReaderSpec;
use crate::error::{classify_mysql, PreflightError, TaskError};
use crate::snapshot::watermark::{ChunkMark, Edge, Signal};
use crate::source;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use replicator_common::position::BinlogPos;

pub(super) async fn open(spec: &ReaderSpec) -> Result<Conn, TaskError> {
    let mut conn = source::connect(&spec.source, spec.password.as_ref()).await?;
    conn.query_drop("SET NAMES utf8mb4").await?;
    conn.query_drop("SET SESSION time_zone = '+00:00'").await?;
    conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await?;
    Ok(conn)
}

pub(super) enum Failure {
    Retry(TaskError),
    Definite(TaskError),
}

impl From<mysql_async::Error> for Failure {
    fn from(e: mysql_async::Error) -> Self {
        match classify_mysql(e) {
            TaskError::Definite(d) => Failure::Definite(TaskError::Definite(d)),
            other => Failure::Retry(other),
        }
    }
}

/// Starts a consistent-snapshot transaction and returns the binlog
/// position its read view corresponds to (MariaDB's `binlog_snapshot_*`).
pub(super) async fn begin(conn: &mut Conn) -> Result<BinlogPos, Failure> {
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await?;
    let status: Vec<(String, String)> =
        match conn.query("SHOW STATUS LIKE 'binlog_snapshot_%'").await {
            Ok(s) => s,
            Err(e) => {
                let _ = conn.query_drop("ROLLBACK").await;
                return Err(e.into());
            }
        };
    let get = |n: &str| {
        status
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let (Some(file), Some(pos)) = (get("binlog_snapshot_file"), get("binlog_snapshot_position"))
    else {
        let _ = conn.query_drop("ROLLBACK").await;
        return Err(Failure::Definite(PreflightError::ConsistentSnapshot.into()));
    };
    Ok(BinlogPos::new(file, pos.parse().unwrap_or(0)))
}

/// Writes the LOW watermark of a new number (committed), for a chunk that
/// will have a HIGH watermark (`high`) or not.
pub(super) async fn low(
    signal: &Signal,
    conn: &mut Conn,
    high: bool,
) -> Result<ChunkMark, Failure> {
    let n = signal.next();
    signal.write(conn, n, Edge::Low).await?;
    Ok(ChunkMark { n, high })
}
