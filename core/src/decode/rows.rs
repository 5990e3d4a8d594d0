//! WRITE/UPDATE/DELETE rows events to JSON row images.
//!
//! In: the body of a rows event (v1: MariaDB and MySQL 5.x, v2: MySQL 8)
//! and the [`Table`] of its table id. Out, per row, into a reusable
//! [`RowOut`]: the before image (update/delete) and after image
//! (insert/update) as JSON objects keyed by column name in table order
//! (columns missing from the event's present bitmap are left out, NULL is
//! `null`), and the key as a JSON array: the primary key values in key
//! order, or every column when the table has no primary key. The key comes
//! from the after image, except for deletes; a key column missing from an
//! update's after image (minimal row image) is taken from the before
//! image, and one missing from both is `null`.
//!
//! Layout: table id (6), flags (2), v2 only: extra data length (2,
//! counting itself) and extra data; packed column count; present bitmap
//! (of the before image for update/delete, after for insert); update only:
//! present bitmap of the after image. Then the rows: per image a null
//! bitmap over the present columns and the values of the present non-null
//! columns.
//!
//! Fails when the table map does not match (id or column count) or a value
//! is malformed; a failed row leaves the event where it was.

use super::codes::event as types;
use super::column::Table;
use super::cursor::Cursor;
use super::error::DecodeError;
use super::partial::{self, PartialBits};
use super::value::write_value;

/// What a rows event does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKind {
    Insert,
    Update,
    Delete,
}

impl RowKind {
    /// `insert` | `update` | `delete`, as the message `type` says.
    pub fn as_str(self) -> &'static str {
        match self {
            RowKind::Insert => "insert",
            RowKind::Update => "update",
            RowKind::Delete => "delete",
        }
    }
}

/// A rows event: header fields and a cursor over its rows.
#[derive(Debug, Clone)]
pub struct RowsEvent<'a> {
    /// The event type code (23-25, 30-32, or 39 for MySQL's partial JSON
    /// updates, whose after images may hold JSON diffs: see `partial`).
    pub type_code: u8,
    pub table_id: u64,
    pub kind: RowKind,
    /// Event flags; bit 0 (`STMT_END_F`) marks the last rows event of a
    /// statement.
    pub flags: u16,
    pub column_count: usize,
    /// v2 extra data (without its length); empty for v1.
    pub extra_data: &'a [u8],
    /// Columns present in the first image (before for update/delete, after
    /// for insert), one bit per column, LSB first.
    pub present: &'a [u8],
    /// Columns present in the after image of an update; empty otherwise.
    pub present_after: &'a [u8],
    rows: &'a [u8],
}

/// `STMT_END_F`.
pub const FLAG_STMT_END: u16 = 1;

/// What the v2 extra data says (MySQL's `Extra_row_info`): type-tagged
/// parts, tag 0 NDB cluster data (length counting its 2-byte header, format,
/// data), tag 1 partition ids (the row's partition, and for updates the
/// partition it came from). Nothing in a row's JSON depends on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtraRowInfo<'a> {
    /// NDB format byte and data.
    pub ndb: Option<(u8, &'a [u8])>,
    pub partition: Option<u16>,
    /// Updates of partitioned tables: the partition the row was in.
    pub source_partition: Option<u16>,
}

/// Reusable output buffers for one row, refilled by every `next_row`.
#[derive(Debug, Default, Clone)]
pub struct RowOut {
    /// JSON object of the before image (update/delete), else empty.
    pub before: Vec<u8>,
    /// JSON object of the after image (insert/update), else empty.
    pub after: Vec<u8>,
    /// JSON array of the key values.
    pub key: Vec<u8>,
    pub has_before: bool,
    pub has_after: bool,
    /// Byte range of each column's value in `before` / `after`.
    spans_before: Vec<(u32, u32)>,
    spans_after: Vec<(u32, u32)>,
}

