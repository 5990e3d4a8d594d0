//! MySQL GTID sets (`uuid:1-42:50,uuid2:7`), pure.
//!
//! What a MySQL server reports as `@@gtid_executed` and what a context keeps
//! for a MySQL source: per source UUID, the transaction numbers (`gno`)
//! executed, as sorted disjoint closed intervals. Failover needs set algebra
//! (which transactions does the context have that the new server lacks?), so
//! the set is a type, not a string. Written here rather than taken from a
//! crate: `mysql_common` parses a set into `Sid`s but offers no difference or
//! union, and the whole type is ~150 lines with its tests.
//!
//! Flow in: the server's text (whitespace and newlines allowed, UUIDs in any
//! case). Flow out: the canonical text (lowercase, merged intervals), the
//! difference and union of two sets. Bad text is a [`GtidSetError`] naming it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A MySQL GTID set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MysqlGtidSet {
    /// Lowercase UUID -> sorted, disjoint, non-adjacent closed intervals.
    sets: BTreeMap<String, Vec<(u64, u64)>>,
}

/// The text is not a GTID set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad MySQL GTID set `{text}`: {reason}")]
pub struct GtidSetError {
    pub text: String,
    pub reason: String,
}

impl MysqlGtidSet {
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// The source UUIDs the set has transactions of.
    pub fn uuids(&self) -> impl Iterator<Item = &str> {
        self.sets.keys().map(String::as_str)
    }

    /// Adds transactions `lo..=hi` of `uuid`.
    pub fn add(&mut self, uuid: &str, lo: u64, hi: u64) {
        let v = self.sets.entry(uuid.to_ascii_lowercase()).or_default();
        v.push((lo.min(hi), hi.max(lo)));
        v.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(v.len());
        for &(a, b) in v.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *v = merged;
    }

    /// Whether transaction `gno` of `uuid` is in the set.
    pub fn contains(&self, uuid: &str, gno: u64) -> bool {
        self.sets
            .get(&uuid.to_ascii_lowercase())
            .is_some_and(|v| v.iter().any(|&(a, b)| a <= gno && gno <= b))
    }

    /// Everything in `self` that is not in `other`.
    pub fn difference(&self, other: &MysqlGtidSet) -> MysqlGtidSet {
        let mut out = MysqlGtidSet::default();
        for (uuid, mine) in &self.sets {
            let theirs = other.sets.get(uuid).map(Vec::as_slice).unwrap_or(&[]);
            for &(a, b) in mine {
                let mut lo = a;
                for &(c, d) in theirs {
                    if d < lo || c > b {
                        continue;
                    }
                    if c > lo {
                        out.add(uuid, lo, c - 1);
                    }
                    lo = d.saturating_add(1);
                    if lo > b {
                        break;
                    }
                }
                if lo <= b {
                    out.add(uuid, lo, b);
                }
            }
        }
        out
    }

    /// Everything in either set.
    pub fn union(&self, other: &MysqlGtidSet) -> MysqlGtidSet {
        let mut out = self.clone();
        for (uuid, v) in &other.sets {
            for &(a, b) in v {
                out.add(uuid, a, b);
            }
        }
        out
    }

    /// Only the transactions of `uuids`.
    pub fn only(&self, uuids: &[&str]) -> MysqlGtidSet {
        MysqlGtidSet {
            sets: self
                .sets
                .iter()
                .filter(|(u, _)| uuids.contains(&u.as_str()))
                .map(|(u, v)| (u.clone(), v.clone()))
                .collect(),
        }
    }
}

impl fmt::Display for MysqlGtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (uuid, v)) in self.sets.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(uuid)?;
            for &(a, b) in v {
                if a == b {
                    write!(f, ":{a}")?;
                } else {
                    write!(f, ":{a}-{b}")?;
                }
            }
        }
        Ok(())
    }
}

impl FromStr for MysqlGtidSet {
    type Err = GtidSetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| GtidSetError {
            text: s.chars().take(200).collect(),
            reason: reason.to_string(),
        };
        let mut set = MysqlGtidSet::default();
        let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        for part in clean.split(',').filter(|p| !p.is_empty()) {
            let mut fields = part.split(':');
            let uuid = fields.next().unwrap_or_default();
            let hex: String = uuid.chars().filter(|c| *c != '-').collect();
            if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad(&format!("`{uuid}` is not a UUID")));
            }
            let mut any = false;
            for iv in fields {
                any = true;
                let (a, b) = match iv.split_once('-') {
                    Some((a, b)) => (a, b),
                    None => (iv, iv),
                };
                let (a, b) = match (a.parse::<u64>(), b.parse::<u64>()) {
                    (Ok(a), Ok(b)) if a >= 1 && a <= b => (a, b),
                    _ => return Err(bad(&format!("`{iv}` is not an interval N or N-M"))),
                };
                set.add(uuid, a, b);
            }
            if !any {
                return Err(bad(&format!("`{uuid}` has no transaction numbers")));
            }
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const B: &str = "4f22ab58-82db-22f2-af44-d91bb0530673";

    fn set(s: &str) -> MysqlGtidSet {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints_canonically() {
        let s = set(&format!(
            "{},\n{B}:7, {A}:10-12",
            A.to_uppercase() + ":1-5:6"
        ));
        assert_eq!(s.to_string(), format!("{A}:1-6:10-12,{B}:7"));
        assert!(s.contains(A, 11));
        assert!(!s.contains(A, 8));
        assert!(set("").is_empty());
        for bad in ["nope:1", A, &format!("{A}:0"), &format!("{A}:5-3")] {
            assert!(bad.parse::<MysqlGtidSet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn difference_finds_what_a_lagging_server_lacks() {
        let context = set(&format!("{A}:1-120,{B}:1-3"));
        let server = set(&format!("{A}:1-100"));
        assert_eq!(
            context.difference(&server).to_string(),
            format!("{A}:101-120,{B}:1-3")
        );
        assert!(server.difference(&context).is_empty());
        // holes on both sides
        let x = set(&format!("{A}:1-10:20-30"));
        let y = set(&format!("{A}:3-4:8-22:30"));
        assert_eq!(x.difference(&y).to_string(), format!("{A}:1-2:5-7:23-29"));
        // empty, one, many
        assert!(MysqlGtidSet::default().difference(&x).is_empty());
        assert_eq!(
            set(&format!("{A}:5")).difference(&MysqlGtidSet::default()),
            set(&format!("{A}:5"))
        );
    }

    #[test]
    fn union_and_only() {
        let u = set(&format!("{A}:1-3")).union(&set(&format!("{A}:4-6,{B}:1")));
        assert_eq!(u.to_string(), format!("{A}:1-6,{B}:1"));
        assert_eq!(u.only(&[B]).to_string(), format!("{B}:1"));
        assert_eq!(u.uuids().collect::<Vec<_>>(), vec![A, B]);
    }
}
