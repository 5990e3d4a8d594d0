//! A table without a usable key (no primary key nor unique NOT NULL key),
//! copied in one consistent read: one `SELECT` of every row at one
//! position (MariaDB's consistent snapshot, or a LOW watermark then a read
//! view), streamed in pieces of `chunk_rows` rows as they fill.
//!
//! Flow in: the table's description. Flow out: the pieces, sent on the
//! reader's channel, all at the same position, the last one `done`; their
//! rows carry no ordering key (the whole row is the message key).
//! Resume: none inside the table; a run that stops during it reads the
//! table again from its start (`mode: single_read` in the progress).
//! Failure: nothing is retried here; errors end the run as classified.

use super::table::{quote, TableSpec};
use super::view::{begin, low, Failure};
use super::{Chunk, ChunkRow, ReaderSpec};
use crate::error::{DataError, DefiniteError, TaskError};
use crate::snapshot::render::{self, Rendered};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use replicator_common::position::BinlogPos;
use tokio::sync::mpsc;

/// Reads table `index` (`db`.`table`, without a usable key) in one
/// consistent read, streamed: pieces of `chunk_rows` rows, all at the same
/// position, sent as they fill (the last one `done`). Returns `false` when
/// the receiver is gone. Nothing is retried here: a failure ends the run
/// (transient or definite as classified) and the next run reads the table
/// again from its start.
#[allow(clippy::too_many_arguments)]
pub(super) async fn single_read(
    spec: &ReaderSpec,
    conn: &mut Conn,
    t: &TableSpec,
    db: &str,
    table: &str,
    index: usize,
    seq: &mut u64,
    tx: &mpsc::Sender<Result<Chunk, TaskError>>,
) -> Result<bool, TaskError> {
    let fail = |f: Failure| match f {
        Failure::Retry(e) | Failure::Definite(e) => e,
    };
    // the server waits on us while a piece waits for the stream
    conn.query_drop("SET SESSION net_write_timeout = 86400")
        .await?;
    let sql = format!(
        "SELECT {} FROM {}.{}",
        t.columns
            .iter()
            .map(|c| quote(&c.name))
            .collect::<Vec<_>>()
            .join(","),
        quote(db),
        quote(table)
    );
    let (at, watermark) = match &spec.watermark {
        None => (begin(conn).await.map_err(fail)?, None),
        // LOW committed, then the read view of the whole read
        Some(signal) => {
            let m = low(signal, conn, false).await.map_err(fail)?;
            conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                .await?;
            (BinlogPos::new("", 0), Some(m))
        }
    };
    tracing::info!(database = %db, table = %table, at = %at,
        "no primary key nor unique NOT NULL key: copying the table in one consistent read");
    let piece = |rows: Vec<ChunkRow>, seq: u64, done: bool| Chunk {
        seq,
        table: index,
        at: at.clone(),
        watermark,
        rows,
        last_key: None,
        done,
        skipped: None,
        key_names: Vec::new(),
        single_read: true,
        def: Some(t.table.clone()),
    };
    let chunk_rows = spec.chunk_rows as usize;
    let mut r = Rendered::default();
    let mut rows = Vec::with_capacity(chunk_rows.min(65_536));
    let read: Result<bool, TaskError> = async {
        let mut result = conn.exec_iter(sql.as_str(), ()).await?;
        while let Some(row) = result.next().await? {
            let values = row.unwrap();
            render::render_row(&t.columns, &t.key_cols, &t.order_cols, &values, &mut r)
                .map_err(|e| DefiniteError::Decode(DataError::row(db, table, e)))?;
            rows.push(ChunkRow {
                key: r.key.clone(),
                after: r.after.clone(),
                raw_key: b"[]".to_vec(),
                at_or_before_mark: 0,
            });
            if rows.len() == chunk_rows {
                let full = std::mem::replace(&mut rows, Vec::with_capacity(chunk_rows.min(65_536)));
                if tx.send(Ok(piece(full, *seq, false))).await.is_err() {
                    return Ok(false);
                }
                *seq += 1;
            }
        }
        Ok(true)
    }
    .await;
    let _ = conn.query_drop("COMMIT").await;
    if !read? {
        return Ok(false);
    }
    let last = piece(std::mem::take(&mut rows), *seq, true);
    if tx.send(Ok(last)).await.is_err() {
        return Ok(false);
    }
    *seq += 1;
    Ok(true)
}
