//! Message formats (`sink.format`): ours (`json`, docs/design.md §7), Debezium's
//! MySQL envelope, Canal's FlatMessage and Maxwell's JSON. See
//! `docs/formats.md` for each one's reference rendering.
//!
//! Flow in: one row change (kind, transaction position, row number, event
//! time, the decoder's key and its `before`/`after` images as docs/design.md §7
//! JSON), or one DDL statement. Flow out: the Kafka value written into a
//! reused buffer, and which key goes with it ([`KeyOut`]). The format is
//! chosen once per task ([`TaskFormat`]) and a [`TableFormat`] built once
//! per table map, holding everything that does not change per row
//! (escaped names, column kinds, the Debezium schema block), so the per-row
//! path only writes bytes.
//!
//! Headers are not the formats' business: the sink adds the task, position
//! and epoch headers to every message whatever its value, so resume, fencing
//! and duplicate removal work the same for every format.
//!
//! Failure: an image that does not have the table's columns, or a value the
//! decoder could not have written, is a [`FormatError`] naming the table and
//! column (the pipeline stops the task with it: nothing is sent half-right).
//!
//! Written by hand: no crate renders these formats from MySQL row images
//! (Debezium, Canal and Maxwell are Java programs); the value conversions
//! are small and pure ([`columns`]).

pub mod canal;
pub mod columns;
pub mod debezium;
pub mod json;
pub mod maxwell;
pub mod transaction;

use crate::decode::Table;
use crate::pipeline::message::ChangeType;
use crate::source::schema::TableDef;
use replicator_common::config::{MessageFormat, TaskConfig, UnknownFormat};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A row image or value the format cannot render.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("row image is not a JSON object: {0}")]
    Image(#[source] serde_json::Error),
    /// A change of this kind (`insert`, `delete`, ...) came without the row
    /// image the format shows.
    #[error("{0} without its row image")]
    MissingImage(&'static str),
    #[error("row image has {got} values for {want} columns")]
    Columns { got: usize, want: usize },
    #[error("column `{col}`: `{value}` is not {what}")]
    Value {
        col: String,
        what: &'static str,
        value: String,
    },
}

impl FormatError {
    pub fn value(col: &str, what: &'static str, value: &str) -> FormatError {
        FormatError::Value {
            col: col.to_string(),
            what,
            value: value.chars().take(80).collect(),
        }
    }
}

/// Which key goes with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOut {
    /// The decoder's key (JSON array of the primary-key values).
    Row,
    /// What the format wrote into the key buffer.
    Written,
    /// Kafka's null key.
    Null,
}

/// The transaction a message belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Txn<'a> {
    pub file: &'a str,
    /// Where the transaction starts.
    pub pos: u64,
    pub gtid: Option<&'a str>,
    /// Our `position` object up to `"row":` (see `message::position_prefix`).
    pub json_position: &'a [u8],
}

/// One row change.
#[derive(Debug, Clone, Copy)]
pub struct RowChange<'a> {
    pub kind: ChangeType,
    /// Event time (binlog timestamp, ms).
    pub ts_ms: i64,
    pub server_id: u32,
    pub txn: Txn<'a>,
    /// Index of the message in its transaction.
    pub row: u64,
    /// The decoder's key.
    pub key: &'a [u8],
    pub before: Option<&'a [u8]>,
    pub after: Option<&'a [u8]>,
    /// The row's place in its transaction, when transaction events are on.
    pub order: Option<transaction::TxnOrder<'a>>,
    /// A snapshot row's place in the snapshot (`SnapshotMark::Stream` for
    /// stream rows).
    pub snapshot: SnapshotMark,
}

/// Where a row stands in the snapshot, as Debezium marks it in
/// `source.snapshot` (the other formats only tell snapshot rows apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotMark {
    /// Not a snapshot row (`"false"`).
    #[default]
    Stream,
    /// `"true"`: neither first nor last of its table.
    Row,
    /// `"first"`: the first row of the first table.
    First,
    /// `"first_in_data_collection"`: the first row of another table.
    FirstInTable,
    /// `"last_in_data_collection"`: the last row of a table but the last.
    LastInTable,
    /// `"last"`: the last row of the last table.
    Last,
}

