//! The three Kafka requests the producer sends, encoded and decoded: find the
//! transaction coordinator (`FindCoordinator` v1), obtain a producer id and
//! bump its epoch (`InitProducerId` v3, which fences every earlier holder of
//! the same transactional id) and write record batches (`Produce` v7). Pure.

use super::wire::{Put, Reader, WireError};

pub const PRODUCE: i16 = 0;
pub const FIND_COORDINATOR: i16 = 10;
pub const INIT_PRODUCER_ID: i16 = 22;

pub const PRODUCE_VERSION: i16 = 7;
pub const FIND_COORDINATOR_VERSION: i16 = 1;
/// First version that carries the producer id and epoch (flexible).
pub const INIT_PRODUCER_ID_VERSION: i16 = 3;

/// Starts a request frame: size placeholder and header (v1, or v2 for a
/// flexible version). Append the body, then call [`finish`].
pub fn start(api_key: i16, version: i16, correlation: i32, client_id: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    b.i32(0);
    b.i16(api_key);
    b.i16(version);
    b.i32(correlation);
    b.nullable_string(Some(client_id));
    if is_flexible(api_key, version) {
        b.no_tags();
    }
    b
}

/// Writes the size prefix of a frame built with [`start`].
pub fn finish(frame: &mut [u8]) {
    let len = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
}

pub fn is_flexible(api_key: i16, version: i16) -> bool {
    match api_key {
        PRODUCE => version >= 9,
        FIND_COORDINATOR => version >= 3,
        INIT_PRODUCER_ID => version >= 2,
        _ => false,
    }
}

/// Splits a response body into its correlation id and the rest.
pub fn response<'a>(
    api_key: i16,
    version: i16,
    body: &'a [u8],
) -> Result<(i32, Reader<'a>), WireError> {
    let mut r = Reader::new(body);
    let correlation = r.i32()?;
    if is_flexible(api_key, version) {
        r.skip_tags()?;
    }
    Ok((correlation, r))
}

/// `FindCoordinator` for a transactional id.
pub fn find_coordinator(b: &mut Vec<u8>, transactional_id: &str) {
    b.string(transactional_id);
    b.i8(1); // key type: transaction
}

/// Where the coordinator is, or the error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator {
    pub error: i16,
    pub message: Option<String>,
    pub host: String,
    pub port: i32,
}

pub fn read_coordinator(r: &mut Reader<'_>) -> Result<Coordinator, WireError> {
    let _throttle = r.i32()?;
    let error = r.i16()?;
    let message = r.nullable_string()?.map(str::to_string);
    let _node = r.i32()?;
    let host = r.string()?.to_string();
    let port = r.i32()?;
    Ok(Coordinator {
        error,
        message,
        host,
        port,
    })
}

/// `InitProducerId` for a transactional id: a new epoch of its producer id.
pub fn init_producer_id(b: &mut Vec<u8>, transactional_id: &str, txn_timeout_ms: i32) {
    b.compact_nullable_string(Some(transactional_id));
    b.i32(txn_timeout_ms);
    b.i64(-1); // producer id: none known
    b.i16(-1); // producer epoch
    b.no_tags();
}

/// (error code, producer id, epoch).
pub fn read_producer_id(r: &mut Reader<'_>) -> Result<(i16, i64, i16), WireError> {
    let _throttle = r.i32()?;
    let error = r.i16()?;
    let id = r.i64()?;
    let epoch = r.i16()?;
    r.skip_tags()?;
    Ok((error, id, epoch))
}

/// `Produce` header fields up to the topic array; then per topic
/// [`produce_topic`] and per partition [`produce_partition`].
pub fn produce(b: &mut Vec<u8>, timeout_ms: i32, topics: usize) {
    b.nullable_string(None); // not transactional
    b.i16(-1); // acks=all
    b.i32(timeout_ms);
    b.i32(topics as i32);
}

pub fn produce_topic(b: &mut Vec<u8>, topic: &str, partitions: usize) {
    b.string(topic);
    b.i32(partitions as i32);
}

pub fn produce_partition(b: &mut Vec<u8>, partition: i32, batch: &[u8]) {
    b.i32(partition);
    b.bytes(batch);
}

/// One partition's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionResult {
    pub topic: String,
    pub partition: i32,
    pub error: i16,
    pub base_offset: i64,
}

pub fn read_produce(r: &mut Reader<'_>) -> Result<Vec<PartitionResult>, WireError> {
    let mut out = Vec::new();
    for _ in 0..r.count()? {
        let topic = r.string()?.to_string();
        for _ in 0..r.count()? {
            let partition = r.i32()?;
            let error = r.i16()?;
            let base_offset = r.i64()?;
            let _log_append_time = r.i64()?;
            let _log_start_offset = r.i64()?;
            out.push(PartitionResult {
                topic: topic.clone(),
                partition,
                error,
                base_offset,
            });
        }
    }
    let _throttle = r.i32()?;
    Ok(out)
}

