//! The Kafka requests the producer sends, encoded and decoded: learn what a
//! broker speaks (`ApiVersions` v0, on every connection; [`pick_versions`]
//! takes the newest version both sides speak), find the transaction
//! coordinator (`FindCoordinator` v1-v2), obtain a producer id and bump its
//! epoch (`InitProducerId` v0-v4, which fences earlier holders of the same
//! transactional id) and write record batches (`Produce` v3-v8). Pure.

use super::wire::{Put, Reader, WireError};

pub const PRODUCE: i16 = 0;
pub const FIND_COORDINATOR: i16 = 10;
pub const API_VERSIONS: i16 = 18;
pub const INIT_PRODUCER_ID: i16 = 22;

pub const PRODUCE_VERSION: i16 = 7;
pub const FIND_COORDINATOR_VERSION: i16 = 1;
/// First version that carries the producer id and epoch (flexible).
pub const INIT_PRODUCER_ID_VERSION: i16 = 3;
/// Every broker answers v0 (Kafka 0.10 to 4.x, Tansu).
pub const API_VERSIONS_VERSION: i16 = 0;

/// Versions this producer can speak: Produce v3 (record batches v2) to v8
/// share one request layout; FindCoordinator v1 and v2 carry the key type;
/// InitProducerId v0 to v4. From Kafka 2.0 to 4.x.
const OURS: [(i16, &str, i16, i16); 3] = [
    (PRODUCE, "Produce", 3, 8),
    (FIND_COORDINATOR, "FindCoordinator", 1, 2),
    (INIT_PRODUCER_ID, "InitProducerId", 0, 4),
];

/// The versions a connection uses, picked from what the broker supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub produce: i16,
    pub find_coordinator: i16,
    pub init_producer_id: i16,
}

impl Default for Versions {
    /// Before negotiation (or when a broker does not answer ApiVersions).
    fn default() -> Self {
        Self {
            produce: PRODUCE_VERSION,
            find_coordinator: FIND_COORDINATOR_VERSION,
            init_producer_id: INIT_PRODUCER_ID_VERSION,
        }
    }
}

/// The broker speaks no version we do of some requests (each named, with
/// the versions on both sides).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the broker does not speak versions we do: {}", .missing.join(", "))]
pub struct UnsupportedVersions {
    pub missing: Vec<String>,
}

/// The newest version of each request both sides support, from the
/// broker's (api key, min, max) list; the error names what does not fit.
pub fn pick_versions(broker: &[VersionRange]) -> Result<Versions, UnsupportedVersions> {
    let mut picked = [0i16; 3];
    let mut missing = Vec::new();
    for (i, (key, name, lo, hi)) in OURS.iter().enumerate() {
        match broker.iter().find(|(k, _, _)| k == key) {
            Some(&(_, min, max)) if min.max(*lo) <= max.min(*hi) => picked[i] = max.min(*hi),
            Some(&(_, min, max)) => {
                missing.push(format!("{name} v{min}-v{max} (we speak v{lo}-v{hi})"))
            }
            None => missing.push(format!("{name} (not offered)")),
        }
    }
    if !missing.is_empty() {
        return Err(UnsupportedVersions { missing });
    }
    Ok(Versions {
        produce: picked[0],
        find_coordinator: picked[1],
        init_producer_id: picked[2],
    })
}

/// (api key, min version, max version) of one request a broker speaks.
pub type VersionRange = (i16, i16, i16);

/// (error code, ranges) of an ApiVersions v0 response.
pub fn read_api_versions(r: &mut Reader<'_>) -> Result<(i16, Vec<VersionRange>), WireError> {
    let error = r.i16()?;
    let mut out = Vec::new();
    for _ in 0..r.count()? {
        out.push((r.i16()?, r.i16()?, r.i16()?));
    }
    Ok((error, out))
}

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
        API_VERSIONS => false, // a v3+ response header is never flexible
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
pub fn init_producer_id(
    b: &mut Vec<u8>,
    version: i16,
    transactional_id: &str,
    txn_timeout_ms: i32,
) {
    if version >= 2 {
        b.compact_nullable_string(Some(transactional_id));
    } else {
        b.nullable_string(Some(transactional_id));
    }
    b.i32(txn_timeout_ms);
    if version >= 3 {
        b.i64(-1); // producer id: none known
        b.i16(-1); // producer epoch
    }
    if version >= 2 {
        b.no_tags();
    }
}