impl SnapshotMark {
    /// The mark of a row, with Debezium's precedence (its
    /// `RelationalSnapshotChangeEventSource.setSnapshotMarker`).
    pub fn of(first_table: bool, last_table: bool, first_row: bool, last_row: bool) -> Self {
        if last_row && last_table {
            SnapshotMark::Last
        } else if first_row && first_table {
            SnapshotMark::First
        } else if last_row {
            SnapshotMark::LastInTable
        } else if first_row {
            SnapshotMark::FirstInTable
        } else {
            SnapshotMark::Row
        }
    }

    /// The value of Debezium's `source.snapshot`.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotMark::Stream => "false",
            SnapshotMark::Row => "true",
            SnapshotMark::First => "first",
            SnapshotMark::FirstInTable => "first_in_data_collection",
            SnapshotMark::LastInTable => "last_in_data_collection",
            SnapshotMark::Last => "last",
        }
    }
}

/// One DDL statement on a table.
#[derive(Debug, Clone, Copy)]
pub struct DdlChange<'a> {
    pub database: &'a str,
    pub table: &'a str,
    pub sql: &'a str,
    pub ts_ms: i64,
    pub server_id: u32,
    pub txn: Txn<'a>,
    pub row: u64,
    /// The table's definition after the statement, when the format wants
    /// it ([`TaskFormat::wants_definition`]) and the table exists.
    pub def: Option<&'a TableDef>,
}

/// A format bound to one table.
pub trait TableFormat: Send + Sync {
    /// Writes the value of `r` into `out` (cleared first) and, when the
    /// format has its own key, the key into `key` (cleared first).
    fn row(
        &self,
        out: &mut Vec<u8>,
        key: &mut Vec<u8>,
        r: &RowChange<'_>,
    ) -> Result<KeyOut, FormatError>;

    /// True when an update from `before` to `after` is to be written as a
    /// delete of `before` then an insert of `after` (its key changed and
    /// the format says so).
    fn splits_key_change(
        &self,
        _before: Option<&[u8]>,
        _after: Option<&[u8]>,
    ) -> Result<bool, FormatError> {
        Ok(false)
    }
}

/// The format of one task.
#[derive(Debug, Clone)]
pub struct TaskFormat {
    pub format: MessageFormat,
    pub task: String,
    /// A tombstone (null value, same key) after each delete.
    pub tombstones: bool,
    /// Debezium: add the `schema` block.
    pub schemas: bool,
}

impl TaskFormat {
    pub fn new(cfg: &TaskConfig) -> Result<TaskFormat, UnknownFormat> {
        Ok(TaskFormat {
            format: cfg.sink.message_format()?,
            task: cfg.name.clone(),
            tombstones: cfg.sink.tombstones,
            schemas: cfg.sink.debezium.schemas,
        })
    }

    /// The renderer of `table`'s rows.
    pub fn table(&self, table: &Table) -> Box<dyn TableFormat> {
        match self.format {
            MessageFormat::Json => Box::new(json::JsonTable::new(&self.task, table)),
            MessageFormat::Debezium => Box::new(debezium::DebeziumTable::new(self, table)),
            MessageFormat::Canal => Box::new(canal::CanalTable::new(table)),
            MessageFormat::Maxwell => Box::new(maxwell::MaxwellTable::new(table)),
        }
    }

    /// True when DDL events carry the table's definition (Maxwell's `def`,
    /// Debezium's `tableChanges`).
    pub fn wants_definition(&self) -> bool {
        matches!(
            self.format,
            MessageFormat::Debezium | MessageFormat::Maxwell
        )
    }

    /// The topic of DDL events when the format has its own: Debezium's
    /// schema change topic, named by its topic prefix (the server name,
    /// which is the task's name in `source.name`). `None`: the table's topic.
    pub fn ddl_topic(&self) -> Option<&str> {
        (self.format == MessageFormat::Debezium).then_some(self.task.as_str())
    }

