//! One chunk of a table with a usable key, in key order: the rows after
//! the last key read (`WHERE (key) > (last) ORDER BY key LIMIT n+1`, the
//! extra row telling whether the table goes on), each rendered as it
//! arrives, with one flag per tail mark telling whether its key is at or
//! before the mark (compared by the source in SQL).
//!
//! Flow in: the table's description (prefetched, else read here), the last
//! key read and the marks. Flow out: a [`Read`]: the chunk with its
//! position `L` (MariaDB's consistent snapshot, [`super::view::begin`]) or
//! its watermarks (a LOW before the `SELECT`, a HIGH after it); a chunk
//! marked skipped when the table is gone or unreadable; or the table's
//! description when it has no usable key ([`super::single`] reads it).
//! Failures: server errors as [`Failure`] (the caller retries); a key that
//! no longer fits the table's key columns, or a row that does not render,
//! is definite.

use super::table::{quote, table_spec, NotCopied, TableSpec};
use super::view::{begin, low, Failure};
use super::{Chunk, ChunkRow, ReaderSpec};
use crate::error::{DataError, DefiniteError};
use crate::snapshot::render::{self, ColKind, Rendered};
use crate::snapshot::watermark::Edge;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, Value};
use replicator_common::nodes::RawValue;
use replicator_common::position::BinlogPos;

/// What one read of a table gives.
pub(super) enum Read {
    Chunk(Chunk),
    /// The table has no usable key: read it with [`single_read`].
    Unkeyed(TableSpec),
}

pub(super) async fn read_chunk(
    spec: &ReaderSpec,
    conn: &mut Conn,
    db: &str,
    table: &str,
    after: Option<&Vec<RawValue>>,
    marks: &[String],
    prefetched: Option<Result<TableSpec, NotCopied>>,
) -> Result<Read, Failure> {
    let began = std::time::Instant::now();
    let t = match prefetched {
        Some(t) => t,
        None => table_spec(conn, db, table).await?,
    };
    let t = match t {
        Ok(t) if t.order_cols.is_empty() => return Ok(Read::Unkeyed(t)),
        Ok(t) => t,
        Err(reason) => {
            return Ok(Read::Chunk(Chunk {
                seq: 0,
                table: 0,
                at: BinlogPos::new("", 0),
                watermark: None,
                rows: Vec::new(),
                last_key: None,
                done: true,
                skipped: Some(reason.to_string()),
                key_names: Vec::new(),
                single_read: false,
                def: None,
            }))
        }
    };
    let order: Vec<String> = t
        .order_cols
        .iter()
        .map(|&i| quote(&t.columns[i].name))
        .collect();
    let order = order.join(",");
    let placeholders = t
        .order_cols
        .iter()
        .map(|&i| placeholder(t.columns[i].kind))
        .collect::<Vec<_>>()
        .join(",");
    let mut sql = String::from("SELECT ");
    sql.push_str(
        &t.columns
            .iter()
            .map(|c| quote(&c.name))
            .collect::<Vec<_>>()
            .join(","),
    );
    let mut params: Vec<Value> = Vec::new();
    let mut mark_count = 0;
    for m in marks.iter().take(64) {
        let raw: Vec<RawValue> = serde_json::from_str(m).map_err(|e| {
            Failure::Definite(
                DefiniteError::Decode(DataError::SnapshotKey {
                    key: m.to_string(),
                    source: e.into(),
                })
                .into(),
            )
        })?;
        if raw.len() != t.order_cols.len() {
            // The key shape changed (ALTER): no row can match that mark.
            continue;
        }
        sql.push_str(&format!(", (({order}) <= ({placeholders}))"));
        for (r, &i) in raw.iter().zip(&t.order_cols) {
            params.push(key_param(r, t.columns[i].kind)?);
        }
        mark_count += 1;
    }
    sql.push_str(&format!(" FROM {}.{}", quote(db), quote(table)));
    if let Some(after) = after {
        if after.len() == t.order_cols.len() {
            sql.push_str(&format!(" WHERE ({order}) > ({placeholders})"));
            for (r, &i) in after.iter().zip(&t.order_cols) {
                params.push(key_param(r, t.columns[i].kind)?);
            }
        } else {
            return Err(Failure::Definite(
                DefiniteError::Decode(DataError::KeyColumns {
                    table: format!("{db}.{table}"),
                    now: t.order_cols.len(),
                    began: after.len(),
                })
                .into(),
            ));
        }
    }
    // one row more than a chunk: whether the table goes on is known
    // exactly, so a table's last chunk is never empty unless the table is
    sql.push_str(&format!(
        " ORDER BY {order} LIMIT {}",
        u64::from(spec.chunk_rows) + 1
    ));

    let queried = std::time::Instant::now();
    let (at, watermark) = match &spec.watermark {
        None => (begin(conn).await?, None),
        // LOW committed, then a plain SELECT (its own read view)
        Some(signal) => (BinlogPos::new("", 0), Some(low(signal, conn, true).await?)),
    };
    // rows are rendered as they arrive, overlapping the server's sending
    let read = read_rows(spec, conn, &t, &sql, params, mark_count).await;
    let _ = conn.query_drop("COMMIT").await;
    let (out, more) = read.map_err(|e| match e {
        ReadFailure::Server(e) => Failure::from(e),
        ReadFailure::Render(e) => {
            Failure::Definite(DefiniteError::Decode(DataError::row(db, table, e)).into())
        }
    })?;
    if let (Some(signal), Some(m)) = (&spec.watermark, watermark) {
        signal.write(conn, m.n, Edge::High).await?;
    }
    let last_key = match out.last() {
        Some(row) => Some(serde_json::from_slice(&row.raw_key).map_err(|e| {
            Failure::Definite(
                DefiniteError::Decode(DataError::SnapshotKey {
                    key: String::from_utf8_lossy(&row.raw_key).into_owned(),
                    source: Box::new(e),
                })
                .into(),
            )
        })?),
        None => None,
    };
    tracing::debug!(database = %db, table = %table, rows = out.len(),
        spec_ms = (queried - began).as_millis() as u64,
        query_ms = queried.elapsed().as_millis() as u64, "snapshot chunk read");
    let done = !more;
    let key_names = t
        .key_cols
        .iter()
        .map(|&i| t.columns[i].name.clone())
        .collect();
    Ok(Read::Chunk(Chunk {
        seq: 0,
        table: 0,
        at,
        watermark,
        rows: out,
        last_key: last_key.or_else(|| after.cloned()),
        done,
        skipped: None,
        key_names,
        single_read: false,
        def: Some(t.table.clone()),
    }))
}

