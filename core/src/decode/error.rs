//! The decoder's error type: why an event body could not be decoded.

/// Why an event body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body ended before `what` could be read.
    #[error("event truncated while reading {what}")]
    Truncated { what: &'static str },
    /// A column type this decoder does not know (or cannot decode, like the
    /// pre-5.0 DECIMAL).
    #[error("unknown or unsupported column type {ty} at column {column}")]
    UnknownColumnType { ty: u8, column: usize },
    /// The table map's metadata is inconsistent.
    #[error("bad table metadata at column {column}: {what}")]
    BadMetadata { what: &'static str, column: usize },
    /// A rows event does not match the table map it refers to.
    #[error("rows event for `{table}` has {got} columns, table map has {expected}")]
    ColumnCountMismatch {
        table: String,
        expected: usize,
        got: usize,
    },
    /// A rows event was decoded against the table map of another table id.
    #[error("rows event is for table id {event}, table map given is for {table}")]
    TableIdMismatch { event: u64, table: u64 },
    /// A stored value is malformed for its column type.
    #[error("bad value in column `{column}`: {what}")]
    BadValue { column: String, what: &'static str },
    /// An event that carries data this decoder cannot read; skipping it
    /// would lose changes.
    #[error("unsupported event type {type_code}: {what}")]
    Unsupported { type_code: u8, what: &'static str },
    /// An event type this decoder does not know: it might carry row changes,
    /// so it is not skipped.
    #[error(
        "unknown binlog event type {type_code}: it may carry row changes, so it is not skipped"
    )]
    UnknownEvent { type_code: u8 },
    /// A partial JSON update (PARTIAL_UPDATE_ROWS) that cannot be applied:
    /// malformed diffs, or a path the before image does not have.
    #[error("partial JSON update of column `{column}`: {what}")]
    PartialJson { column: String, what: &'static str },
    /// A compressed event uses a compression type this decoder does not know.
    #[error("event type {type_code} uses compression type {compression}, which this decoder does not know")]
    UnknownCompression { type_code: u8, compression: u64 },
    /// An event body is malformed in a way not covered above.
    #[error("malformed event type {type_code}: {what}")]
    Malformed { type_code: u8, what: &'static str },
}