impl RowOut {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the key of the before image to `out` (cleared first), for an
    /// update whose key may have changed; `false` when there is no before
    /// image.
    pub fn before_key(&self, table: &Table, out: &mut Vec<u8>) -> bool {
        out.clear();
        if !self.has_before {
            return false;
        }
        key(table, (&self.before, &self.spans_before), None, out);
        true
    }
}

const NO_SPAN: (u32, u32) = (u32::MAX, 0);

pub(crate) fn parse_rows(type_code: u8, body: &[u8]) -> Result<RowsEvent<'_>, DecodeError> {
    let (kind, v2) = match type_code {
        types::WRITE_ROWS_V1 => (RowKind::Insert, false),
        types::UPDATE_ROWS_V1 => (RowKind::Update, false),
        types::DELETE_ROWS_V1 => (RowKind::Delete, false),
        types::WRITE_ROWS_V2 => (RowKind::Insert, true),
        types::UPDATE_ROWS_V2 => (RowKind::Update, true),
        types::DELETE_ROWS_V2 => (RowKind::Delete, true),
        types::PARTIAL_UPDATE_ROWS => (RowKind::Update, true),
        _ => {
            return Err(DecodeError::Malformed {
                type_code,
                what: "not a rows event",
            })
        }
    };
    let mut c = Cursor::new(body);
    let table_id = c.u48("rows table id")?;
    let flags = c.u16("rows flags")?;
    let mut extra_data: &[u8] = &[];
    if v2 {
        let len = c.u16("rows extra data length")? as usize;
        if len < 2 {
            return Err(DecodeError::Malformed {
                type_code,
                what: "extra data length below 2",
            });
        }
        extra_data = c.bytes(len - 2, "rows extra data")?;
    }
    let column_count = c.packed_len("rows column count")?;
    let bitmap_len = column_count.div_ceil(8);
    let present = c.bytes(bitmap_len, "rows present bitmap")?;
    let present_after = if kind == RowKind::Update {
        c.bytes(bitmap_len, "rows after-image bitmap")?
    } else {
        &[]
    };
    Ok(RowsEvent {
        type_code,
        table_id,
        kind,
        flags,
        column_count,
        extra_data,
        present,
        present_after,
        rows: c.rest(),
    })
}

#[inline]
fn bit(bitmap: &[u8], i: usize) -> bool {
    bitmap[i / 8] & (1 << (i % 8)) != 0
}

/// Bits set among the first `n` of `bitmap`.
fn count_bits(bitmap: &[u8], n: usize) -> usize {
    (0..n).filter(|&i| bit(bitmap, i)).count()
}

