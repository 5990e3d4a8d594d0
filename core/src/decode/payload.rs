//! MySQL 8 TRANSACTION_PAYLOAD events (`binlog_transaction_compression=ON`),
//! pure.
//!
//! Flow in: the header and body (without the CRC32) of a TRANSACTION_PAYLOAD
//! event (type 40). Flow out: the events of the transaction it carries
//! (QUERY `BEGIN`, TABLE_MAP, rows, XID ...), each as a header and a body
//! that [`super::parse_event`] decodes like any other event.
//!
//! Format (libbinlogevents `Transaction_payload_event` and its codec
//! `codecs::binary::Transaction_payload`): the body starts with
//! type-length-value fields, each a length-encoded integer type, a
//! length-encoded integer length and a length-encoded integer value:
//! `1` payload size, `2` compression type (`0` zstd, `255` none), `3`
//! uncompressed size (written only when compressed, and then checked);
//! unknown types are skipped by their length; type `0` ends the
//! fields. Then come `payload size` bytes: the transaction's events, one
//! after another, each a 19-byte header and its body, without CRC32s, zstd
//! compressed (one or more frames) unless the type is none.
//!
//! Positions: the inner events have no place in the binlog file of their
//! own, so each one is given the payload event's `log_pos` (its end); the
//! transaction's XID inside therefore commits at the end of the payload
//! event. Message positions are not affected: a message's position is its
//! transaction's start (the GTID event before the payload) and its row
//! number in the transaction (docs/design.md §7, `sink::dedupe`), which
//! counts on across the inner events, so no two messages share one.
//!
//! zstd: the `zstd` crate (bindings to the reference C library), already a
//! dependency for Kafka batch compression, so the C library costs nothing
//! more; it reads concatenated frames as MySQL may write them.
//!
//! Failure, always a [`DecodeError`] naming event type 40 (the pipeline adds
//! the position): a truncated field list, a payload shorter or longer than
//! its size field, an unknown compression type, a zstd frame that is
//! corrupt or truncated, a decompressed size other than the recorded one, an
//! inner event whose size does not fit, a payload inside a payload.

use std::io::Read;

use super::codes::event as types;
use super::cursor::Cursor;
use super::error::DecodeError;
use super::event::EventHeader;

/// Compression type field values (`transaction::compression::type`).
pub const COMPRESSION_ZSTD: u64 = 0;
pub const COMPRESSION_NONE: u64 = 255;

/// Field types of the payload event's header.
mod field {
    pub const END_MARK: u64 = 0;
    pub const PAYLOAD_SIZE: u64 = 1;
    pub const COMPRESSION_TYPE: u64 = 2;
    pub const UNCOMPRESSED_SIZE: u64 = 3;
}

/// Space reserved up front for the decompressed payload at most: a corrupt
/// size field must not make us allocate gigabytes before reading a byte.
const MAX_PREALLOC: usize = 64 << 20;

/// How the payload is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Zstd,
    None,
}

/// The fields before the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadHeader {
    pub compression: Compression,
    /// Bytes of the (compressed) payload.
    pub payload_size: u64,
    /// Bytes of the events once decompressed, when recorded (MySQL writes
    /// it for compressed payloads only).
    pub uncompressed_size: Option<u64>,
}

fn malformed(what: &'static str) -> DecodeError {
    DecodeError::Malformed {
        type_code: types::TRANSACTION_PAYLOAD,
        what,
    }
}

