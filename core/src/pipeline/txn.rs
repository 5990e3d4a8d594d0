//! Transaction boundaries and positions, pure.
//!
//! Follows the stream's file (ROTATE), the start offset of the open
//! transaction (its GTID event or BEGIN), the row number inside it, and the
//! GTID state (MariaDB: the last GTID per domain; MySQL: the executed GTID
//! set, so that a resume on another server asks for exactly what is missing);
//! at each commit (XID, COMMIT, or the end of a standalone
//! statement) it yields the [`Checkpoint`] to resume from: the end offset of
//! the committing event.

use crate::progress::Checkpoint;
use replicator_common::gtid::{Gtid, GtidSet};
use replicator_common::gtid_set::MysqlGtidSet;
use replicator_common::nodes::SnapshotProgress;
use replicator_common::position::{BinlogPos, MariaGtid, MariaGtidState};
use std::sync::Arc;

/// The open transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenTxn {
    pub start: u64,
    pub gtid: Option<Gtid>,
    /// Began with BEGIN (as opposed to a GTID event alone).
    pub began: bool,
    pub rows: u64,
    pub ts_ms: i64,
}

/// Position state of a stream.
#[derive(Debug, Clone)]
pub struct TxnCursor {
    file: String,
    maria: MariaGtidState,
    pending_maria: Option<MariaGtid>,
    mysql: MysqlGtidSet,
    open: Option<OpenTxn>,
    last: Checkpoint,
}