/// Why [`read_rows`] stopped.
enum ReadFailure {
    Server(mysql_async::Error),
    Render(render::RenderError),
}

impl From<mysql_async::Error> for ReadFailure {
    fn from(e: mysql_async::Error) -> Self {
        ReadFailure::Server(e)
    }
}

/// Runs the chunk's `SELECT` (`chunk_rows + 1` rows at most, the table's
/// columns then one flag per mark) and renders each row as it arrives.
/// Returns the rows of the chunk and whether the table goes on.
async fn read_rows(
    spec: &ReaderSpec,
    conn: &mut Conn,
    t: &TableSpec,
    sql: &str,
    params: Vec<Value>,
    mark_count: usize,
) -> Result<(Vec<ChunkRow>, bool), ReadFailure> {
    let chunk_rows = spec.chunk_rows as usize;
    let n = t.columns.len();
    let mut out = Vec::with_capacity(chunk_rows.min(65_536));
    let mut r = Rendered::default();
    let mut more = false;
    let mut result = conn.exec_iter(sql, Params::Positional(params)).await?;
    while let Some(row) = result.next().await? {
        if out.len() == chunk_rows {
            // the extra row: the table goes on (the rest is drained below)
            more = true;
            continue;
        }
        let values = row.unwrap();
        render::render_row(
            &t.columns,
            &t.key_cols,
            &t.order_cols,
            &values[..n.min(values.len())],
            &mut r,
        )
        .map_err(ReadFailure::Render)?;
        let mut flags = 0u64;
        for i in 0..mark_count {
            if matches!(
                values.get(n + i),
                Some(Value::Int(1)) | Some(Value::UInt(1))
            ) {
                flags |= 1 << i;
            }
        }
        out.push(ChunkRow {
            key: r.key.clone(),
            after: r.after.clone(),
            raw_key: serde_json::to_vec(&r.raw_key).expect("raw keys serialize"),
            at_or_before_mark: flags,
        });
    }
    Ok((out, more))
}

/// A placeholder for an ordering column: DECIMAL compared as DECIMAL (a
/// string parameter would compare as a double and lose digits).
fn placeholder(kind: ColKind) -> &'static str {
    match kind {
        ColKind::Decimal => "CAST(? AS DECIMAL(65,30))",
        _ => "?",
    }
}

/// A raw key value as a parameter for a column of `kind`: integers bound as
/// integers (a string would compare as a double and lose digits).
fn key_param(r: &RawValue, kind: ColKind) -> Result<Value, Failure> {
    if let (ColKind::Int, RawValue::Text(s)) = (kind, r) {
        if let Ok(i) = s.parse::<i64>() {
            return Ok(Value::Int(i));
        }
        if let Ok(u) = s.parse::<u64>() {
            return Ok(Value::UInt(u));
        }
    }
    render::param(r).map_err(|e| {
        let key = serde_json::to_string(r).unwrap_or_default();
        Failure::Definite(
            DefiniteError::Decode(DataError::SnapshotKey {
                key,
                source: e.into(),
            })
            .into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_bind_with_their_column_type() {
        assert_eq!(placeholder(ColKind::Decimal), "CAST(? AS DECIMAL(65,30))");
        assert_eq!(placeholder(ColKind::Int), "?");
        let p = |s: &str, k| match key_param(&RawValue::Text(s.into()), k) {
            Ok(v) => v,
            Err(_) => panic!("no param"),
        };
        assert_eq!(
            p("9007199254740993", ColKind::Int),
            Value::Int(9007199254740993)
        );
        assert_eq!(
            p("18446744073709551615", ColKind::Int),
            Value::UInt(u64::MAX)
        );
        assert_eq!(p("12", ColKind::Text), Value::Bytes(b"12".to_vec()));
    }
}