/// Reads the field list; returns it and the payload bytes.
pub fn parse_header(body: &[u8]) -> Result<(PayloadHeader, &[u8]), DecodeError> {
    let mut c = Cursor::new(body);
    let mut size = None;
    let mut compression = None;
    let mut uncompressed = None;
    loop {
        let ty = c.packed("transaction payload field type")?;
        if ty == field::END_MARK {
            break;
        }
        let len = c.packed_len("transaction payload field length")?;
        let value = c.bytes(len, "transaction payload field")?;
        let read = || Cursor::new(value).packed("transaction payload field value");
        match ty {
            field::PAYLOAD_SIZE => size = Some(read()?),
            field::COMPRESSION_TYPE => compression = Some(read()?),
            field::UNCOMPRESSED_SIZE => uncompressed = Some(read()?),
            _ => {} // a newer field: skipped by its length, as MySQL does
        }
    }
    let payload_size = size.ok_or(malformed("payload size field missing"))?;
    let compression = match compression.ok_or(malformed("compression type field missing"))? {
        COMPRESSION_ZSTD => Compression::Zstd,
        COMPRESSION_NONE => Compression::None,
        other => {
            return Err(DecodeError::UnknownCompression {
                type_code: types::TRANSACTION_PAYLOAD,
                compression: other,
            })
        }
    };
    let payload = c.rest();
    if payload.len() as u64 != payload_size {
        return Err(if (payload.len() as u64) < payload_size {
            DecodeError::Truncated {
                what: "transaction payload",
            }
        } else {
            malformed("bytes after the payload")
        });
    }
    let header = PayloadHeader {
        compression,
        payload_size,
        uncompressed_size: uncompressed,
    };
    Ok((header, payload))
}

/// The events of a payload event body, decompressed, one after another.
pub fn decompress(body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let (header, payload) = parse_header(body)?;
    match header.compression {
        Compression::None => Ok(payload.to_vec()),
        Compression::Zstd => {
            let want = header.uncompressed_size;
            let limit = want.map_or(u64::MAX, |n| n.saturating_add(1));
            let mut out = Vec::with_capacity((want.unwrap_or(0) as usize).min(MAX_PREALLOC));
            if !payload.is_empty() {
                zstd::stream::read::Decoder::with_buffer(payload)
                    .map_err(|_| malformed("zstd decoder could not start"))?
                    .take(limit)
                    .read_to_end(&mut out)
                    .map_err(|_| malformed("zstd frame is corrupt or truncated"))?;
            }
            if want.is_some_and(|n| out.len() as u64 != n) {
                return Err(malformed(
                    "zstd payload decompresses to another size than recorded",
                ));
            }
            Ok(out)
        }
    }
}

/// The inner events of a decompressed payload, each with its header (its
/// `log_pos` set to the payload event's, see the module doc) and body.
pub fn events<'a>(outer: &EventHeader, events: &'a [u8]) -> InnerEvents<'a> {
    InnerEvents {
        rest: events,
        log_pos: outer.log_pos,
    }
}

/// Iterator returned by [`events`]; stops after the first error.
#[derive(Debug, Clone)]
pub struct InnerEvents<'a> {
    rest: &'a [u8],
    log_pos: u32,
}

impl<'a> Iterator for InnerEvents<'a> {
    type Item = Result<(EventHeader, &'a [u8]), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = self.next_event();
        if item.is_err() {
            self.rest = &[];
        }
        Some(item)
    }
}

impl<'a> InnerEvents<'a> {
    fn next_event(&mut self) -> Result<(EventHeader, &'a [u8]), DecodeError> {
        if self.rest.len() < EventHeader::LEN {
            return Err(malformed("inner event header truncated"));
        }
        let mut header = EventHeader::parse(self.rest)?;
        let size = header.event_size as usize;
        if size < EventHeader::LEN || size > self.rest.len() {
            return Err(malformed("inner event size does not fit the payload"));
        }
        if header.type_code == types::TRANSACTION_PAYLOAD {
            return Err(malformed(
                "transaction payload inside a transaction payload",
            ));
        }
        let body = &self.rest[EventHeader::LEN..size];
        self.rest = &self.rest[size..];
        header.log_pos = self.log_pos;
        Ok((header, body))
    }
}

