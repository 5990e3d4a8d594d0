//! Transaction boundary events (`sink.transactions_topic`), pure.
//!
//! Flow in: the rows of one source transaction as the pipeline sends them
//! ([`TxnMeta::on_row`]). Flow out: a BEGIN event written before the first
//! row message of a transaction that has any (transactions touching no
//! included table write nothing), and an END event at its commit with the
//! number of row messages and the count per table; each row's order in
//! its transaction, which the `debezium` format writes into the row's
//! `transaction` block. The transaction id is its GTID, or `file:pos` of
//! its start without GTIDs.
//!
//! Shapes: under `debezium`, Debezium's transaction metadata
//! (`{"status": "BEGIN"|"END", "id", "ts_ms", "event_count",
//! "data_collections": [{"data_collection": "db.table", "event_count"}]}`,
//! key `{"id"}`); otherwise ours (`{"task", "type": "BEGIN"|"END", "id",
//! "ts_ms", "position": {"file", "pos", "gtid"}, "event_count",
//! "data_collections"}`, key `["<id>"]`). Both events travel with a
//! position header like row messages, so duplicate removal after a
//! takeover covers them too.

use super::columns::{push_int, push_str};
use super::Txn;
use replicator_common::config::MessageFormat;

/// The transaction events state of one open transaction.
#[derive(Debug, Clone)]
pub struct TxnMeta {
    pub id: String,
    /// BEGIN was sent.
    pub begun: bool,
    pub total: u64,
    /// `db.table` and its row count, in first-seen order.
    pub per_table: Vec<(String, u64)>,
}

/// A row's place in its transaction (1-based, as Debezium counts).
#[derive(Debug, Clone, Copy)]
pub struct TxnOrder<'a> {
    pub id: &'a str,
    pub total_order: u64,
    pub data_collection_order: u64,
}

impl TxnMeta {
    pub fn new(txn: &Txn<'_>) -> TxnMeta {
        TxnMeta {
            id: txn
                .gtid
                .map_or_else(|| format!("{}:{}", txn.file, txn.pos), str::to_string),
            begun: false,
            total: 0,
            per_table: Vec::new(),
        }
    }

    /// Counts one row message of `db.table`; returns its orders.
    pub fn on_row(&mut self, db: &str, table: &str) -> (u64, u64) {
        self.total += 1;
        let named = |t: &str| t.strip_prefix(db).and_then(|r| r.strip_prefix('.')) == Some(table);
        let n = match self.per_table.iter_mut().find(|(t, _)| named(t)) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.per_table.push((format!("{db}.{table}"), 1));
                1
            }
        };
        (self.total, n)
    }

    /// Writes the BEGIN (`end: false`) or END event and its key.
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &self,
        format: MessageFormat,
        task: &str,
        end: bool,
        ts_ms: i64,
        txn: &Txn<'_>,
        out: &mut Vec<u8>,
        key: &mut Vec<u8>,
    ) {
        out.clear();
        key.clear();
        let status = if end { "END" } else { "BEGIN" };
        if format == MessageFormat::Debezium {
            out.extend_from_slice(b"{\"status\":\"");
            out.extend_from_slice(status.as_bytes());
            out.extend_from_slice(b"\",\"id\":");
            push_str(out, &self.id);
            out.extend_from_slice(b",\"ts_ms\":");
            push_int(out, ts_ms);
            key.extend_from_slice(b"{\"id\":");
            push_str(key, &self.id);
            key.push(b'}');
        } else {
            out.extend_from_slice(b"{\"task\":");
            push_str(out, task);
            out.extend_from_slice(b",\"type\":\"");
            out.extend_from_slice(status.as_bytes());
            out.extend_from_slice(b"\",\"id\":");
            push_str(out, &self.id);
            out.extend_from_slice(b",\"ts_ms\":");
            push_int(out, ts_ms);
            out.extend_from_slice(b",\"position\":{\"file\":");
            push_str(out, txn.file);
            out.extend_from_slice(b",\"pos\":");
            push_int(out, txn.pos);
            out.extend_from_slice(b",\"gtid\":");
            match txn.gtid {
                Some(g) => push_str(out, g),
                None => out.extend_from_slice(b"null"),
            }
            out.push(b'}');
            key.push(b'[');
            push_str(key, &self.id);
            key.push(b']');
        }
        out.extend_from_slice(b",\"event_count\":");
        if end {
            push_int(out, self.total);
            out.extend_from_slice(b",\"data_collections\":[");
            for (i, (t, n)) in self.per_table.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"data_collection\":");
                push_str(out, t);
                out.extend_from_slice(b",\"event_count\":");
                push_int(out, *n);
                out.push(b'}');
            }
            out.extend_from_slice(b"]}");
        } else {
            out.extend_from_slice(b"null,\"data_collections\":null}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn txn(gtid: Option<&'static str>) -> Txn<'static> {
        Txn {
            file: "mysql-bin.000002",
            pos: 900,
            gtid,
            json_position: b"",
        }
    }

    #[test]
    fn counts_rows_per_table_and_writes_both_shapes() {
        let t = txn(Some("0-1-7"));
        let mut m = TxnMeta::new(&t);
        assert_eq!(m.on_row("shop", "orders"), (1, 1));
        assert_eq!(m.on_row("shop", "lines"), (2, 1));
        assert_eq!(m.on_row("shop", "orders"), (3, 2));
        assert_eq!(m.on_row("shop.x", "y"), (4, 1));
        // `db.table` is the name: these two spell the same one
        assert_eq!(m.on_row("shop", "x.y"), (5, 2));
        let (mut out, mut key) = (Vec::new(), Vec::new());
        m.write(
            MessageFormat::Debezium,
            "task",
            true,
            5,
            &t,
            &mut out,
            &mut key,
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({"status": "END", "id": "0-1-7", "ts_ms": 5, "event_count": 5,
                   "data_collections": [
                       {"data_collection": "shop.orders", "event_count": 2},
                       {"data_collection": "shop.lines", "event_count": 1},
                       {"data_collection": "shop.x.y", "event_count": 2}]})
        );
        assert_eq!(key, br#"{"id":"0-1-7"}"#);
        m.write(
            MessageFormat::Json,
            "task",
            false,
            5,
            &t,
            &mut out,
            &mut key,
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({"task": "task", "type": "BEGIN", "id": "0-1-7", "ts_ms": 5,
                   "position": {"file": "mysql-bin.000002", "pos": 900, "gtid": "0-1-7"},
                   "event_count": null, "data_collections": null})
        );
        assert_eq!(key, br#"["0-1-7"]"#);
        assert_eq!(TxnMeta::new(&txn(None)).id, "mysql-bin.000002:900");
    }
}
