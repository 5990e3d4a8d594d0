//! GTIDs of both source flavours as one contract type, pure.
//!
//! A [`Gtid`] names one transaction: MariaDB's `domain-server-seq` or
//! MySQL's `uuid:gno`. A [`GtidSet`] is what a context keeps and a server
//! reports: MariaDB's state (the newest GTID per domain, `0-1-42,1-2-7`) or
//! a MySQL set (`uuid:1-42:50,uuid2:7`). Both print and parse as the
//! servers write them, serialize as that text (the context node's `gtid`
//! field, docs/design.md §6), and order only within one stream: a GTID
//! compares with another of the same domain (MariaDB) or source UUID
//! (MySQL); sets compare by inclusion, and sets of different flavours do
//! not compare at all.

use crate::gtid_set::{GtidSetError, MysqlGtidSet};
use crate::position::{MariaGtid, MariaGtidState, PositionError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// One transaction's GTID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Gtid {
    /// `domain-server-seq`.
    Mariadb(MariaGtid),
    /// `uuid:gno`, the UUID in lowercase.
    Mysql { uuid: String, gno: u64 },
}

/// The stream a GTID belongs to: a MariaDB domain or a MySQL source UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GtidStream<'a> {
    Domain(u32),
    Source(&'a str),
}

impl Gtid {
    /// The stream whose transactions this GTID orders among.
    pub fn stream(&self) -> GtidStream<'_> {
        match self {
            Gtid::Mariadb(g) => GtidStream::Domain(g.domain),
            Gtid::Mysql { uuid, .. } => GtidStream::Source(uuid),
        }
    }

    /// The sequence number within its stream.
    pub fn seq(&self) -> u64 {
        match self {
            Gtid::Mariadb(g) => g.seq,
            Gtid::Mysql { gno, .. } => *gno,
        }
    }

    /// Orders two GTIDs of one stream; `None` across streams.
    pub fn compare(&self, other: &Gtid) -> Option<Ordering> {
        (self.stream() == other.stream()).then(|| self.seq().cmp(&other.seq()))
    }
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gtid::Mariadb(g) => write!(f, "{g}"),
            Gtid::Mysql { uuid, gno } => write!(f, "{uuid}:{gno}"),
        }
    }
}

impl FromStr for Gtid {
    type Err = PositionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let Some((uuid, gno)) = s.rsplit_once(':') else {
            return Ok(Gtid::Mariadb(s.parse()?));
        };
        let hex = uuid.chars().filter(|c| *c != '-').count();
        let ok_uuid = hex == 32 && uuid.chars().all(|c| c == '-' || c.is_ascii_hexdigit());
        match gno.parse::<u64>() {
            Ok(gno) if ok_uuid && gno >= 1 => Ok(Gtid::Mysql {
                uuid: uuid.to_ascii_lowercase(),
                gno,
            }),
            _ => Err(PositionError::BadGtid(s.to_string())),
        }
    }
}

/// A set of executed transactions, as a context keeps it. The default is
/// the empty set (whose text, empty, reads as a MariaDB state).
#[derive(Clone, PartialEq, Eq)]
pub enum GtidSet {
    /// MariaDB: the newest GTID of each domain.
    Mariadb(MariaGtidState),
    /// MySQL: per source UUID, the intervals of executed `gno`s.
    Mysql(MysqlGtidSet),
}

impl Default for GtidSet {
    fn default() -> Self {
        GtidSet::Mariadb(MariaGtidState::default())
    }
}

/// Debug output is the server's text: what logs and test failures need.
impl fmt::Debug for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GtidSet({:?})", self.to_string())
    }
}