impl<'a> RowsEvent<'a> {
    /// Decodes the v2 extra data. A part with an unknown tag ends the
    /// decoding (its length is not known); a truncated known part is an error.
    pub fn extra_row_info(&self) -> Result<ExtraRowInfo<'a>, DecodeError> {
        let mut info = ExtraRowInfo::default();
        let mut c = Cursor::new(self.extra_data);
        while !c.is_empty() {
            match c.u8("extra row info tag")? {
                0 => {
                    let len = c.u8("extra row info ndb length")? as usize;
                    let format = c.u8("extra row info ndb format")?;
                    let data = c.bytes(len.saturating_sub(2), "extra row info ndb data")?;
                    info.ndb = Some((format, data));
                }
                1 => {
                    info.partition = Some(c.u16("extra row info partition")?);
                    if self.kind == RowKind::Update {
                        info.source_partition = Some(c.u16("extra row info source partition")?);
                    }
                }
                _ => break,
            }
        }
        Ok(info)
    }

    /// True when no rows are left to decode.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// An iterator over the rows from the current position, leaving `self`
    /// where it is.
    pub fn rows<'t>(&'t self, table: &'t Table) -> RowIter<'t> {
        RowIter {
            event: self.clone(),
            table,
        }
    }

    /// Decodes the next row into `out`; `Ok(false)` when no rows are left.
    pub fn next_row(&mut self, table: &Table, out: &mut RowOut) -> Result<bool, DecodeError> {
        if self.rows.is_empty() {
            return Ok(false);
        }
        if table.table_id != self.table_id {
            return Err(DecodeError::TableIdMismatch {
                event: self.table_id,
                table: table.table_id,
            });
        }
        if table.columns.len() != self.column_count {
            return Err(DecodeError::ColumnCountMismatch {
                table: format!("{}.{}", table.database, table.name),
                expected: table.columns.len(),
                got: self.column_count,
            });
        }
        out.before.clear();
        out.after.clear();
        out.key.clear();
        out.has_before = false;
        out.has_after = false;
        let mut c = Cursor::new(self.rows);
        let o = &mut *out;
        match self.kind {
            RowKind::Insert => {
                image(
                    &mut c,
                    table,
                    self.present,
                    &mut o.after,
                    &mut o.spans_after,
                    None,
                )?;
                o.has_after = true;
                key(table, (&o.after, &o.spans_after), None, &mut o.key);
            }
            RowKind::Delete => {
                image(
                    &mut c,
                    table,
                    self.present,
                    &mut o.before,
                    &mut o.spans_before,
                    None,
                )?;
                o.has_before = true;
                key(table, (&o.before, &o.spans_before), None, &mut o.key);
            }
            RowKind::Update => {
                image(
                    &mut c,
                    table,
                    self.present,
                    &mut o.before,
                    &mut o.spans_before,
                    None,
                )?;
                let partial = if self.type_code == types::PARTIAL_UPDATE_ROWS {
                    partial::shared_image(&mut c, table)?
                        .map(|bits| (bits, (o.before.as_slice(), o.spans_before.as_slice())))
                } else {
                    None
                };
                image(
                    &mut c,
                    table,
                    self.present_after,
                    &mut o.after,
                    &mut o.spans_after,
                    partial,
                )?;
                o.has_before = true;
                o.has_after = true;
                key(
                    table,
                    (&o.after, &o.spans_after),
                    Some((&o.before, &o.spans_before)),
                    &mut o.key,
                );
            }
        }
        self.rows = c.rest();
        Ok(true)
    }
}

/// Rows of one event decoded against one table; see [`RowsEvent::next_row`].
#[derive(Debug)]
pub struct RowIter<'t> {
    event: RowsEvent<'t>,
    table: &'t Table,
}

impl RowIter<'_> {
    /// Decodes the next row into `out`; `Ok(false)` when no rows are left.
    pub fn next_row(&mut self, out: &mut RowOut) -> Result<bool, DecodeError> {
        self.event.next_row(self.table, out)
    }
}

/// Appends `"name":` to `out`.
#[inline]
pub(crate) fn push_key(out: &mut Vec<u8>, name: &str) {
    out.push(b'"');
    let b = name.as_bytes();
    if b.iter().all(|&x| x >= 0x20 && x != b'"' && x != b'\\') {
        out.extend_from_slice(b);
    } else {
        super::charset::escape_utf8(out, b);
    }
    out.extend_from_slice(b"\":");
}

/// Decodes one row image at `c` into `out` as a JSON object and records
/// where each column's value landed. `partial`: the after image of a
/// partial update, which JSON columns hold diffs and the before image they
/// apply to.
fn image(
    c: &mut Cursor<'_>,
    table: &Table,
    present: &[u8],
    out: &mut Vec<u8>,
    spans: &mut Vec<(u32, u32)>,
    partial: Option<(PartialBits<'_>, Spanned<'_>)>,
) -> Result<(), DecodeError> {
    let n = table.columns.len();
    spans.clear();
    spans.resize(n, NO_SPAN);
    let present_count = count_bits(present, n);
    let nulls = c.bytes(present_count.div_ceil(8), "row null bitmap")?;
    out.push(b'{');
    let mut k = 0;
    let mut json = 0;
    for (i, col) in table.columns.iter().enumerate() {
        let is_json = col.type_code == super::codes::column::JSON;
        json += usize::from(is_json);
        if !bit(present, i) {
            continue;
        }
        if k > 0 {
            out.push(b',');
        }
        push_key(out, &col.name);
        let start = out.len();
        match partial {
            _ if bit(nulls, k) => out.extend_from_slice(b"null"),
            Some((bits, before)) if is_json && bits.is_partial(json - 1) => {
                let diffs = partial::read_diffs(c, col)?;
                partial::write_patched(out, col, span_value(before, i), &diffs)?;
            }
            _ => write_value(out, c, col, i)?,
        }
        spans[i] = (start as u32, out.len() as u32);
        k += 1;
    }
    out.push(b'}');
    Ok(())
}

