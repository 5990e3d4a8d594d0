//! Event header, the [`Event`] enum and [`parse_event`].
//!
//! In: a parsed 19-byte header and the raw body (without header and without
//! the trailing CRC32, except for the artificial first ROTATE, see below).
//! Out: an [`Event`] borrowing from the body. Pure: no state is kept between
//! events.

use std::borrow::Cow;

use replicator_common::position::MariaGtid;

pub use super::codes::{event as types, Flavor};
use super::column::Table;
use super::cursor::Cursor;
use super::error::DecodeError;
use super::rows::RowsEvent;

/// The common 19-byte event header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventHeader {
    pub timestamp: u32,
    pub type_code: u8,
    pub server_id: u32,
    /// Size of the whole event: header, body and checksum.
    pub event_size: u32,
    /// Position of the next event in the binlog file (0 for artificial events).
    pub log_pos: u32,
    pub flags: u16,
}

impl EventHeader {
    pub const LEN: usize = 19;
    /// `LOG_EVENT_ARTIFICIAL_F`: the event was made up by the dump thread
    /// (the first ROTATE of a connection).
    pub const FLAG_ARTIFICIAL: u16 = 0x20;
    /// `LOG_EVENT_IGNORABLE_F`: a reader that does not know the event may skip it.
    pub const FLAG_IGNORABLE: u16 = 0x80;

    /// Parses the header from the first 19 bytes of an event.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(bytes);
        Ok(Self {
            timestamp: c.u32("event header")?,
            type_code: c.u8("event header")?,
            server_id: c.u32("event header")?,
            event_size: c.u32("event header")?,
            log_pos: c.u32("event header")?,
            flags: c.u16("event header")?,
        })
    }

    /// The header as the server wrote it.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0..4].copy_from_slice(&self.timestamp.to_le_bytes());
        b[4] = self.type_code;
        b[5..9].copy_from_slice(&self.server_id.to_le_bytes());
        b[9..13].copy_from_slice(&self.event_size.to_le_bytes());
        b[13..17].copy_from_slice(&self.log_pos.to_le_bytes());
        b[17..19].copy_from_slice(&self.flags.to_le_bytes());
        b
    }
}