/// The text is neither a MariaDB GTID state nor a MySQL GTID set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GtidSetParseError {
    #[error(transparent)]
    Mariadb(#[from] PositionError),
    #[error(transparent)]
    Mysql(#[from] GtidSetError),
}

impl GtidSet {
    pub fn is_empty(&self) -> bool {
        match self {
            GtidSet::Mariadb(s) => s.is_empty(),
            GtidSet::Mysql(s) => s.is_empty(),
        }
    }

    pub fn is_mysql(&self) -> bool {
        matches!(self, GtidSet::Mysql(_))
    }

    /// Whether transaction `gtid` is in the set. For MariaDB: its domain's
    /// newest GTID has at least its sequence number.
    pub fn contains(&self, gtid: &Gtid) -> bool {
        match (self, gtid) {
            (GtidSet::Mariadb(s), Gtid::Mariadb(g)) => s
                .gtids()
                .iter()
                .any(|x| x.domain == g.domain && x.seq >= g.seq),
            (GtidSet::Mysql(s), Gtid::Mysql { uuid, gno }) => s.contains(uuid, *gno),
            _ => false,
        }
    }

    /// Adds `gtid` (the newest transaction of its stream, for MariaDB).
    /// False when it is of the other flavour.
    pub fn add(&mut self, gtid: &Gtid) -> bool {
        match (self, gtid) {
            (GtidSet::Mariadb(s), Gtid::Mariadb(g)) => s.advance(*g),
            (GtidSet::Mysql(s), Gtid::Mysql { uuid, gno }) => s.add(uuid, *gno, *gno),
            _ => return false,
        }
        true
    }
}

/// Inclusion: `a <= b` when every transaction of `a` is in `b`. Sets that
/// each have something the other lacks, and non-empty sets of different
/// flavours, do not compare.
impl PartialOrd for GtidSet {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        // the empty set (whose text has no flavour) is in every set
        match (self.is_empty(), other.is_empty()) {
            (true, true) => return Some(Ordering::Equal),
            (true, false) => return Some(Ordering::Less),
            (false, true) => return Some(Ordering::Greater),
            (false, false) => {}
        }
        let (le, ge) = match (self, other) {
            (GtidSet::Mariadb(a), GtidSet::Mariadb(b)) => (maria_le(a, b), maria_le(b, a)),
            (GtidSet::Mysql(a), GtidSet::Mysql(b)) => {
                (a.difference(b).is_empty(), b.difference(a).is_empty())
            }
            _ => return None,
        };
        match (le, ge) {
            (true, true) => Some(Ordering::Equal),
            (true, false) => Some(Ordering::Less),
            (false, true) => Some(Ordering::Greater),
            (false, false) => None,
        }
    }
}

fn maria_le(a: &MariaGtidState, b: &MariaGtidState) -> bool {
    a.gtids().iter().all(|g| {
        b.gtids()
            .iter()
            .any(|x| x.domain == g.domain && x.seq >= g.seq)
    })
}

impl fmt::Display for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GtidSet::Mariadb(s) => write!(f, "{s}"),
            GtidSet::Mysql(s) => write!(f, "{s}"),
        }
    }
}

/// A MySQL set has `:` in every element; anything else is read as a
/// MariaDB state (the empty text is an empty MariaDB state).
impl FromStr for GtidSet {
    type Err = GtidSetParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            Ok(GtidSet::Mysql(s.parse()?))
        } else {
            Ok(GtidSet::Mariadb(s.parse()?))
        }
    }
}