    /// Writes the message of a DDL statement; the key is always written.
    pub fn ddl(&self, out: &mut Vec<u8>, key: &mut Vec<u8>, d: &DdlChange<'_>) {
        out.clear();
        key.clear();
        match self.format {
            MessageFormat::Json => json::ddl(out, key, &self.task, d),
            MessageFormat::Debezium => debezium::ddl(out, key, self, d),
            MessageFormat::Canal => canal::ddl(out, key, d),
            MessageFormat::Maxwell => maxwell::ddl(out, key, d),
        }
    }
}

impl TaskFormat {
    /// Writes a heartbeat: under `debezium` Debezium's (`{"ts_ms"}`, key
    /// `{"serverName": task}`), otherwise ours (`{"task", "type":
    /// "heartbeat", "ts_ms", "position": {"file", "pos", "gtid"},
    /// "event_ts_ms"}`, key `["<task>"]`), where `position` is the newest
    /// position whose messages Kafka acknowledged.
    pub fn heartbeat(
        &self,
        out: &mut Vec<u8>,
        key: &mut Vec<u8>,
        at: &crate::progress::Checkpoint,
        now_ms: i64,
    ) {
        use columns::{push_int, push_str};
        out.clear();
        key.clear();
        if self.format == MessageFormat::Debezium {
            out.extend_from_slice(b"{\"ts_ms\":");
            push_int(out, now_ms);
            out.push(b'}');
            key.extend_from_slice(b"{\"serverName\":");
            push_str(key, &self.task);
            key.push(b'}');
            return;
        }
        out.extend_from_slice(b"{\"task\":");
        push_str(out, &self.task);
        out.extend_from_slice(b",\"type\":\"heartbeat\",\"ts_ms\":");
        push_int(out, now_ms);
        out.extend_from_slice(b",\"position\":{\"file\":");
        push_str(out, &at.pos.file);
        out.extend_from_slice(b",\"pos\":");
        push_int(out, at.pos.pos);
        out.extend_from_slice(b",\"gtid\":");
        match &at.gtid {
            Some(g) => push_str(out, &g.to_string()),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b"},\"event_ts_ms\":");
        push_int(out, at.event_ts_ms);
        out.push(b'}');
        key.push(b'[');
        push_str(key, &self.task);
        key.push(b']');
    }
}

/// The values of a row image, in column order.
pub struct Image<'a>(pub Vec<&'a RawValue>);

impl<'a> Image<'a> {
    /// Parses `bytes`, which must hold one value per column of `table`.
    pub fn parse(bytes: &'a [u8], table: &Table) -> Result<Image<'a>, FormatError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let values = (&mut de)
            .deserialize_map(ImageVisitor(Vec::with_capacity(table.columns.len())))
            .map_err(FormatError::Image)?;
        de.end().map_err(FormatError::Image)?;
        if values.len() != table.columns.len() {
            return Err(FormatError::Columns {
                got: values.len(),
                want: table.columns.len(),
            });
        }
        Ok(Image(values))
    }

    /// The before and after images of `r`, each parsed when there is one.
    pub fn of_change(r: &RowChange<'a>, table: &Table) -> Result<Images<'a>, FormatError> {
        let parse = |b: Option<&'a [u8]>| b.map(|b| Image::parse(b, table)).transpose();
        Ok((parse(r.before)?, parse(r.after)?))
    }
}

/// A change's before and after images.
pub type Images<'a> = (Option<Image<'a>>, Option<Image<'a>>);

struct ImageVisitor<'a>(Vec<&'a RawValue>);

impl<'de> Visitor<'de> for ImageVisitor<'de> {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object of column values")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            self.0.push(map.next_value::<&'de RawValue>()?);
        }
        Ok(self.0)
    }
}

/// True for the JSON `null`.
pub fn is_null(v: &RawValue) -> bool {
    v.get() == "null"
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