/// Builders of payload event bodies for tests (here and in the pipeline).
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::decode::table::testing::packed;

    /// One inner event: header (log_pos 0, as MySQL leaves it) and body,
    /// no CRC32.
    pub(crate) fn inner(type_code: u8, body: &[u8]) -> Vec<u8> {
        let h = EventHeader {
            timestamp: 1_700_000_000,
            type_code,
            server_id: 3,
            event_size: (EventHeader::LEN + body.len()) as u32,
            log_pos: 0,
            flags: 0,
        };
        let mut out = h.to_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    fn tlv(out: &mut Vec<u8>, ty: u64, value: u64) {
        let v = packed(value);
        out.extend(packed(ty));
        out.extend(packed(v.len() as u64));
        out.extend(v);
    }

    /// A payload event body in the field order MySQL writes: compression
    /// type, uncompressed size (compressed only), payload size, end mark.
    pub(crate) fn body(compression: u64, events: &[u8]) -> Vec<u8> {
        let payload = match compression {
            COMPRESSION_ZSTD => zstd::bulk::compress(events, 3).unwrap(),
            _ => events.to_vec(),
        };
        let uncompressed = (compression != COMPRESSION_NONE).then_some(events.len() as u64);
        raw_body(compression, uncompressed, &payload)
    }

    /// A payload event body around `payload` as given.
    pub(crate) fn raw_body(compression: u64, uncompressed: Option<u64>, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        tlv(&mut out, field::COMPRESSION_TYPE, compression);
        if let Some(n) = uncompressed {
            tlv(&mut out, field::UNCOMPRESSED_SIZE, n);
        }
        tlv(&mut out, field::PAYLOAD_SIZE, payload.len() as u64);
        out.extend(packed(field::END_MARK));
        out.extend_from_slice(payload);
        out
    }
}

/// Tested on bytes built to the documented format: no MySQL server can be
/// installed where these tests run, so no payload written by a real server
/// is among them.
#[cfg(test)]
mod tests {
    use super::testing::{body, inner, raw_body};
    use super::*;
    use crate::decode::table::testing::{packed, table_map};
    use crate::decode::table::types as col;
    use crate::decode::{parse_event, Event, Flavor, RowOut};

    fn outer(len: usize) -> EventHeader {
        EventHeader {
            timestamp: 1_700_000_000,
            type_code: types::TRANSACTION_PAYLOAD,
            server_id: 3,
            event_size: (EventHeader::LEN + len + 4) as u32,
            log_pos: 9_000,
            flags: 0,
        }
    }