/// A decoded binlog event.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// ROTATE (4): the next binlog file and the position in it. The CRC32 that
    /// the artificial first rotate may carry is already stripped.
    Rotate { next_file: String, pos: u64 },
    /// FORMAT_DESCRIPTION (15): server version and whether events carry a
    /// CRC32. `checksum` is read from the checksum-algorithm byte when the
    /// body still has it (the body is the whole event minus the header, or
    /// minus header and CRC); mysql_common's `Event::data()` strips that byte
    /// too, and then `checksum` is false: ask `Event::footer()` instead.
    FormatDescription {
        server_version: String,
        checksum: bool,
    },
    /// QUERY (2): default database and SQL text (BEGIN, COMMIT, DDL...).
    Query { database: String, sql: Cow<'a, str> },
    /// XID (16): commit of a transaction.
    Xid { xid: u64 },
    /// MariaDB GTID (162). `standalone`: no XID/COMMIT follows (DDL).
    /// MariaDB sends GTID, GTID_LIST, ANNOTATE_ROWS and BINLOG_CHECKPOINT
    /// only to clients that `SET @mariadb_slave_capability=4` before the
    /// dump; others get a `BEGIN` QUERY instead of the GTID and dummy
    /// QUERY events (`# Dummy event replacing event type 160 ...`).
    MariaGtid { gtid: MariaGtid, standalone: bool },
    /// MariaDB GTID_LIST (163): the binlog state at the start of a file.
    MariaGtidList(Vec<MariaGtid>),
    /// MySQL GTID (33) / ANONYMOUS_GTID (34).
    MySqlGtid { sid: [u8; 16], gno: u64 },
    /// TABLE_MAP (19).
    TableMap(Table),
    /// WRITE/UPDATE/DELETE rows, v1 (23-25) or v2 (30-32), and MySQL's
    /// PARTIAL_UPDATE_ROWS (39).
    Rows(RowsEvent<'a>),
    /// HEARTBEAT (27) / HEARTBEAT_V2 (41).
    Heartbeat,
    /// Anything else: ANNOTATE_ROWS, PREVIOUS_GTIDS, BINLOG_CHECKPOINT,
    /// START_ENCRYPTION, STOP, INTVAR, ...
    Other { type_code: u8 },
}

/// Decodes one event body. See the module doc for what `body` must be.
pub fn parse_event<'a>(
    header: &EventHeader,
    body: &'a [u8],
    flavor: Flavor,
) -> Result<Event<'a>, DecodeError> {
    use types::*;
    let t = header.type_code;
    match t {
        ROTATE => parse_rotate(header, body),
        FORMAT_DESCRIPTION => parse_fde(header, body),
        QUERY => parse_query(body),
        XID => Ok(Event::Xid {
            xid: Cursor::new(body).u64("xid")?,
        }),
        MARIA_GTID => {
            let mut c = Cursor::new(body);
            let seq = c.u64("gtid seq_no")?;
            let domain = c.u32("gtid domain_id")?;
            let flags = c.u8("gtid flags")?;
            Ok(Event::MariaGtid {
                gtid: MariaGtid {
                    domain,
                    server: header.server_id,
                    seq,
                },
                standalone: flags & 1 != 0,
            })
        }
        MARIA_GTID_LIST => {
            let mut c = Cursor::new(body);
            let count = c.u32("gtid list count")? & 0x0fff_ffff;
            let count = count as usize;
            if count > c.len() / 16 {
                return Err(DecodeError::Truncated { what: "gtid list" });
            }
            let mut list = Vec::with_capacity(count);
            for _ in 0..count {
                let domain = c.u32("gtid list domain")?;
                let server = c.u32("gtid list server")?;
                let seq = c.u64("gtid list seq_no")?;
                list.push(MariaGtid {
                    domain,
                    server,
                    seq,
                });
            }
            Ok(Event::MariaGtidList(list))
        }
        GTID | ANONYMOUS_GTID => {
            let mut c = Cursor::new(body);
            c.u8("gtid flags")?;
            let sid = c.array::<16>("gtid sid")?;
            let gno = c.u64("gtid gno")?;
            Ok(Event::MySqlGtid { sid, gno })
        }
        TABLE_MAP => super::table::parse_table_map(body, flavor).map(Event::TableMap),
        WRITE_ROWS_V1 | UPDATE_ROWS_V1 | DELETE_ROWS_V1 | WRITE_ROWS_V2 | UPDATE_ROWS_V2
        | DELETE_ROWS_V2 | PARTIAL_UPDATE_ROWS => super::rows::parse_rows(t, body).map(Event::Rows),
        HEARTBEAT | HEARTBEAT_V2 => Ok(Event::Heartbeat),
        TRANSACTION_PAYLOAD => Err(DecodeError::Unsupported {
            type_code: t,
            what: "transaction payload given without decompressing it (decode::payload)",
        }),
        MARIA_QUERY_COMPRESSED..=MARIA_DELETE_ROWS_COMPRESSED => Err(DecodeError::Unsupported {
            type_code: t,
            what: "compressed binlog event given without inflating it (decode::compressed)",
        }),
        // events that carry no row change (statement context, markers,
        // group replication and XA bookkeeping, MariaDB annotations)
        STOP
        | INTVAR
        | RAND
        | USER_VAR
        | INCIDENT
        | IGNORABLE
        | ROWS_QUERY
        | PREVIOUS_GTIDS
        | TRANSACTION_CONTEXT
        | VIEW_CHANGE
        | XA_PREPARE
        | MARIA_ANNOTATE_ROWS
        | MARIA_BINLOG_CHECKPOINT
        | MARIA_START_ENCRYPTION => Ok(Event::Other { type_code: t }),
        // the server marks events a reader may skip
        _ if header.flags & EventHeader::FLAG_IGNORABLE != 0 => Ok(Event::Other { type_code: t }),
        _ => Err(DecodeError::UnknownEvent { type_code: t }),
    }
}

fn parse_rotate<'a>(header: &EventHeader, body: &'a [u8]) -> Result<Event<'a>, DecodeError> {
    let body = strip_crc_if_present(header, body);
    let mut c = Cursor::new(body);
    let pos = c.u64("rotate position")?;
    let next_file = String::from_utf8_lossy(c.rest()).into_owned();
    Ok(Event::Rotate { next_file, pos })
}