/// Kafka's name for an error code.
pub fn error_name(code: i16) -> &'static str {
    match code {
        -1 => "UNKNOWN_SERVER_ERROR",
        0 => "NONE",
        2 => "CORRUPT_MESSAGE",
        3 => "UNKNOWN_TOPIC_OR_PARTITION",
        5 => "LEADER_NOT_AVAILABLE",
        6 => "NOT_LEADER_OR_FOLLOWER",
        7 => "REQUEST_TIMED_OUT",
        10 => "MESSAGE_TOO_LARGE",
        14 => "COORDINATOR_LOAD_IN_PROGRESS",
        15 => "COORDINATOR_NOT_AVAILABLE",
        16 => "NOT_COORDINATOR",
        18 => "RECORD_LIST_TOO_LARGE",
        19 => "NOT_ENOUGH_REPLICAS",
        20 => "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        29 => "TOPIC_AUTHORIZATION_FAILED",
        35 => "UNSUPPORTED_VERSION",
        45 => "OUT_OF_ORDER_SEQUENCE_NUMBER",
        46 => "DUPLICATE_SEQUENCE_NUMBER",
        47 => "INVALID_PRODUCER_EPOCH",
        48 => "INVALID_TXN_STATE",
        51 => "CONCURRENT_TRANSACTIONS",
        53 => "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
        59 => "UNKNOWN_PRODUCER_ID",
        76 => "UNSUPPORTED_COMPRESSION_TYPE",
        87 => "INVALID_RECORD",
        90 => "PRODUCER_FENCED",
        _ => "UNKNOWN",
    }
}

/// A newer writer of the same task holds the producer id.
pub const PRODUCER_FENCED: i16 = 90;
pub const INVALID_PRODUCER_EPOCH: i16 = 47;

/// Errors no retry fixes: the task must stop with a definite error.
pub fn is_definite(code: i16) -> bool {
    matches!(code, 10 | 18 | 29 | 53 | 76 | 87)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_frames_carry_size_and_header() {
        let mut f = start(FIND_COORDINATOR, 1, 7, "rc");
        find_coordinator(&mut f, "t");
        finish(&mut f);
        assert_eq!(
            f,
            [0, 0, 0, 16, 0, 10, 0, 1, 0, 0, 0, 7, 0, 2, b'r', b'c', 0, 1, b't', 1]
        );
        let mut f = start(INIT_PRODUCER_ID, 3, 1, "");
        init_producer_id(&mut f, "t", 60_000);
        finish(&mut f);
        assert_eq!(f[12..15], [0, 0, 0], "empty client id, no header tags");
        assert_eq!(
            f[15..21],
            [2, b't', 0, 0, 0xea, 0x60],
            "compact string, timeout"
        );
        assert_eq!(
            f[21..],
            [0xff; 10].iter().copied().chain([0]).collect::<Vec<_>>()
        );
    }

    #[test]
    fn produce_response_is_read_per_partition() {
        let mut b = Vec::new();
        b.i32(9); // correlation
        b.i32(1);
        b.string("topic");
        b.i32(2);
        for (p, e, off) in [(0, 0i16, 100i64), (3, PRODUCER_FENCED, -1)] {
            b.i32(p);
            b.i16(e);
            b.i64(off);
            b.i64(-1);
            b.i64(0);
        }
        b.i32(0);
        let (corr, mut r) = response(PRODUCE, PRODUCE_VERSION, &b).unwrap();
        assert_eq!(corr, 9);
        let res = read_produce(&mut r).unwrap();
        assert_eq!(res.len(), 2);
        assert_eq!(
            (res[0].partition, res[0].error, res[0].base_offset),
            (0, 0, 100)
        );
        assert_eq!(error_name(res[1].error), "PRODUCER_FENCED");
        assert!(
            read_produce(&mut Reader::new(&b[..20])).is_err(),
            "truncated"
        );
    }

    #[test]
    fn init_producer_id_response_skips_flexible_tags() {
        let mut b = Vec::new();
        b.i32(4);
        b.no_tags();
        b.i32(0);
        b.i16(0);
        b.i64(12);
        b.i16(5);
        b.no_tags();
        let (corr, mut r) = response(INIT_PRODUCER_ID, INIT_PRODUCER_ID_VERSION, &b).unwrap();
        assert_eq!(corr, 4);
        assert_eq!(read_producer_id(&mut r), Ok((0, 12, 5)));
    }
}