impl Serialize for GtidSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GtidSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const B: &str = "4f22ab58-82db-22f2-af44-d91bb0530673";

    fn set(s: &str) -> GtidSet {
        s.parse().unwrap()
    }

    #[test]
    fn one_gtid_of_each_flavour() {
        let m: Gtid = "0-1-42".parse().unwrap();
        assert_eq!(m.to_string(), "0-1-42");
        assert_eq!(m.stream(), GtidStream::Domain(0));
        let y: Gtid = format!("{}:7", A.to_uppercase()).parse().unwrap();
        assert_eq!(y.to_string(), format!("{A}:7"));
        assert_eq!(y.seq(), 7);
        assert_eq!(
            m.compare(&"0-2-40".parse().unwrap()),
            Some(Ordering::Greater),
            "the same domain on another server orders by sequence"
        );
        assert_eq!(m.compare(&"1-1-1".parse().unwrap()), None);
        assert_eq!(m.compare(&y), None);
        for bad in [
            "",
            "0-1",
            "x-1-2",
            "nope:1",
            &format!("{A}:0"),
            &format!("{A}:x"),
        ] {
            assert!(bad.parse::<Gtid>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sets_parse_print_and_contain() {
        let m = set("1-2-7,0-1-42");
        assert_eq!(m.to_string(), "0-1-42,1-2-7");
        assert!(m.contains(&"0-1-42".parse().unwrap()));
        assert!(m.contains(&"0-3-41".parse().unwrap()));
        assert!(!m.contains(&"0-1-43".parse().unwrap()));
        assert!(!m.contains(&"2-1-1".parse().unwrap()));
        let y = set(&format!("{A}:1-5:7,{B}:3"));
        assert!(y.is_mysql());
        assert!(y.contains(&format!("{A}:7").parse().unwrap()));
        assert!(!y.contains(&format!("{A}:6").parse().unwrap()));
        assert!(!y.contains(&"0-1-1".parse().unwrap()), "other flavour");
        let empty = set("");
        assert!(empty.is_empty() && empty.to_string().is_empty());
        assert_eq!(GtidSet::default(), empty);
        assert_eq!(format!("{:?}", set("0-1-42")), "GtidSet(\"0-1-42\")");
        assert!("0-1".parse::<GtidSet>().is_err());
        assert!(format!("{A}:0").parse::<GtidSet>().is_err());
    }

    #[test]
    fn add_advances_the_set() {
        let mut m = set("0-1-42");
        assert!(m.add(&"0-2-43".parse().unwrap()));
        assert!(m.add(&"5-1-1".parse().unwrap()));
        assert_eq!(m.to_string(), "0-2-43,5-1-1");
        assert!(!m.add(&format!("{A}:1").parse().unwrap()));
        let mut y = set(&format!("{A}:1-5"));
        assert!(y.add(&format!("{A}:6").parse().unwrap()));
        assert_eq!(y.to_string(), format!("{A}:1-6"));
    }

    #[test]
    fn sets_compare_by_inclusion_within_a_flavour() {
        assert_eq!(
            set("0-1-5").partial_cmp(&set("0-1-9,1-1-1")),
            Some(Ordering::Less)
        );
        assert_eq!(
            set("0-1-9").partial_cmp(&set("0-2-9")),
            Some(Ordering::Equal)
        );
        assert_eq!(set("0-1-9").partial_cmp(&set("1-1-1")), None);
        let a = set(&format!("{A}:1-10"));
        assert!(set(&format!("{A}:2-3")) < a);
        assert!(a > set("") && set("") < set("0-1-1") && set("") == set(""));
        assert_eq!(a.partial_cmp(&set(&format!("{A}:5-11"))), None);
        assert_eq!(a.partial_cmp(&set("0-1-1")), None, "flavours never compare");
        // many domains / sources
        let many: String = (0..50)
            .map(|d| format!("{d}-1-{}", d + 1))
            .collect::<Vec<_>>()
            .join(",");
        assert!(set(&many) >= set("49-7-50"));
    }

    #[test]
    fn serde_is_the_server_text() {
        let y = set(&format!("{A}:1-5,{B}:3"));
        let json = serde_json::to_string(&y).unwrap();
        assert_eq!(json, format!("\"{A}:1-5,{B}:3\""));
        assert_eq!(serde_json::from_str::<GtidSet>(&json).unwrap(), y);
        let m: Option<GtidSet> = serde_json::from_str("\"0-1-42\"").unwrap();
        assert_eq!(m, Some(set("0-1-42")));
        let bad = serde_json::from_str::<GtidSet>("\"0-1\"").unwrap_err();
        assert!(bad.to_string().contains("0-1"), "{bad}");
    }
}