/// The artificial first ROTATE reaches the client before the FDE, so the
/// client cannot know whether it carries a CRC32; it does when the server
/// checksums events. Strip the last four bytes exactly when the body is the
/// whole rest of the event and they are the CRC32 of header + rest.
fn strip_crc_if_present<'a>(header: &EventHeader, body: &'a [u8]) -> &'a [u8] {
    if body.len() < 8 + 4 || header.event_size as usize != EventHeader::LEN + body.len() {
        return body;
    }
    let (data, crc) = body.split_at(body.len() - 4);
    let mut h = crc32fast::Hasher::new();
    h.update(&header.to_bytes());
    h.update(data);
    if h.finalize().to_le_bytes() == crc {
        data
    } else {
        body
    }
}

fn parse_fde<'a>(header: &EventHeader, body: &'a [u8]) -> Result<Event<'a>, DecodeError> {
    let mut c = Cursor::new(body);
    c.u16("fde binlog version")?;
    let raw_version = c.bytes(50, "fde server version")?;
    let end = raw_version.iter().position(|&b| b == 0).unwrap_or(50);
    let server_version = String::from_utf8_lossy(&raw_version[..end]).into_owned();
    let supports_checksum = version_triple(&server_version) >= (5, 6, 1);
    let on_wire = (header.event_size as usize).saturating_sub(EventHeader::LEN);
    let alg = if !supports_checksum {
        None
    } else if body.len() == on_wire && body.len() >= 57 + 5 {
        // Whole body: ... alg (1) crc (4).
        Some(body[body.len() - 5])
    } else if body.len() + 4 == on_wire && body.len() > 57 {
        // Body without the CRC: ... alg (1).
        Some(body[body.len() - 1])
    } else {
        // Both stripped (mysql_common): unknown here.
        None
    };
    Ok(Event::FormatDescription {
        server_version,
        checksum: alg == Some(1),
    })
}

