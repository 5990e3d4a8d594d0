//! Our own format (`json`, docs/design.md §7): the images are written as the
//! decoder rendered them, behind a per-table prefix escaped once
//! ([`crate::pipeline::message`]). The key is the decoder's key.

use super::{DdlChange, FormatError, KeyOut, RowChange, TableFormat};
use crate::decode::Table;
use crate::pipeline::message;

/// `json` rows of one table.
pub struct JsonTable {
    prefix: Vec<u8>,
    key_names: Vec<u8>,
}

impl JsonTable {
    pub fn new(task: &str, table: &Table) -> JsonTable {
        JsonTable {
            prefix: message::table_prefix(task, &table.database, &table.name),
            key_names: message::key_names(table.primary_key_names()),
        }
    }
}

impl TableFormat for JsonTable {
    fn row(
        &self,
        out: &mut Vec<u8>,
        _key: &mut Vec<u8>,
        r: &RowChange<'_>,
    ) -> Result<KeyOut, FormatError> {
        message::write_row(
            out,
            &message::RowParts {
                prefix: &self.prefix,
                kind: r.kind,
                ts_ms: r.ts_ms,
                position: r.txn.json_position,
                row: r.row,
                key_names: &self.key_names,
                before: r.before,
                after: r.after,
            },
        );
        Ok(KeyOut::Row)
    }
}

/// A `ddl` message, keyed `["db","table"]`.
pub fn ddl(out: &mut Vec<u8>, key: &mut Vec<u8>, task: &str, d: &DdlChange<'_>) {
    let prefix = message::table_prefix(task, d.database, d.table);
    message::write_ddl(out, &prefix, d.ts_ms, d.txn.json_position, d.row, d.sql);
    key.extend_from_slice(&message::ddl_key(d.database, d.table));
}