/// A row image and where each column's value is in it.
type Spanned<'b> = (&'b [u8], &'b [(u32, u32)]);

/// The JSON text of column `i` in a decoded image, if it is there.
fn span_value<'b>((img, spans): Spanned<'b>, i: usize) -> Option<&'b [u8]> {
    match spans.get(i) {
        Some(&(s, e)) if s != u32::MAX => img.get(s as usize..e as usize),
        _ => None,
    }
}

/// Writes the key array from the key image, taking a column missing there
/// from `fallback` (the before image of an update, for minimal row images).
fn key(table: &Table, image: Spanned<'_>, fallback: Option<Spanned<'_>>, out: &mut Vec<u8>) {
    let value = span_value;
    out.push(b'[');
    let mut put = |n: usize, i: usize| {
        if n > 0 {
            out.push(b',');
        }
        let v = value(image, i).or_else(|| fallback.and_then(|f| value(f, i)));
        out.extend_from_slice(v.unwrap_or(b"null"));
    };
    if table.primary_key.is_empty() {
        for i in 0..table.columns.len() {
            put(i, i);
        }
    } else {
        for (n, &i) in table.primary_key.iter().enumerate() {
            put(n, i);
        }
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::super::event::{parse_event, Event, EventHeader, Flavor};
    use super::super::jsonb::tests::{encode, J};
    use super::super::table::testing::{packed, strings, table_map};
    use super::super::table::types as col;
    use super::*;

    fn rows_body(
        type_code: u8,
        extra: Option<&[u8]>,
        ncols: usize,
        present: &[u8],
        present_after: Option<&[u8]>,
        data: &[u8],
    ) -> (EventHeader, Vec<u8>) {
        let mut b = 42u64.to_le_bytes()[..6].to_vec();
        b.extend_from_slice(&FLAG_STMT_END.to_le_bytes());
        if let Some(extra) = extra {
            b.extend_from_slice(&(extra.len() as u16 + 2).to_le_bytes());
            b.extend_from_slice(extra);
        }
        b.extend(packed(ncols as u64));
        b.extend_from_slice(present);
        if let Some(p) = present_after {
            b.extend_from_slice(p);
        }
        b.extend_from_slice(data);
        let header = EventHeader {
            timestamp: 0,
            type_code,
            server_id: 1,
            event_size: (19 + b.len() + 4) as u32,
            log_pos: 0,
            flags: 0,
        };
        (header, b)
    }

    /// `id BIGINT UNSIGNED PK, doc JSON, amount DECIMAL(10,2), name
    /// VARCHAR(20) utf8mb4, ts TIMESTAMP(3)` as MySQL 8 maps it.
    fn mysql_table() -> Table {
        let body = table_map(
            42,
            &[
                (col::LONGLONG, &[]),
                (col::JSON, &[4]),
                (col::NEWDECIMAL, &[10, 2]),
                (col::VARCHAR, &[80, 0]),
                (col::TIMESTAMP2, &[3]),
            ],
            &[
                (1, vec![0b1000_0000]),
                (2, packed(255)),
                (4, strings(&["id", "doc", "amount", "name", "ts"])),
                (8, packed(0)),
            ],
        );
        parse_table_map(&body)
    }

    fn full_row(id: u64, name: &str) -> Vec<u8> {
        let mut r = vec![0u8]; // null bitmap: nothing null
        r.extend_from_slice(&id.to_le_bytes());
        let doc = encode(&J::O(vec![("k", J::A(vec![J::I(1), J::Bool(false)]))]));
        r.extend_from_slice(&(doc.len() as u32).to_le_bytes());
        r.extend(doc);
        r.extend(crate::decode::decimal::tests::encode("-7.25", 10, 2));
        r.push(name.len() as u8);
        r.extend_from_slice(name.as_bytes());
        r.extend_from_slice(&1_700_000_000u32.to_be_bytes());
        r.extend_from_slice(&1230u16.to_be_bytes());
        r
    }

    fn text(b: &[u8]) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    #[test]
    fn mysql_v2_insert_with_extra_data_and_jsonb() {
        let table = mysql_table();
        assert!(table.columns[0].unsigned);
        let mut data = full_row(u64::MAX, "ü");
        data.extend(full_row(1, "b"));
        let extra = [0x00, 0x01, 0x02];
        let (h, body) = rows_body(30, Some(&extra), 5, &[0x1f], None, &data);
        let Event::Rows(mut rows) = parse_event(&h, &body, Flavor::MySql).unwrap() else {
            panic!("not rows")
        };
        assert_eq!(
            (rows.kind, rows.table_id, rows.flags),
            (RowKind::Insert, 42, 1)
        );
        assert_eq!(rows.extra_data, extra);
        let mut out = RowOut::new();
        assert!(rows.next_row(&table, &mut out).unwrap());
        assert!(!out.has_before && out.has_after && out.before.is_empty());
        assert_eq!(
            text(&out.after),
            r#"{"id":18446744073709551615,"doc":{"k":[1,false]},"amount":"-7.25","name":"ü","ts":"2023-11-14T22:13:20.123Z"}"#
        );
        assert_eq!(text(&out.key), "[18446744073709551615]");
        assert!(rows.next_row(&table, &mut out).unwrap());
        assert_eq!(text(&out.key), "[1]");
        assert!(!rows.next_row(&table, &mut out).unwrap());
        assert!(rows.is_empty());
    }

    #[test]
    fn minimal_update_keys_from_the_before_image() {
        let table = mysql_table();
        // Before: only id (1 present column); after: only name.
        let mut data = vec![0u8];
        data.extend_from_slice(&9u64.to_le_bytes());
        data.push(0);
        data.extend_from_slice(b"\x02hi");
        let (h, body) = rows_body(31, Some(&[]), 5, &[0b1], Some(&[0b1000]), &data);
        let Event::Rows(rows) = parse_event(&h, &body, Flavor::MySql).unwrap() else {
            panic!("not rows")
        };
        let mut it = rows.rows(&table);
        let mut out = RowOut::new();
        assert!(it.next_row(&mut out).unwrap());
        assert!(out.has_before && out.has_after);
        assert_eq!(text(&out.before), r#"{"id":9}"#);
        assert_eq!(text(&out.after), r#"{"name":"hi"}"#);
        assert_eq!(text(&out.key), "[9]");
        assert!(!it.next_row(&mut out).unwrap());
        // `rows()` left the event itself untouched.
        assert!(!rows.is_empty());
    }

    #[test]
    fn delete_with_nulls_and_buffers_reused() {
        let table = mysql_table();
        // doc, amount and ts NULL: bits 1, 2, 4 of the null bitmap.
        let mut data = vec![0b10110u8];
        data.extend_from_slice(&3u64.to_le_bytes());
        data.extend_from_slice(b"\x01x");
        let (h, body) = rows_body(32, Some(&[]), 5, &[0x1f], None, &data);
        let Event::Rows(mut rows) = parse_event(&h, &body, Flavor::MySql).unwrap() else {
            panic!("not rows")
        };
        let mut out = RowOut::new();
        out.after.extend_from_slice(b"stale");
        assert!(rows.next_row(&table, &mut out).unwrap());
        assert!(out.has_before && !out.has_after && out.after.is_empty());
        assert_eq!(
            text(&out.before),
            r#"{"id":3,"doc":null,"amount":null,"name":"x","ts":null}"#
        );
        assert_eq!(text(&out.key), "[3]");
    }

    #[test]
    fn malformed_rows_headers() {
        let (h, body) = rows_body(30, None, 5, &[0x1f], None, &[]);
        // v2 without its extra-data length: count and bitmap read as a length.
        assert!(parse_event(&h, &body, Flavor::MySql).is_err());
        let mut body = body;
        body.splice(8..8, [1u8, 0]);
        assert_eq!(
            parse_event(&h, &body, Flavor::MySql).unwrap_err(),
            DecodeError::Malformed {
                type_code: 30,
                what: "extra data length below 2"
            }
        );
        assert_eq!(
            parse_rows(19, &[]).unwrap_err(),
            DecodeError::Malformed {
                type_code: 19,
                what: "not a rows event"
            }
        );
        assert_eq!(RowKind::Update.as_str(), "update");
    }

    /// A MySQL TABLE_MAP event body, parsed.
    fn parse_table_map(body: &[u8]) -> Table {
        let h = EventHeader {
            timestamp: 0,
            type_code: 19,
            server_id: 1,
            event_size: (19 + body.len() + 4) as u32,
            log_pos: 0,
            flags: 0,
        };
        match parse_event(&h, body, Flavor::MySql).unwrap() {
            Event::TableMap(t) => t,
            e => panic!("{e:?}"),
        }
    }

    /// `id BIGINT PK, a JSON, b JSON` as MySQL 8 maps it.
    fn json_table() -> Table {
        let body = table_map(
            42,
            &[(col::LONGLONG, &[]), (col::JSON, &[4]), (col::JSON, &[4])],
            &[(4, strings(&["id", "a", "b"])), (8, packed(0))],
        );
        parse_table_map(&body)
    }

    fn json_value(j: &J) -> Vec<u8> {
        let doc = encode(j);
        let mut v = (doc.len() as u32).to_le_bytes().to_vec();
        v.extend(doc);
        v
    }

    /// Tested on bytes built to MySQL's documented format (`rpl_record.h`):
    /// no MySQL server can be installed where these tests run.
    #[test]
    fn partial_json_update_becomes_a_full_update() {
        let table = json_table();
        // before image: id 7, a = {"k":[1,2],"n":"x"}, b = [1]
        let mut data = vec![0u8];
        data.extend_from_slice(&7u64.to_le_bytes());
        data.extend(json_value(&J::O(vec![
            ("k", J::A(vec![J::I(1), J::I(2)])),
            ("n", J::S("x")),
        ])));
        data.extend(json_value(&J::A(vec![J::I(1)])));
        // shared image: PARTIAL_JSON_UPDATES, a (JSON column 0) partial, b not
        data.extend([1, 0b01]);
        // after image: id 7, a as diffs, b as a whole document
        data.push(0);
        data.extend_from_slice(&7u64.to_le_bytes());
        data.extend(super::super::partial::tests::diffs(&[
            (partial::REPLACE, "$.k[1]", Some(J::I(20))),
            (partial::INSERT, "$.m", Some(J::Bool(true))),
            (partial::REMOVE, "$.n", None),
        ]));
        data.extend(json_value(&J::S("whole")));
        // a second row without partial values (value_options 0)
        data.push(0);
        data.extend_from_slice(&8u64.to_le_bytes());
        data.extend(json_value(&J::Null));
        data.extend(json_value(&J::Null));
        data.push(0);
        data.push(0b100); // b is NULL after
        data.extend_from_slice(&8u64.to_le_bytes());
        data.extend(json_value(&J::I(1)));
        let (h, body) = rows_body(39, Some(&[]), 3, &[0b111], Some(&[0b111]), &data);
        let Event::Rows(mut rows) = parse_event(&h, &body, Flavor::MySql).unwrap() else {
            panic!("not rows")
        };
        assert_eq!(rows.kind, RowKind::Update);
        let mut out = RowOut::new();
        assert!(rows.next_row(&table, &mut out).unwrap());
        assert_eq!(
            text(&out.before),
            r#"{"id":7,"a":{"k":[1,2],"n":"x"},"b":[1]}"#
        );
        assert_eq!(
            text(&out.after),
            r#"{"id":7,"a":{"k":[1,20],"m":true},"b":"whole"}"#
        );
        assert_eq!(text(&out.key), "[7]");
        assert!(rows.next_row(&table, &mut out).unwrap());
        assert_eq!(text(&out.after), r#"{"id":8,"a":1,"b":null}"#);
        assert!(!rows.next_row(&table, &mut out).unwrap());
    }

    #[test]
    fn malformed_partial_updates_are_errors() {
        let table = json_table();
        let mut before = vec![0u8];
        before.extend_from_slice(&7u64.to_le_bytes());
        before.extend(json_value(&J::O(vec![("k", J::I(1))])));
        before.extend(json_value(&J::Null));
        let after = |shared: &[u8], a: Vec<u8>| {
            let mut d = before.clone();
            d.extend_from_slice(shared);
            d.push(0);
            d.extend_from_slice(&7u64.to_le_bytes());
            d.extend(a);
            d.extend(json_value(&J::Null));
            d
        };
        let cases = [
            // unknown operation
            after(
                &[1, 1],
                super::super::partial::tests::diffs(&[(9, "$.k", Some(J::I(2)))]),
            ),
            // path not in the before image
            after(
                &[1, 1],
                super::super::partial::tests::diffs(&[(partial::REPLACE, "$.z", Some(J::I(2)))]),
            ),
            // unknown value_options bit
            after(&[2], json_value(&J::I(2))),
            // partial bits missing
            vec![0u8; 0]
                .into_iter()
                .chain(before.clone())
                .chain([1])
                .collect(),
        ];
        for data in &cases {
            let (h, body) = rows_body(39, Some(&[]), 3, &[0b111], Some(&[0b111]), data);
            let Event::Rows(mut rows) = parse_event(&h, &body, Flavor::MySql).unwrap() else {
                panic!("not rows")
            };
            let e = rows.next_row(&table, &mut RowOut::new()).unwrap_err();
            assert!(
                matches!(
                    e,
                    DecodeError::PartialJson { .. }
                        | DecodeError::Malformed { type_code: 39, .. }
                        | DecodeError::Truncated { .. }
                ),
                "{e:?}"
            );
        }
        // the same diffs in an ordinary UPDATE_ROWS are not read as diffs
        let data = after(
            &[1, 1],
            super::super::partial::tests::diffs(&[(partial::REPLACE, "$.k", Some(J::I(2)))]),
        );
        let (h, body) = rows_body(31, Some(&[]), 3, &[0b111], Some(&[0b111]), &data);
        let Event::Rows(mut rows) = parse_event(&h, &body, Flavor::MySql).unwrap() else {
            panic!("not rows")
        };
        assert!(rows.next_row(&table, &mut RowOut::new()).is_err());
    }

    #[test]
    fn extra_row_info_ndb_and_partitions() {
        let parse = |t: u8, extra: &[u8]| {
            let present_after = (t == 31 || t == 39).then_some(&[0x1f][..]);
            let (h, body) = rows_body(t, Some(extra), 5, &[0x1f], present_after, &[]);
            let Event::Rows(rows) = parse_event(&h, &body, Flavor::MySql).unwrap() else {
                panic!("not rows")
            };
            rows.extra_row_info().map(|i| {
                (
                    i.ndb.map(|(f, d)| (f, d.to_vec())),
                    i.partition,
                    i.source_partition,
                )
            })
        };
        assert_eq!(parse(30, &[]).unwrap(), (None, None, None));
        assert_eq!(
            parse(30, &[0, 5, 1, 0xaa, 0xbb, 0xcc, 1, 7, 0]).unwrap(),
            (Some((1, vec![0xaa, 0xbb, 0xcc])), Some(7), None)
        );
        // updates (and partial updates) carry the source partition too
        assert_eq!(
            parse(39, &[1, 2, 0, 3, 0]).unwrap(),
            (None, Some(2), Some(3))
        );
        // an unknown tag ends it; a truncated part is an error
        assert_eq!(parse(30, &[9, 1, 2]).unwrap(), (None, None, None));
        assert!(parse(31, &[1, 2, 0, 3]).is_err());
        assert!(parse(30, &[0, 9, 1]).is_err());
    }
}
