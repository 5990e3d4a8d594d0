//! Binlog event decoder: raw event bodies in, typed events and row JSON out.
//!
//! # Flow
//!
//! The binlog reader hands every event to [`parse_event`] as its 19-byte
//! header (already parsed into an [`EventHeader`]) and its body: the bytes
//! after the header and without the trailing CRC32 (what mysql_async's
//! `Event::data()` returns). Out comes an [`Event`] that borrows from the
//! body where it can:
//!
//! * control events (rotate, format description, query, XID, MariaDB and
//!   MySQL GTIDs, GTID lists, heartbeats) carry what the pipeline needs to
//!   track positions and transaction boundaries;
//! * `TABLE_MAP` becomes a [`Table`]: column types, metadata, and, from the
//!   optional metadata of `binlog_row_metadata=FULL`, names, signedness,
//!   collations, ENUM/SET labels and the primary key. The caller keeps the
//!   tables by `table_id` (and may fill in what the binlog lacks with
//!   [`Table::apply_schema`]);
//! * rows events become a [`RowsEvent`], a cursor over the event's rows.
//!   [`RowsEvent::next_row`] (or [`RowsEvent::rows`]) renders each row's
//!   before/after images and key as JSON text (docs/design.md §7) straight into the
//!   reusable buffers of a [`RowOut`]; no value is materialised on the heap.
//!
//! # Layout
//!
//! * `event`: event header, event enum and per-type parsing.
//! * `table`, `optional`: `TABLE_MAP` and its optional metadata.
//! * `rows`: rows events, null bitmaps, row images, keys.
//! * `value`: one column value to JSON, by type.
//! * `decimal`, `temporal`, `charset`, `jsonb`, `float`: the type families
//!   that need more than a few lines (binary DECIMAL, date/time packing,
//!   collation to UTF-8 conversion, MySQL binary JSON, doubles as JSON).
//! * `compressed`: MariaDB compressed events inflated to plain ones.
//! * `payload`: MySQL 8 transaction payloads (zstd or none) split into the
//!   events they carry.
//! * `partial`: MySQL partial JSON updates applied to the before image.
//! * Leaves that import no other decoder module: `codes` (event and column
//!   type codes, [`Flavor`]), `column` ([`Table`], [`Column`]), `error`
//!   ([`DecodeError`]), `cursor` (bounds-checked little-endian reading).
//!   Modules import only downwards (event → rows → value → jsonb → leaves),
//!   never in a circle.
//!
//! # Failure modes
//!
//! Every read is bounds checked: a short or malformed body gives a typed
//! [`DecodeError`], never a panic. Errors are definite for the event (the
//! same bytes always fail the same way), so the pipeline should stop the
//! task and report rather than retry. MariaDB compressed events are inflated
//! into the plain events they stand for first ([`compressed`]); a MySQL 8
//! TRANSACTION_PAYLOAD is decompressed into the events of its transaction
//! ([`payload`]), which are then decoded one by one; MySQL's partial JSON
//! updates (PARTIAL_UPDATE_ROWS) are rows events whose JSON diffs are applied
//! to the before image ([`partial`]). An event type the decoder does not
//! know, unless the server flagged it ignorable. Known events without row
//! changes are [`Event::Other`]. The decoder holds no state between events: after a
//! crash the pipeline resumes from a position and re-reads the table maps
//! of the transactions that follow.

pub mod bench;
pub mod charset;
pub mod codes;
pub mod column;
pub mod compressed;
pub(crate) mod cursor;
pub mod decimal;
mod error;
pub mod event;
pub mod float;
pub mod jsonb;
mod optional;
pub mod partial;
pub mod payload;
pub mod rows;
pub mod table;
pub mod temporal;
pub mod value;

#[cfg(test)]
mod fixture_data;
#[cfg(test)]
mod fixtures;

pub use codes::Flavor;
pub use column::{Column, Table};
pub use error::DecodeError;
pub use event::{parse_event, Event, EventHeader};
pub use rows::{RowIter, RowKind, RowOut, RowsEvent};
