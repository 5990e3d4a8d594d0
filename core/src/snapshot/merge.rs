//! Merging snapshot chunks into the stream, pure.
//!
//! A chunk is the state of its key range at binlog position `L` (the read
//! view of its transaction). It may only be emitted at a transaction
//! boundary `B >= L` of the stream, and every key the stream changed in a
//! transaction starting at or after `L` is dropped from it: the stream
//! already sent (or is about to send, before `B`) a newer value of that
//! row. [`Changes`] remembers, for the tables being copied, which keys the
//! stream changed and where; [`Changes::prune`] forgets what no chunk read
//! later can need (everything before the `L` of the chunk just emitted:
//! chunks are read one after the other, so their `L` never goes back).

use replicator_common::position::{BinlogPos, PositionError};
use std::cmp::Ordering;
use std::collections::HashMap;

/// True when the stream, at boundary `cursor`, may emit a chunk read at `at`.
pub fn ready(cursor: &BinlogPos, at: &BinlogPos) -> Result<bool, PositionError> {
    Ok(cursor.compare(at)? != Ordering::Less)
}

/// Keys changed by the stream, per table, with the start of the newest
/// transaction that changed each.
#[derive(Debug, Default)]
pub struct Changes {
    per_table: HashMap<(String, String), HashMap<Vec<u8>, BinlogPos>>,
}

impl Changes {
    /// The transaction starting at `at` changed `key` of `db`.`table`.
    pub fn record(&mut self, db: &str, table: &str, key: &[u8], at: &BinlogPos) {
        let keys = match self.per_table.get_mut(&(db.to_string(), table.to_string())) {
            Some(k) => k,
            None => self
                .per_table
                .entry((db.to_string(), table.to_string()))
                .or_default(),
        };
        match keys.get_mut(key) {
            Some(p) => p.clone_from(at),
            None => {
                keys.insert(key.to_vec(), at.clone());
            }
        }
    }

    /// The transaction starting at `at` changed a row of `db`.`table` from
    /// key `before` (update, delete) to key `after` (insert, update): both
    /// are recorded, so an update that changes the key leaves the old key
    /// out of a chunk read before it as well as the new one.
    pub fn record_row(
        &mut self,
        db: &str,
        table: &str,
        before: Option<&[u8]>,
        after: Option<&[u8]>,
        at: &BinlogPos,
    ) {
        if let Some(k) = after {
            self.record(db, table, k, at);
        }
        if let Some(k) = before.filter(|b| Some(*b) != after) {
            self.record(db, table, k, at);
        }
    }

    /// True when the stream changed `key` in a transaction starting at or
    /// after `at` (a chunk read at `at` must leave that key out).
    pub fn changed_since(
        &self,
        db: &str,
        table: &str,
        key: &[u8],
        at: &BinlogPos,
    ) -> Result<bool, PositionError> {
        let Some(keys) = self.per_table.get(&(db.to_string(), table.to_string())) else {
            return Ok(false);
        };
        match keys.get(key) {
            None => Ok(false),
            Some(p) => Ok(p.compare(at)? != Ordering::Less),
        }
    }

    /// True when a change of `db`.`table` is remembered (else no key of a
    /// chunk of it needs [`Self::changed_since`]).
    pub fn has_table(&self, db: &str, table: &str) -> bool {
        self.per_table.keys().any(|(d, t)| d == db && t == table)
    }

    /// Forgets changes before `at`.
    pub fn prune(&mut self, at: &BinlogPos) {
        for keys in self.per_table.values_mut() {
            keys.retain(|_, p| p.compare(at) != Ok(Ordering::Less));
        }
        self.per_table.retain(|_, k| !k.is_empty());
    }

    /// Keys remembered (memory bound check).
    pub fn len(&self) -> usize {
        self.per_table.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pos: u64) -> BinlogPos {
        BinlogPos::new("mysql-bin.000001", pos)
    }

    #[test]
    fn a_chunk_waits_for_the_stream_to_reach_its_read_view() {
        assert!(!ready(&p(100), &p(200)).unwrap());
        assert!(ready(&p(200), &p(200)).unwrap());
        assert!(ready(&p(300), &p(200)).unwrap());
        assert!(ready(&BinlogPos::new("mysql-bin.000002", 4), &p(200)).unwrap());
        assert!(ready(&BinlogPos::new("other.000002", 4), &p(200)).is_err());
    }

    #[test]
    fn keys_changed_at_or_after_the_read_view_are_left_out() {
        let mut c = Changes::default();
        c.record("d", "t", b"[1]", &p(100));
        c.record("d", "t", b"[2]", &p(300));
        c.record("d", "u", b"[1]", &p(300));
        // chunk of d.t read at 200: key 1 changed before (the chunk has the
        // newer value), key 2 after (the stream has it)
        assert!(!c.changed_since("d", "t", b"[1]", &p(200)).unwrap());
        assert!(c.changed_since("d", "t", b"[2]", &p(200)).unwrap());
        assert!(c.changed_since("d", "t", b"[2]", &p(300)).unwrap());
        assert!(!c.changed_since("d", "t", b"[3]", &p(200)).unwrap());
        assert!(!c.changed_since("x", "t", b"[2]", &p(200)).unwrap());
        assert!(c.has_table("d", "t") && c.has_table("d", "u"));
        assert!(!c.has_table("x", "t") && !c.has_table("d", "v"));
        // a newer change of key 1 moves it
        c.record("d", "t", b"[1]", &p(400));
        assert!(c.changed_since("d", "t", b"[1]", &p(200)).unwrap());
        assert_eq!(c.len(), 3);
        c.prune(&p(350));
        assert_eq!(c.len(), 1, "only the change at 400 is left");
        c.prune(&p(500));
        assert!(c.is_empty());
    }

    #[test]
    fn an_update_of_the_key_leaves_both_keys_out() {
        let mut c = Changes::default();
        // key 1 becomes key 7 at 300; a chunk read at 200 holds key 1 (old
        // value), one read at 400 holds key 7 (the stream sent it before)
        c.record_row("d", "t", Some(b"[1]"), Some(b"[7]"), &p(300));
        assert!(c.changed_since("d", "t", b"[1]", &p(200)).unwrap());
        assert!(c.changed_since("d", "t", b"[7]", &p(200)).unwrap());
        assert!(!c.changed_since("d", "t", b"[1]", &p(400)).unwrap());
        assert_eq!(c.len(), 2);
        // an update that keeps its key, an insert and a delete: one key each
        c.record_row("d", "t", Some(b"[2]"), Some(b"[2]"), &p(300));
        c.record_row("d", "t", None, Some(b"[3]"), &p(300));
        c.record_row("d", "t", Some(b"[4]"), None, &p(300));
        assert_eq!(c.len(), 5);
        for k in [&b"[2]"[..], b"[3]", b"[4]"] {
            assert!(c.changed_since("d", "t", k, &p(300)).unwrap());
        }
        assert!(!c.changed_since("d", "t", b"[5]", &p(200)).unwrap());
    }
}
