//! WRITE/UPDATE/DELETE rows events to JSON row images.
//!
//! In: the body of a rows event (v1: MariaDB and MySQL 5.x, v2: MySQL 8)
//! and the [`Table`] of its table id. Out, per row, into a reusable
//! [`RowOut`]: the before image (update/delete) and after image
//! (insert/update) as JSON objects keyed by column name in table order
//! (columns missing from the event's present bitmap are left out, NULL is
//! `null`), and the key as a JSON array: the primary key values in key
//! order, or every column when the table has no primary key (a key column
//! missing from the image is `null`). The key comes from the after image,
//! except for deletes.
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

use super::cursor::Cursor;
use super::event::types;
use super::table::Table;
use super::value::write_value;
use super::DecodeError;

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
    /// The event type code (23-25 or 30-32).
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
    /// Byte range of each column's value in the key image buffer.
    spans: Vec<(u32, u32)>,
}

impl RowOut {
    pub fn new() -> Self {
        Self::default()
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
        match self.kind {
            RowKind::Insert => {
                image(&mut c, table, self.present, &mut out.after, &mut out.spans)?;
                out.has_after = true;
                key(table, &out.after, &out.spans, &mut out.key);
            }
            RowKind::Delete => {
                image(&mut c, table, self.present, &mut out.before, &mut out.spans)?;
                out.has_before = true;
                key(table, &out.before, &out.spans, &mut out.key);
            }
            RowKind::Update => {
                image(&mut c, table, self.present, &mut out.before, &mut out.spans)?;
                image(
                    &mut c,
                    table,
                    self.present_after,
                    &mut out.after,
                    &mut out.spans,
                )?;
                out.has_before = true;
                out.has_after = true;
                key(table, &out.after, &out.spans, &mut out.key);
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
fn push_key(out: &mut Vec<u8>, name: &str) {
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
/// where each column's value landed.
fn image(
    c: &mut Cursor<'_>,
    table: &Table,
    present: &[u8],
    out: &mut Vec<u8>,
    spans: &mut Vec<(u32, u32)>,
) -> Result<(), DecodeError> {
    let n = table.columns.len();
    spans.clear();
    spans.resize(n, NO_SPAN);
    let present_count = count_bits(present, n);
    let nulls = c.bytes(present_count.div_ceil(8), "row null bitmap")?;
    out.push(b'{');
    let mut k = 0;
    for (i, col) in table.columns.iter().enumerate() {
        if !bit(present, i) {
            continue;
        }
        if k > 0 {
            out.push(b',');
        }
        push_key(out, &col.name);
        let start = out.len();
        if bit(nulls, k) {
            out.extend_from_slice(b"null");
        } else {
            write_value(out, c, col, i)?;
        }
        spans[i] = (start as u32, out.len() as u32);
        k += 1;
    }
    out.push(b'}');
    Ok(())
}

/// Writes the key array from the spans of the key image.
fn key(table: &Table, image: &[u8], spans: &[(u32, u32)], out: &mut Vec<u8>) {
    out.push(b'[');
    let mut put = |n: usize, i: usize| {
        if n > 0 {
            out.push(b',');
        }
        match spans.get(i) {
            Some(&(s, e)) if s != u32::MAX => out.extend_from_slice(&image[s as usize..e as usize]),
            _ => out.extend_from_slice(b"null"),
        }
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