/// (error code, producer id, epoch).
pub fn read_producer_id(r: &mut Reader<'_>, version: i16) -> Result<(i16, i64, i16), WireError> {
    let _throttle = r.i32()?;
    let error = r.i16()?;
    let id = r.i64()?;
    let epoch = r.i16()?;
    if version >= 2 {
        r.skip_tags()?;
    }
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

/// A `Produce` response of `version` (3 to 8).
pub fn read_produce(r: &mut Reader<'_>, version: i16) -> Result<Vec<PartitionResult>, WireError> {
    let mut out = Vec::new();
    for _ in 0..r.count()? {
        let topic = r.string()?.to_string();
        for _ in 0..r.count()? {
            let partition = r.i32()?;
            let error = r.i16()?;
            let base_offset = r.i64()?;
            let _log_append_time = r.i64()?;
            if version >= 5 {
                let _log_start_offset = r.i64()?;
            }
            if version >= 8 {
                for _ in 0..r.count()? {
                    let _batch_index = r.i32()?;
                    let _message = r.nullable_string()?;
                }
                let _error_message = r.nullable_string()?;
            }
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
        31 => "CLUSTER_AUTHORIZATION_FAILED",
        33 => "UNSUPPORTED_SASL_MECHANISM",
        34 => "ILLEGAL_SASL_STATE",
        35 => "UNSUPPORTED_VERSION",
        13 => "NETWORK_EXCEPTION",
        45 => "OUT_OF_ORDER_SEQUENCE_NUMBER",
        46 => "DUPLICATE_SEQUENCE_NUMBER",
        47 => "INVALID_PRODUCER_EPOCH",
        48 => "INVALID_TXN_STATE",
        51 => "CONCURRENT_TRANSACTIONS",
        53 => "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
        56 => "KAFKA_STORAGE_ERROR",
        58 => "SASL_AUTHENTICATION_FAILED",
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

/// What a produce error code means for the batch that got it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// In the log.
    Appended,
    /// The broker says it appended this batch before
    /// (`DUPLICATE_SEQUENCE_NUMBER`): the producer decides whether to trust it.
    Duplicate,
    /// Transient: resend the same batch.
    Retry,
    /// Stop the producer (fenced, out of order sequence, unknown producer,
    /// leader moved, or a definite error). A stopped producer restarts the
    /// pipeline from its context, whose tail read learns what the topic
    /// really holds.
    Stop,
}

/// Classifies a produce error code.
pub fn classify(code: i16) -> Outcome {
    match code {
        0 => Outcome::Appended,
        46 => Outcome::Duplicate,
        // UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, REQUEST_TIMED_OUT,
        // NETWORK_EXCEPTION, NOT_ENOUGH_REPLICAS(_AFTER_APPEND), KAFKA_STORAGE_ERROR
        3 | 5 | 7 | 13 | 19 | 20 | 56 => Outcome::Retry,
        _ => Outcome::Stop,
    }
}

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
        init_producer_id(&mut f, 3, "t", 60_000);
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
        let res = read_produce(&mut r, PRODUCE_VERSION).unwrap();
        assert_eq!(res.len(), 2);
        assert_eq!(
            (res[0].partition, res[0].error, res[0].base_offset),
            (0, 0, 100)
        );
        assert_eq!(error_name(res[1].error), "PRODUCER_FENCED");
        assert!(
            read_produce(&mut Reader::new(&b[..20]), PRODUCE_VERSION).is_err(),
            "truncated"
        );
    }

    #[test]
    fn produce_errors_are_classified() {
        assert_eq!(classify(0), Outcome::Appended);
        assert_eq!(classify(46), Outcome::Duplicate, "duplicate sequence");
        for code in [5, 7, 19, 20] {
            assert_eq!(classify(code), Outcome::Retry, "{}", error_name(code));
        }
        for code in [6, 45, 47, 59, 90, 10, -1] {
            assert_eq!(classify(code), Outcome::Stop, "{}", error_name(code));
        }
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
        assert_eq!(read_producer_id(&mut r, 3), Ok((0, 12, 5)));
    }

    #[test]
    fn versions_are_the_newest_both_sides_speak() {
        // Kafka 4.0: Produce v3-v12, FindCoordinator v0-v6, InitProducerId v0-v5
        let kafka4 = [(0, 3, 12), (10, 0, 6), (18, 0, 4), (22, 0, 5)];
        assert_eq!(
            pick_versions(&kafka4),
            Ok(Versions {
                produce: 8,
                find_coordinator: 2,
                init_producer_id: 4
            })
        );
        // Kafka 2.0: Produce v0-v6, FindCoordinator v0-v2, InitProducerId v0-v1
        let kafka2 = [(0, 0, 6), (10, 0, 2), (22, 0, 1)];
        assert_eq!(
            pick_versions(&kafka2),
            Ok(Versions {
                produce: 6,
                find_coordinator: 2,
                init_producer_id: 1
            })
        );
        let old = [(0, 0, 2), (10, 0, 0)];
        let err = pick_versions(&old).unwrap_err().to_string();
        assert!(err.contains("Produce v0-v2 (we speak v3-v8)"), "{err}");
        assert!(err.contains("InitProducerId (not offered)"), "{err}");
    }

    #[test]
    fn old_init_producer_id_is_not_flexible() {
        let mut f = Vec::new();
        init_producer_id(&mut f, 1, "t", 1);
        assert_eq!(f, [0, 1, b't', 0, 0, 0, 1]);
        let mut b = Vec::new();
        b.i32(0);
        b.i16(0);
        b.i64(12);
        b.i16(5);
        assert_eq!(read_producer_id(&mut Reader::new(&b), 1), Ok((0, 12, 5)));
    }

    #[test]
    fn api_versions_response_lists_ranges() {
        let mut b = Vec::new();
        b.i16(0);
        b.i32(2);
        for (k, lo, hi) in [(0i16, 3i16, 9i16), (22, 0, 4)] {
            b.i16(k);
            b.i16(lo);
            b.i16(hi);
        }
        assert_eq!(
            read_api_versions(&mut Reader::new(&b)),
            Ok((0, vec![(0, 3, 9), (22, 0, 4)]))
        );
    }
}
