//! Binlog positions and GTIDs.
//!
//! A [`BinlogPos`] is a file name and an offset. Two positions compare only
//! when their files belong to the same log (same base name): comparing
//! `mysql-bin.000003` with `other-bin.000001` is an error, not an answer.
//! A [`MariaGtid`] is MariaDB's `domain-server-seq`; MySQL GTID sets are kept
//! as the server prints them.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A file/offset position in a server's binary log.
/// Serialized as `{"file": ..., "pos": ...}`; unknown fields are ignored
/// (it is flattened into the context node, which carries other fields).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BinlogPos {
    pub file: String,
    pub pos: u64,
}

/// Errors of position parsing and comparison.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    #[error("positions of different binlogs cannot be compared: `{0}` and `{1}`")]
    DifferentStreams(String, String),
    #[error("binlog file name `{0}` has no numeric extension")]
    BadFile(String),
    #[error("bad position `{0}`: expected FILE:POS")]
    BadPosition(String),
    #[error("bad MariaDB GTID `{0}`: expected DOMAIN-SERVER-SEQ")]
    BadGtid(String),
}

/// Splits `mysql-bin.000042` into (`mysql-bin`, 42).
pub fn split_file(file: &str) -> Result<(&str, u64), PositionError> {
    let (base, ext) = file
        .rsplit_once('.')
        .ok_or_else(|| PositionError::BadFile(file.to_string()))?;
    if ext.is_empty() || !ext.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PositionError::BadFile(file.to_string()));
    }
    let n = ext
        .parse()
        .map_err(|_| PositionError::BadFile(file.to_string()))?;
    Ok((base, n))
}

impl BinlogPos {
    pub fn new(file: impl Into<String>, pos: u64) -> Self {
        Self {
            file: file.into(),
            pos,
        }
    }

    /// Orders two positions of the same log; fails across logs.
    pub fn compare(&self, other: &BinlogPos) -> Result<Ordering, PositionError> {
        let (base_a, n_a) = split_file(&self.file)?;
        let (base_b, n_b) = split_file(&other.file)?;
        if base_a != base_b {
            return Err(PositionError::DifferentStreams(
                self.to_string(),
                other.to_string(),
            ));
        }
        Ok(n_a.cmp(&n_b).then(self.pos.cmp(&other.pos)))
    }
}

impl fmt::Display for BinlogPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

impl FromStr for BinlogPos {
    type Err = PositionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (file, pos) = s
            .rsplit_once(':')
            .ok_or_else(|| PositionError::BadPosition(s.to_string()))?;
        let pos = pos
            .parse()
            .map_err(|_| PositionError::BadPosition(s.to_string()))?;
        if file.is_empty() {
            return Err(PositionError::BadPosition(s.to_string()));
        }
        Ok(Self::new(file, pos))
    }
}

/// One MariaDB GTID: `domain-server-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MariaGtid {
    pub domain: u32,
    pub server: u32,
    pub seq: u64,
}

impl fmt::Display for MariaGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

impl FromStr for MariaGtid {
    type Err = PositionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PositionError::BadGtid(s.to_string());
        let mut it = s.trim().splitn(3, '-');
        let domain = it.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        let server = it.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        let seq = it.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        Ok(Self {
            domain,
            server,
            seq,
        })
    }
}

/// MariaDB's GTID state: one GTID per replication domain, as `@@gtid_binlog_pos`
/// prints it (`0-1-42,1-2-7`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MariaGtidState(Vec<MariaGtid>);

impl MariaGtidState {
    /// Records `gtid` as the newest of its domain.
    pub fn advance(&mut self, gtid: MariaGtid) {
        match self.0.iter_mut().find(|g| g.domain == gtid.domain) {
            Some(g) => *g = gtid,
            None => {
                self.0.push(gtid);
                self.0.sort_by_key(|g| g.domain);
            }
        }
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn gtids(&self) -> &[MariaGtid] {
        &self.0
    }
}

impl fmt::Display for MariaGtidState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{g}")?;
        }
        Ok(())
    }
}

impl FromStr for MariaGtidState {
    type Err = PositionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut state = Self::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            state.advance(part.parse()?);
        }
        Ok(state)
    }
}

/// Whether a GTID string is a MySQL GTID set (`uuid:1-42`) rather than MariaDB's.
pub fn is_mysql_gtid_set(s: &str) -> bool {
    s.contains(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_positions_within_a_log() {
        let a = BinlogPos::new("mysql-bin.000003", 4711);
        let b = BinlogPos::new("mysql-bin.000003", 5000);
        let c = BinlogPos::new("mysql-bin.000010", 4);
        assert_eq!(a.compare(&b), Ok(Ordering::Less));
        assert_eq!(c.compare(&b), Ok(Ordering::Greater));
        assert_eq!(a.compare(&a.clone()), Ok(Ordering::Equal));
        // numeric, not lexical, extension order
        let d = BinlogPos::new("mysql-bin.999999", 4);
        let e = BinlogPos::new("mysql-bin.1000000", 4);
        assert_eq!(d.compare(&e), Ok(Ordering::Less));
    }

    #[test]
    fn refuses_to_compare_different_logs() {
        let a = BinlogPos::new("mysql-bin.000003", 4);
        let b = BinlogPos::new("other.000003", 4);
        assert!(matches!(
            a.compare(&b),
            Err(PositionError::DifferentStreams(..))
        ));
        assert!(matches!(
            a.compare(&BinlogPos::new("nofile", 4)),
            Err(PositionError::BadFile(_))
        ));
    }

    #[test]
    fn display_and_parse_round_trip() {
        let a = BinlogPos::new("mysql-bin.000003", 4711);
        assert_eq!(a.to_string(), "mysql-bin.000003:4711");
        assert_eq!("mysql-bin.000003:4711".parse::<BinlogPos>(), Ok(a));
        assert!("nopos".parse::<BinlogPos>().is_err());
        assert!(":4".parse::<BinlogPos>().is_err());
    }

    #[test]
    fn maria_gtid_state() {
        let mut s: MariaGtidState = "1-2-7, 0-1-42".parse().unwrap();
        assert_eq!(s.to_string(), "0-1-42,1-2-7");
        s.advance("0-1-43".parse().unwrap());
        s.advance("5-1-1".parse().unwrap());
        assert_eq!(s.to_string(), "0-1-43,1-2-7,5-1-1");
        assert!("0-1".parse::<MariaGtid>().is_err());
        assert!("a-b-c".parse::<MariaGtidState>().is_err());
        assert!(is_mysql_gtid_set(
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5"
        ));
        assert!(!is_mysql_gtid_set("0-1-42"));
    }
}
