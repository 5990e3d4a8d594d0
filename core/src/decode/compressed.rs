//! MariaDB compressed binlog events (`log_bin_compress=ON`), pure.
//!
//! Flow in: the header and body of a QUERY_COMPRESSED (165),
//! WRITE/UPDATE/DELETE_ROWS_COMPRESSED_V1 (166-168) or their v2 forms
//! (169-171) event. Flow out: the header and body of the plain event they
//! stand for (QUERY 2, rows v1 23-25, rows v2 30-32), which
//! [`super::parse_event`] decodes as usual.
//!
//! Format (MariaDB `log_event.cc`, `binlog_buf_compress`): the part of the
//! event after its fixed fields is replaced by a compressed record: one byte
//! `0x80 | algorithm << 4 | n` (algorithm 0 = zlib), `n` bytes of the
//! uncompressed length (big-endian), then a zlib stream. In a query event the
//! compressed part is the statement text (after the database name and its
//! NUL); in a rows event it is the row images (after the column count and the
//! column bitmaps). Inflating uses `flate2` (zlib), already a dependency.
//!
//! Failure: a record without the compressed flag, an unknown algorithm, a
//! zlib error or a length that does not match is a [`DecodeError`]; the task
//! stops rather than skip the event.

use super::codes::event as types;
use super::cursor::Cursor;
use super::error::DecodeError;
use super::event::EventHeader;
use std::io::Read;

/// Largest uncompressed part accepted (a binlog event is at most 4 GiB; this
/// bounds what a corrupt length can make us allocate up front).
const MAX_PREALLOC: usize = 64 << 20;

/// Whether `type_code` is a MariaDB compressed event.
pub fn is_compressed(type_code: u8) -> bool {
    (types::MARIA_QUERY_COMPRESSED..=types::MARIA_DELETE_ROWS_COMPRESSED).contains(&type_code)
}

/// The plain event a compressed one stands for: its header (type changed,
/// size adjusted) and inflated body.
pub fn inflate(header: &EventHeader, body: &[u8]) -> Result<(EventHeader, Vec<u8>), DecodeError> {
    let t = header.type_code;
    let (plain, fixed) = match t {
        types::MARIA_QUERY_COMPRESSED => (types::QUERY, query_fixed_len(body)?),
        166 => (types::WRITE_ROWS_V1, rows_fixed_len(body, false, false)?),
        167 => (types::UPDATE_ROWS_V1, rows_fixed_len(body, false, true)?),
        168 => (types::DELETE_ROWS_V1, rows_fixed_len(body, false, false)?),
        169 => (types::WRITE_ROWS_V2, rows_fixed_len(body, true, false)?),
        170 => (types::UPDATE_ROWS_V2, rows_fixed_len(body, true, true)?),
        types::MARIA_DELETE_ROWS_COMPRESSED => {
            (types::DELETE_ROWS_V2, rows_fixed_len(body, true, false)?)
        }
        _ => {
            return Err(DecodeError::Malformed {
                type_code: t,
                what: "not a compressed event",
            })
        }
    };
    let mut out = body[..fixed].to_vec();
    uncompress_record(t, &body[fixed..], &mut out)?;
    let header = EventHeader {
        type_code: plain,
        event_size: (EventHeader::LEN + out.len() + 4) as u32,
        ..*header
    };
    Ok((header, out))
}

/// Appends the inflated content of a compressed record to `out`.
fn uncompress_record(type_code: u8, rec: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let bad = |what| DecodeError::Malformed { type_code, what };
    let first = *rec.first().ok_or(bad("compressed record is empty"))?;
    if first & 0x80 == 0 {
        return Err(bad("compressed record lacks its compressed flag"));
    }
    if (first >> 4) & 0x07 != 0 {
        return Err(DecodeError::Unsupported {
            type_code,
            what: "compression algorithm other than zlib",
        });
    }
    let n = (first & 0x07) as usize;
    if n == 0 || n > 4 || rec.len() < 1 + n {
        return Err(bad("bad uncompressed length in compressed record"));
    }
    let len = rec[1..1 + n]
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | *b as usize);
    let start = out.len();
    out.reserve(len.min(MAX_PREALLOC));
    flate2::read::ZlibDecoder::new(&rec[1 + n..])
        .take(len as u64 + 1)
        .read_to_end(out)
        .map_err(|_| bad("zlib stream does not inflate"))?;
    if out.len() - start != len {
        return Err(bad("inflated length differs from the recorded one"));
    }
    Ok(())
}

/// Bytes of a query event before its statement text.
fn query_fixed_len(body: &[u8]) -> Result<usize, DecodeError> {
    let mut c = Cursor::new(body);
    c.u32("query thread id")?;
    c.u32("query exec time")?;
    let db_len = c.u8("query db length")? as usize;
    c.u16("query error code")?;
    let status_len = c.u16("query status length")? as usize;
    c.bytes(status_len, "query status variables")?;
    c.bytes(db_len, "query database")?;
    c.u8("query database terminator")?;
    Ok(body.len() - c.len())
}

