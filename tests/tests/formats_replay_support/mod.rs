//! Helpers of `formats_replay.rs`: the changes it runs ([`changes`]), the
//! formats' reference renderings and the field-by-field type matrix
//! ([`reference`]), the changelog replay as Flink reads the formats
//! ([`replay`]), and the order of a topic's messages (below, by [`position`]).

pub mod changes;
pub mod reference;
pub mod replay;

use crate::type_matrix_support::position;
use replicator_tests::Message;

/// Our messages of a topic in binlog order (position header): a snapshot
/// row (`file:pos:s<chunk>.<row>`) before the stream rows of the
/// transaction at its boundary `file:pos`.
pub fn in_order(mut msgs: Vec<Message>) -> Vec<Message> {
    msgs.sort_by_key(position);
    msgs
}