impl TxnCursor {
    /// Starts at `start` (a transaction boundary).
    pub fn new(start: Checkpoint) -> Self {
        let (maria, mysql) = match &start.gtid {
            Some(GtidSet::Mariadb(s)) => (s.clone(), MysqlGtidSet::default()),
            Some(GtidSet::Mysql(s)) => (MariaGtidState::default(), s.clone()),
            None => Default::default(),
        };
        Self {
            file: start.pos.file.clone(),
            maria,
            pending_maria: None,
            mysql,
            open: None,
            last: start,
        }
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn rotate(&mut self, next_file: &str) {
        self.file = next_file.to_string();
    }

    pub fn in_txn(&self) -> bool {
        self.open.is_some()
    }

    pub fn open(&self) -> Option<&OpenTxn> {
        self.open.as_ref()
    }

    /// A MariaDB GTID event at `offset` opens a transaction.
    pub fn maria_gtid(&mut self, offset: u64, gtid: MariaGtid, ts_ms: i64) {
        self.pending_maria = Some(gtid);
        self.open = Some(OpenTxn {
            start: offset,
            gtid: Some(Gtid::Mariadb(gtid)),
            began: false,
            rows: 0,
            ts_ms,
        });
    }

    /// A MySQL GTID event at `offset` opens a transaction.
    pub fn mysql_gtid(&mut self, offset: u64, gtid: Gtid, ts_ms: i64) {
        self.open = Some(OpenTxn {
            start: offset,
            gtid: Some(gtid),
            began: false,
            rows: 0,
            ts_ms,
        });
    }

    /// BEGIN at `offset`: opens a transaction unless a GTID event did.
    /// Returns true when it opened one.
    pub fn begin(&mut self, offset: u64, ts_ms: i64) -> bool {
        match &mut self.open {
            Some(t) => {
                t.began = true;
                false
            }
            None => {
                self.open = Some(OpenTxn {
                    start: offset,
                    gtid: None,
                    began: true,
                    rows: 0,
                    ts_ms,
                });
                true
            }
        }
    }

    /// A statement outside BEGIN..COMMIT (DDL): opens its own transaction when
    /// none is open. Returns true when it opened one.
    pub fn statement(&mut self, offset: u64, ts_ms: i64) -> bool {
        if self.open.is_some() {
            return false;
        }
        self.open = Some(OpenTxn {
            start: offset,
            gtid: None,
            began: false,
            rows: 0,
            ts_ms,
        });
        true
    }

    /// Takes the next row number of the open transaction.
    pub fn next_row(&mut self) -> Option<(u64, u64)> {
        let t = self.open.as_mut()?;
        let row = t.rows;
        t.rows += 1;
        Some((t.start, row))
    }

    /// The transaction ends with the event ending at `end_pos`. `events` is
    /// how many messages it produced.
    pub fn commit(&mut self, end_pos: u64, ts_ms: i64, events: u64) -> Checkpoint {
        if let Some(g) = self.pending_maria.take() {
            self.maria.advance(g);
        }
        if let Some(t) = self.open.take() {
            if let Some(Gtid::Mysql { uuid, gno }) = &t.gtid {
                self.mysql.add(uuid, *gno, *gno);
            }
        }
        self.last = Checkpoint {
            pos: BinlogPos::new(self.file.clone(), end_pos),
            gtid: self.gtid_state(),
            event_ts_ms: ts_ms,
            events: self.last.events + events,
            snapshot: self.last.snapshot.clone(),
        };
        self.last.clone()
    }

    /// Records snapshot progress: carried by every later checkpoint.
    pub fn set_snapshot(&mut self, snapshot: Option<Arc<SnapshotProgress>>) {
        self.last.snapshot = snapshot;
    }

    /// The last commit, with `ts_ms` as event time (idle source heartbeat).
    pub fn idle_at(&mut self, ts_ms: i64) -> Checkpoint {
        self.last.event_ts_ms = self.last.event_ts_ms.max(ts_ms);
        self.last.clone()
    }

    pub fn last(&self) -> &Checkpoint {
        &self.last
    }

    fn gtid_state(&self) -> Option<GtidSet> {
        if !self.maria.is_empty() {
            Some(GtidSet::Mariadb(self.maria.clone()))
        } else if !self.mysql.is_empty() {
            Some(GtidSet::Mysql(self.mysql.clone()))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> Checkpoint {
        Checkpoint {
            pos: BinlogPos::new("mysql-bin.000001", 4),
            gtid: Some("0-1-5".parse().unwrap()),
            event_ts_ms: 0,
            events: 10,
            snapshot: None,
        }
    }

    #[test]
    fn mariadb_transaction_positions() {
        let mut c = TxnCursor::new(start());
        c.rotate("mysql-bin.000002");
        c.maria_gtid(100, "0-1-6".parse().unwrap(), 1000);
        assert!(!c.begin(140, 1000), "GTID already opened it");
        assert_eq!(c.next_row(), Some((100, 0)));
        assert_eq!(c.next_row(), Some((100, 1)));
        let cp = c.commit(400, 1000, 2);
        assert_eq!(cp.pos, BinlogPos::new("mysql-bin.000002", 400));
        assert_eq!(
            cp.gtid.as_ref().map(ToString::to_string).as_deref(),
            Some("0-1-6")
        );
        assert_eq!(cp.events, 12);
        assert!(!c.in_txn());
        assert_eq!(c.next_row(), None);
    }

    #[test]
    fn begin_without_gtid_and_standalone_statement() {
        let mut c = TxnCursor::new(Checkpoint {
            gtid: None,
            ..start()
        });
        assert!(c.begin(200, 5));
        assert_eq!(c.next_row(), Some((200, 0)));
        c.commit(300, 5, 1);
        assert!(c.statement(300, 6));
        assert_eq!(c.next_row(), Some((300, 0)));
        let cp = c.commit(350, 6, 1);
        assert_eq!(cp.pos.pos, 350);
        assert_eq!(cp.gtid, None);
        assert_eq!(c.idle_at(99).event_ts_ms, 99);
    }

    #[test]
    fn mysql_gtid_is_kept() {
        let mut c = TxnCursor::new(Checkpoint {
            gtid: None,
            ..start()
        });
        c.mysql_gtid(
            4,
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:23".parse().unwrap(),
            1,
        );
        let cp = c.commit(90, 1, 0);
        assert_eq!(
            cp.gtid.as_ref().map(ToString::to_string).as_deref(),
            Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:23")
        );
        // the state is the executed set, not the last GTID (no MySQL server
        // can run here: tested on the documented set text)
        let mut c = TxnCursor::new(Checkpoint {
            gtid: Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-22".parse().unwrap()),
            ..start()
        });
        c.mysql_gtid(
            4,
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:23".parse().unwrap(),
            1,
        );
        c.commit(90, 1, 0);
        c.mysql_gtid(
            90,
            "4f22ab58-82db-22f2-af44-d91bb0530673:1".parse().unwrap(),
            1,
        );
        let cp = c.commit(190, 1, 0);
        assert_eq!(
            cp.gtid.as_ref().map(ToString::to_string).as_deref(),
            Some(
                "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-23,4f22ab58-82db-22f2-af44-d91bb0530673:1"
            )
        );
    }

    #[test]
    fn mysql_transaction_payload_positions() {
        // MySQL 8 with binlog_transaction_compression: the GTID event at 100,
        // then one TRANSACTION_PAYLOAD event 180..900 whose inner events
        // (BEGIN, rows events, XID) all carry the payload event's place
        // (decode::payload). Rows keep distinct positions by row number and
        // the transaction commits at the payload event's end.
        let mut c = TxnCursor::new(Checkpoint {
            gtid: None,
            ..start()
        });
        c.mysql_gtid(
            100,
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:5".parse().unwrap(),
            1,
        );
        assert!(!c.begin(180, 1), "the GTID opened it");
        let rows: Vec<_> = (0..3).map(|_| c.next_row().unwrap()).collect();
        assert_eq!(rows, [(100, 0), (100, 1), (100, 2)]);
        let cp = c.commit(900, 1, 3);
        assert_eq!(cp.pos, BinlogPos::new("mysql-bin.000001", 900));
        assert_eq!(
            cp.gtid.as_ref().map(ToString::to_string).as_deref(),
            Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:5")
        );
    }
}