/// Leading `major.minor.patch` of a server version string.
fn version_triple(v: &str) -> (u32, u32, u32) {
    let mut parts = v
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

fn parse_query(body: &[u8]) -> Result<Event<'_>, DecodeError> {
    let mut c = Cursor::new(body);
    c.u32("query thread id")?;
    c.u32("query exec time")?;
    let db_len = c.u8("query db length")? as usize;
    c.u16("query error code")?;
    let status_len = c.u16("query status length")? as usize;
    c.bytes(status_len, "query status variables")?;
    let db = c.bytes(db_len, "query database")?;
    c.u8("query database terminator")?;
    let sql = match std::str::from_utf8(c.rest()) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(String::from_utf8_lossy(c.rest()).into_owned()),
    };
    Ok(Event::Query {
        database: String::from_utf8_lossy(db).into_owned(),
        sql,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(type_code: u8, body_len: usize) -> EventHeader {
        EventHeader {
            timestamp: 0,
            type_code,
            server_id: 7,
            event_size: (EventHeader::LEN + body_len) as u32,
            log_pos: 0,
            flags: 0,
        }
    }

    #[test]
    fn header_round_trip() {
        let h = EventHeader {
            timestamp: 0x01020304,
            type_code: 4,
            server_id: 9,
            event_size: 44,
            log_pos: 1234,
            flags: 0x20,
        };
        assert_eq!(EventHeader::parse(&h.to_bytes()).unwrap(), h);
        assert!(EventHeader::parse(&[0; 18]).is_err());
    }

    #[test]
    fn rotate_without_and_with_crc() {
        let mut body = 4u64.to_le_bytes().to_vec();
        body.extend_from_slice(b"mysql-bin.000007");
        let h = header(types::ROTATE, body.len());
        match parse_event(&h, &body, Flavor::MySql).unwrap() {
            Event::Rotate { next_file, pos } => {
                assert_eq!(next_file, "mysql-bin.000007");
                assert_eq!(pos, 4);
            }
            e => panic!("{e:?}"),
        }
        // With a CRC over header + body appended (and event_size counting it).
        let h = header(types::ROTATE, body.len() + 4);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&h.to_bytes());
        hasher.update(&body);
        let mut with_crc = body.clone();
        with_crc.extend_from_slice(&hasher.finalize().to_le_bytes());
        match parse_event(&h, &with_crc, Flavor::MySql).unwrap() {
            Event::Rotate { next_file, .. } => assert_eq!(next_file, "mysql-bin.000007"),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn mysql_gtid_and_query() {
        let mut body = vec![1u8];
        body.extend_from_slice(&[0xab; 16]);
        body.extend_from_slice(&42u64.to_le_bytes());
        body.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0, 0]); // lt_type + last_committed...
        match parse_event(&header(types::GTID, body.len()), &body, Flavor::MySql).unwrap() {
            Event::MySqlGtid { sid, gno } => {
                assert_eq!(sid, [0xab; 16]);
                assert_eq!(gno, 42);
            }
            e => panic!("{e:?}"),
        }

        let mut q = Vec::new();
        q.extend_from_slice(&5u32.to_le_bytes());
        q.extend_from_slice(&0u32.to_le_bytes());
        q.push(4);
        q.extend_from_slice(&0u16.to_le_bytes());
        q.extend_from_slice(&3u16.to_le_bytes());
        q.extend_from_slice(&[0, 0, 0]);
        q.extend_from_slice(b"shop\0CREATE TABLE t (a int)");
        match parse_event(&header(types::QUERY, q.len()), &q, Flavor::MySql).unwrap() {
            Event::Query { database, sql } => {
                assert_eq!(database, "shop");
                assert_eq!(sql, "CREATE TABLE t (a int)");
                assert!(matches!(sql, Cow::Borrowed(_)));
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(
            parse_event(&header(types::QUERY, 5), &q[..5], Flavor::MySql).unwrap_err(),
            DecodeError::Truncated {
                what: "query exec time"
            }
        );
    }

    #[test]
    fn unsupported_and_other() {
        for t in [
            types::TRANSACTION_PAYLOAD,
            types::MARIA_QUERY_COMPRESSED,
            types::MARIA_WRITE_ROWS_COMPRESSED_V1,
            types::MARIA_DELETE_ROWS_COMPRESSED,
        ] {
            assert!(matches!(
                parse_event(&header(t, 0), &[], Flavor::MariaDb),
                Err(DecodeError::Unsupported { .. })
            ));
        }
        for t in [
            types::STOP,
            types::PREVIOUS_GTIDS,
            types::MARIA_ANNOTATE_ROWS,
            types::MARIA_BINLOG_CHECKPOINT,
            types::MARIA_START_ENCRYPTION,
        ] {
            assert!(matches!(
                parse_event(&header(t, 0), &[], Flavor::MariaDb),
                Ok(Event::Other { type_code }) if type_code == t
            ));
        }
        // an event type nobody knows is never skipped silently, unless the
        // server flagged it ignorable
        for t in [0u8, 1, 6, 42, 99, 172, 255] {
            let e = parse_event(&header(t, 0), &[], Flavor::MariaDb).unwrap_err();
            assert_eq!(e, DecodeError::UnknownEvent { type_code: t });
            assert!(
                e.to_string()
                    .contains(&format!("unknown binlog event type {t}")),
                "{e}"
            );
            let mut h = header(t, 0);
            h.flags |= EventHeader::FLAG_IGNORABLE;
            assert!(matches!(
                parse_event(&h, &[], Flavor::MariaDb),
                Ok(Event::Other { .. })
            ));
        }
        assert!(matches!(
            parse_event(&header(types::HEARTBEAT, 0), &[], Flavor::MariaDb),
            Ok(Event::Heartbeat)
        ));
    }

    #[test]
    fn flavor_and_version() {
        assert_eq!(
            Flavor::from_server_version("10.11.19-MariaDB-0+deb12u1-log"),
            Flavor::MariaDb
        );
        assert_eq!(Flavor::from_server_version("8.0.36"), Flavor::MySql);
        assert_eq!(version_triple("10.11.19-MariaDB"), (10, 11, 19));
        assert_eq!(version_triple("5.6.1"), (5, 6, 1));
        assert!(version_triple("5.5.60") < (5, 6, 1));
    }
}