/// Bytes of a rows event before its row images.
fn rows_fixed_len(body: &[u8], v2: bool, update: bool) -> Result<usize, DecodeError> {
    let mut c = Cursor::new(body);
    c.u48("rows table id")?;
    c.u16("rows flags")?;
    if v2 {
        let len = c.u16("rows extra data length")? as usize;
        c.bytes(len.saturating_sub(2), "rows extra data")?;
    }
    let columns = c.packed_len("rows column count")?;
    c.bytes(columns.div_ceil(8), "rows present bitmap")?;
    if update {
        c.bytes(columns.div_ceil(8), "rows after-image bitmap")?;
    }
    Ok(body.len() - c.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{parse_event, Event, Flavor};
    use flate2::write::ZlibEncoder;
    use std::io::Write;

    /// A compressed record as MariaDB's `binlog_buf_compress` writes it.
    fn record(data: &[u8]) -> Vec<u8> {
        let len = data.len() as u32;
        let n = match len {
            0..=0xff => 1,
            0x100..=0xffff => 2,
            0x1_0000..=0xff_ffff => 3,
            _ => 4,
        };
        let mut out = vec![0x80 | n as u8];
        out.extend_from_slice(&len.to_be_bytes()[4 - n..]);
        let mut z = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(data).unwrap();
        out.extend(z.finish().unwrap());
        out
    }

    fn header(type_code: u8, len: usize) -> EventHeader {
        EventHeader {
            timestamp: 1,
            type_code,
            server_id: 1,
            event_size: (EventHeader::LEN + len + 4) as u32,
            log_pos: 500,
            flags: 0,
        }
    }

    fn query_prefix(db: &str) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&7u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.push(db.len() as u8);
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(db.as_bytes());
        b.push(0);
        b
    }

    #[test]
    fn compressed_query_inflates_to_a_query() {
        for sql in ["", "x", &"CREATE TABLE t (a INT) -- padding ".repeat(300)] {
            let mut body = query_prefix("shop");
            body.extend(record(sql.as_bytes()));
            let h = header(types::MARIA_QUERY_COMPRESSED, body.len());
            let (h2, plain) = inflate(&h, &body).unwrap();
            assert_eq!(h2.type_code, types::QUERY);
            assert_eq!(h2.log_pos, 500, "position unchanged");
            match parse_event(&h2, &plain, Flavor::MariaDb).unwrap() {
                Event::Query { database, sql: got } => {
                    assert_eq!(database, "shop");
                    assert_eq!(got, sql);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn compressed_rows_inflate_to_rows() {
        // table id 5, flags, 2 columns, bitmaps; the images are the payload
        for (t, plain_t, update) in [(166u8, 23u8, false), (167, 24, true), (168, 25, false)] {
            let mut prefix = vec![5, 0, 0, 0, 0, 0, 1, 0, 2, 0b11];
            if update {
                prefix.push(0b11);
            }
            let images: Vec<u8> = (0..1000u32).flat_map(|i| i.to_le_bytes()).collect();
            let mut body = prefix.clone();
            body.extend(record(&images));
            let (h2, plain) = inflate(&header(t, body.len()), &body).unwrap();
            assert_eq!(h2.type_code, plain_t);
            assert_eq!(&plain[..prefix.len()], &prefix[..]);
            assert_eq!(&plain[prefix.len()..], &images[..]);
            assert!(matches!(
                parse_event(&h2, &plain, Flavor::MariaDb).unwrap(),
                Event::Rows(_)
            ));
        }
        // v2 with extra data
        let prefix = vec![5, 0, 0, 0, 0, 0, 1, 0, 4, 0, 9, 9, 1, 0b1];
        let mut body = prefix.clone();
        body.extend(record(&[1, 2, 3]));
        let (h2, plain) = inflate(&header(169, body.len()), &body).unwrap();
        assert_eq!(h2.type_code, types::WRITE_ROWS_V2);
        assert_eq!(&plain[prefix.len()..], &[1, 2, 3]);
    }

    #[test]
    fn broken_records_are_errors() {
        let prefix = query_prefix("d");
        let cases: Vec<Vec<u8>> = vec![
            vec![],                          // no record
            vec![0x01, 3, b'a', b'b', b'c'], // no compressed flag
            vec![0x91, 3, 0, 0],             // algorithm 1
            vec![0x80],                      // zero length bytes
            vec![0x81, 3, 1, 2, 3],          // not zlib
            {
                let mut r = record(b"abcd");
                r[1] = 9; // wrong recorded length
                r
            },
        ];
        for rec in cases {
            let mut body = prefix.clone();
            body.extend(&rec);
            assert!(
                inflate(&header(types::MARIA_QUERY_COMPRESSED, body.len()), &body).is_err(),
                "{rec:?}"
            );
        }
        assert!(inflate(&header(types::QUERY, 0), &[]).is_err());
        assert!(
            is_compressed(165) && is_compressed(171) && !is_compressed(164) && !is_compressed(172)
        );
    }
}