    fn query(sql: &str) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&7u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.push(2);
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(b"db\0");
        b.extend_from_slice(sql.as_bytes());
        b
    }

    /// WRITE_ROWS_V2 of table 42 `(id INT)` with the given ids.
    fn write_rows(ids: &[i32]) -> Vec<u8> {
        let mut b = 42u64.to_le_bytes()[..6].to_vec();
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes()); // extra data: none
        b.extend(packed(1));
        b.push(0b1);
        for id in ids {
            b.push(0); // null bitmap
            b.extend_from_slice(&id.to_le_bytes());
        }
        b
    }

    /// A transaction as MySQL compresses it: BEGIN, TABLE_MAP, rows, XID.
    fn transaction(rows_events: &[&[i32]]) -> Vec<u8> {
        let mut ev = inner(types::QUERY, &query("BEGIN"));
        ev.extend(inner(
            types::TABLE_MAP,
            &table_map(42, &[(col::LONG, &[])], &[]),
        ));
        for ids in rows_events {
            ev.extend(inner(types::WRITE_ROWS_V2, &write_rows(ids)));
        }
        ev.extend(inner(types::XID, &77u64.to_le_bytes()));
        ev
    }

    /// Decodes every inner event of a payload body; returns the event kinds
    /// and the ids of the rows, in order.
    fn decode_all(body: &[u8]) -> Result<(Vec<String>, Vec<String>), DecodeError> {
        let h = outer(body.len());
        let events = decompress(body)?;
        let (mut kinds, mut rows) = (Vec::new(), Vec::new());
        let mut table = None;
        for item in super::events(&h, &events) {
            let (ih, b) = item?;
            assert_eq!(ih.log_pos, 9_000, "inner events share the payload's end");
            match parse_event(&ih, b, Flavor::MySql)? {
                Event::Query { sql, .. } => kinds.push(format!("query {sql}")),
                Event::TableMap(t) => {
                    kinds.push("table map".into());
                    table = Some(t);
                }
                Event::Rows(r) => {
                    kinds.push("rows".into());
                    let t = table.as_ref().expect("table map first");
                    let mut it = r.rows(t);
                    let mut out = RowOut::new();
                    while it.next_row(&mut out)? {
                        rows.push(String::from_utf8(out.after.clone()).unwrap());
                    }
                }
                Event::Xid { xid } => kinds.push(format!("xid {xid}")),
                other => kinds.push(format!("{other:?}")),
            }
        }
        Ok((kinds, rows))
    }

    #[test]
    fn zstd_payload_with_one_event_and_with_many() {
        // one inner event
        let one = inner(types::QUERY, &query("BEGIN"));
        let (kinds, rows) = decode_all(&body(COMPRESSION_ZSTD, &one)).unwrap();
        assert_eq!(kinds, ["query BEGIN"]);
        assert!(rows.is_empty());
        // a whole transaction: two rows events, three rows
        let (kinds, rows) =
            decode_all(&body(COMPRESSION_ZSTD, &transaction(&[&[1, 2], &[-3]]))).unwrap();
        assert_eq!(
            kinds,
            ["query BEGIN", "table map", "rows", "rows", "xid 77"]
        );
        assert_eq!(rows, [r#"{"@1":1}"#, r#"{"@1":2}"#, r#"{"@1":-3}"#]);
    }

    #[test]
    fn many_events_and_a_large_payload() {
        let ids: Vec<i32> = (0..2_000).collect();
        let chunks: Vec<&[i32]> = ids.chunks(7).collect();
        let events = transaction(&chunks);
        let b = body(COMPRESSION_ZSTD, &events);
        assert!(b.len() < events.len() / 2, "compressed");
        let (kinds, rows) = decode_all(&b).unwrap();
        assert_eq!(kinds.len(), 3 + chunks.len());
        assert_eq!(rows.len(), 2_000);
        assert_eq!(rows[1_999], r#"{"@1":1999}"#);
        // concatenated zstd frames read as one stream
        let (first, second) = events.split_at(events.len() / 2);
        let mut payload = zstd::bulk::compress(first, 1).unwrap();
        payload.extend(zstd::bulk::compress(second, 1).unwrap());
        let two = raw_body(COMPRESSION_ZSTD, Some(events.len() as u64), &payload);
        assert_eq!(decode_all(&two).unwrap().1.len(), 2_000);
    }

    #[test]
    fn uncompressed_payload_and_empty_payloads() {
        let (kinds, rows) = decode_all(&body(COMPRESSION_NONE, &transaction(&[&[5]]))).unwrap();
        assert_eq!(kinds, ["query BEGIN", "table map", "rows", "xid 77"]);
        assert_eq!(rows, [r#"{"@1":5}"#]);
        let empty = body(COMPRESSION_NONE, &[]);
        let (h, payload) = parse_header(&empty).unwrap();
        assert_eq!(
            (h.compression, h.payload_size, h.uncompressed_size),
            (Compression::None, 0, None)
        );
        assert!(payload.is_empty());
        // empty, uncompressed or zstd: no events, no error
        for c in [COMPRESSION_NONE, COMPRESSION_ZSTD] {
            assert_eq!(decode_all(&body(c, &[])).unwrap(), (vec![], vec![]));
        }
    }

    #[test]
    fn unknown_fields_are_skipped_and_the_order_is_free() {
        let events = inner(types::XID, &1u64.to_le_bytes());
        let mut b = Vec::new();
        b.extend([9, 3, 0xaa, 0xbb, 0xcc]); // field 9, three bytes
        b.extend([field::PAYLOAD_SIZE as u8, 1, events.len() as u8]);
        b.extend([field::COMPRESSION_TYPE as u8, 3, 0xfc, 0xff, 0x00]); // 255, packed
        b.push(0);
        b.extend(&events);
        assert_eq!(decode_all(&b).unwrap().0, ["xid 1"]);
    }

    #[test]
    fn corrupt_or_truncated_zstd_is_a_definite_error() {
        let events = transaction(&[&[1, 2, 3]]);
        let len = events.len() as u64;
        let b = body(COMPRESSION_ZSTD, &events);
        let (_, payload) = parse_header(&b).unwrap();
        let start = b.len() - payload.len();
        // truncated frame (the size field shortened to match)
        let cut = raw_body(COMPRESSION_ZSTD, Some(len), &payload[..payload.len() - 5]);
        let e = decompress(&cut).unwrap_err();
        assert!(
            matches!(e, DecodeError::Malformed { type_code: 40, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("event type 40"), "{e}");
        // corrupted bytes inside the frame
        let mut bad = b.clone();
        for b in &mut bad[start + 4..] {
            *b ^= 0x5a;
        }
        let e = decompress(&bad).unwrap_err();
        assert!(
            matches!(e, DecodeError::Malformed { type_code: 40, .. }),
            "{e:?}"
        );
        // the body cut short of its size field
        assert_eq!(
            decompress(&b[..b.len() - 1]).unwrap_err(),
            DecodeError::Truncated {
                what: "transaction payload"
            }
        );
        // a wrong recorded size, either way
        let z = zstd::bulk::compress(&events, 3).unwrap();
        for n in [len - 1, len + 1] {
            assert!(matches!(
                decompress(&raw_body(COMPRESSION_ZSTD, Some(n), &z)).unwrap_err(),
                DecodeError::Malformed { type_code: 40, .. }
            ));
        }
    }

    #[test]
    fn unknown_compression_and_missing_fields() {
        let mut b = body(COMPRESSION_NONE, &[]);
        // compression type field: type 2, length 1 (255 needs 3 bytes: fc ff 00)
        assert_eq!(&b[..5], &[2, 3, 0xfc, 0xff, 0x00]);
        b.splice(0..5, [2, 1, 1]); // type 1 (lz4 in some forks): unknown here
        let e = decompress(&b).unwrap_err();
        assert_eq!(
            e,
            DecodeError::UnknownCompression {
                type_code: 40,
                compression: 1
            }
        );
        assert!(e.to_string().contains("compression type 1"), "{e}");
        assert!(matches!(
            decompress(&[1, 1, 0, 0]).unwrap_err(),
            DecodeError::Malformed { what, .. } if what.contains("compression type")
        ));
        assert!(matches!(
            decompress(&[2, 1, 0, 0]).unwrap_err(),
            DecodeError::Malformed { what, .. } if what.contains("payload size")
        ));
        assert!(decompress(&[]).is_err());
        assert!(
            decompress(&[2, 5, 0]).is_err(),
            "field longer than the body"
        );
    }

    #[test]
    fn inner_events_that_do_not_fit_are_errors() {
        let h = outer(0);
        let good = inner(types::XID, &[0; 8]);
        // truncated inner header, and a size past the payload's end
        for bad in [good[..10].to_vec(), good[..good.len() - 1].to_vec()] {
            let mut it = super::events(&h, &bad);
            assert!(matches!(
                it.next(),
                Some(Err(DecodeError::Malformed { type_code: 40, .. }))
            ));
            assert!(it.next().is_none(), "stops after an error");
        }
        let nested = inner(types::TRANSACTION_PAYLOAD, &body(COMPRESSION_NONE, &[]));
        assert!(super::events(&h, &nested).next().unwrap().is_err());
        // the decoder refuses a payload that was not decompressed
        assert!(matches!(
            parse_event(&h, &[], Flavor::MySql),
            Err(DecodeError::Unsupported { type_code: 40, .. })
        ));
    }
}
