//! The Kafka requests the producer sends and what it makes of the answers.
//! Pure.
//!
//! The bytes are the `kafka-protocol` crate's: its message types, generated
//! from Kafka's own JSON schemas, encode every request (with its request
//! header) and decode every response (with its response header), in any
//! version of the schema; a field a version lacks is refused at encoding.
//! Ours is the policy around them:
//!
//! - which requests: learn what a broker speaks (`ApiVersions` v0, on every
//!   connection, which every broker answers), find the transaction
//!   coordinator (`FindCoordinator`), obtain a producer id and bump its epoch
//!   (`InitProducerId`, which fences earlier holders of the same
//!   transactional id) and write record batches (`Produce`, acks=all, not
//!   transactional);
//! - which versions: [`pick_versions`] takes the newest version both sides
//!   speak within the range this producer was tested with (Kafka 2.0 to 4.x,
//!   Tansu);
//! - what an error code means for a batch ([`classify`], [`is_definite`])
//!   and its name in our messages ([`error_name`]).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse, RequestHeader,
    ResponseHeader, TopicName, TransactionalId,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use std::sync::Arc;

/// A message `kafka-protocol` could not encode or a response it could not
/// decode (truncated, malformed, or a version it does not know).
#[derive(Debug, thiserror::Error)]
#[error("{what} v{version}: {source:#}")]
pub struct WireError {
    pub what: &'static str,
    pub version: i16,
    #[source]
    pub source: CodecError,
}

/// The crate's own error (it reports with `anyhow`).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct CodecError(#[from] anyhow::Error);

impl WireError {
    fn of<R: Request>(version: i16) -> impl FnOnce(anyhow::Error) -> Self {
        move |e| WireError {
            what: api_name(R::KEY),
            version,
            source: CodecError(e),
        }
    }
}

/// `ApiVersions` v0: every broker answers it (Kafka 0.10 to 4.x, Tansu).
pub const API_VERSIONS_VERSION: i16 = 0;

/// Versions this producer speaks: Produce v3 (record batches v2) to v8,
/// FindCoordinator v1 and v2 (with the key type, before the batched v4),
/// InitProducerId v0 to v4. From Kafka 2.0 to 4.x.
const OURS: [(i16, &str, i16, i16); 3] = [
    (ProduceRequest::KEY, "Produce", 3, 8),
    (FindCoordinatorRequest::KEY, "FindCoordinator", 1, 2),
    (InitProducerIdRequest::KEY, "InitProducerId", 0, 4),
];

fn api_name(key: i16) -> &'static str {
    match key {
        ApiVersionsRequest::KEY => "ApiVersions",
        kafka_protocol::messages::SaslHandshakeRequest::KEY => "SaslHandshake",
        kafka_protocol::messages::SaslAuthenticateRequest::KEY => "SaslAuthenticate",
        k => OURS.iter().find(|o| o.0 == k).map_or("request", |o| o.1),
    }
}

/// The versions a connection uses, picked from what the broker supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub produce: i16,
    pub find_coordinator: i16,
    pub init_producer_id: i16,
}

impl Default for Versions {
    /// When a broker refuses ApiVersions: the versions Kafka 2.x to 4.x and
    /// Tansu all speak.
    fn default() -> Self {
        Self {
            produce: 7,
            find_coordinator: 1,
            init_producer_id: 3,
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

/// (api key, min version, max version) of one request a broker speaks.
pub type VersionRange = (i16, i16, i16);

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

/// A request frame: size prefix, request header, body.
pub fn encode_request<R: Request>(
    req: &R,
    version: i16,
    correlation: i32,
    client_id: &str,
) -> Result<BytesMut, WireError> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    let header_version = R::header_version(version);
    let size = (|| {
        Ok::<_, anyhow::Error>(header.compute_size(header_version)? + req.compute_size(version)?)
    })()
    .map_err(WireError::of::<R>(version))?;
    let mut frame = BytesMut::with_capacity(4 + size);
    frame.put_i32(size as i32);
    header
        .encode(&mut frame, header_version)
        .and_then(|()| req.encode(&mut frame, version))
        .map_err(WireError::of::<R>(version))?;
    debug_assert_eq!(frame.len(), 4 + size);
    Ok(frame)
}

/// The correlation id of a response to `R` (the header is taken off `body`).
pub fn response_correlation<R: Request>(body: &mut Bytes, version: i16) -> Result<i32, WireError> {
    ResponseHeader::decode(body, R::Response::header_version(version))
        .map(|h| h.correlation_id)
        .map_err(WireError::of::<R>(version))
}

/// The body of a response to `R`, after [`response_correlation`].
pub fn decode_response<R: Request>(
    body: &mut Bytes,
    version: i16,
) -> Result<R::Response, WireError> {
    R::Response::decode(body, version).map_err(WireError::of::<R>(version))
}

/// `ApiVersions` (v0 has no fields).
pub fn api_versions() -> ApiVersionsRequest {
    ApiVersionsRequest::default()
}

/// (error code, ranges) of an `ApiVersions` response.
pub fn read_api_versions(r: &ApiVersionsResponse) -> (i16, Vec<VersionRange>) {
    let ranges = r
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    (r.error_code, ranges)
}

/// `FindCoordinator` for a transactional id.
pub fn find_coordinator(transactional_id: &str) -> FindCoordinatorRequest {
    FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(transactional_id.to_string()))
        .with_key_type(1) // transaction
}

/// Where the coordinator is, or the error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator {
    pub error: i16,
    pub message: Option<String>,
    pub host: String,
    pub port: i32,
}

/// The coordinator of a `FindCoordinator` response: its top-level fields
/// up to v3, its one entry from v4 on.
pub fn read_coordinator(r: &FindCoordinatorResponse) -> Coordinator {
    match r.coordinators.first() {
        Some(c) => Coordinator {
            error: c.error_code,
            message: c.error_message.as_ref().map(|m| m.to_string()),
            host: c.host.to_string(),
            port: c.port,
        },
        None => Coordinator {
            error: r.error_code,
            message: r.error_message.as_ref().map(|m| m.to_string()),
            host: r.host.to_string(),
            port: r.port,
        },
    }
}

/// `InitProducerId` for a transactional id: a new epoch of its producer id
/// (no producer id known: -1 and epoch -1, the request's defaults).
pub fn init_producer_id(transactional_id: &str, txn_timeout_ms: i32) -> InitProducerIdRequest {
    InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_string(
            transactional_id.to_string(),
        ))))
        .with_transaction_timeout_ms(txn_timeout_ms)
}

/// (error code, producer id, epoch).
pub fn read_producer_id(r: &InitProducerIdResponse) -> (i16, i64, i16) {
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

/// One partition's sealed record batch in a `Produce` request.
#[derive(Debug, Clone)]
pub struct PartitionBatch<'a> {
    pub topic: &'a Arc<str>,
    pub partition: i32,
    pub batch: &'a Bytes,
}

/// `Produce` with acks=all, not transactional: one entry per topic (in the
/// order of `batches`, which groups a topic's partitions together).
pub fn produce<'a>(
    timeout_ms: i32,
    batches: impl IntoIterator<Item = PartitionBatch<'a>>,
) -> ProduceRequest {
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for b in batches {
        let part = PartitionProduceData::default()
            .with_index(b.partition)
            .with_records(Some(b.batch.clone()));
        match topics.last_mut() {
            Some(t) if t.name.0.as_str() == &**b.topic => t.partition_data.push(part),
            _ => topics.push(
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(b.topic.to_string())))
                    .with_partition_data(vec![part]),
            ),
        }
    }
    ProduceRequest::default()
        .with_transactional_id(None)
        .with_acks(-1)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(topics)
}

/// One partition's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionResult {
    pub topic: String,
    pub partition: i32,
    pub error: i16,
    pub base_offset: i64,
}

/// Every partition's outcome in a `Produce` response.
pub fn read_produce(r: &ProduceResponse) -> Vec<PartitionResult> {
    r.responses
        .iter()
        .flat_map(|t| {
            t.partition_responses.iter().map(|p| PartitionResult {
                topic: t.name.0.to_string(),
                partition: p.index,
                error: p.error_code,
                base_offset: p.base_offset,
            })
        })
        .collect()
}

/// Kafka's name for an error code, as Kafka's documentation and logs spell
/// it (the crate's `ResponseError` spells them in Rust's case).
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
    /// or a definite error; a moved leader, `NOT_LEADER_OR_FOLLOWER`, is
    /// handled before this by the producer's re-route, see
    /// [`super::reroute`]). A stopped producer restarts the
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
    use bytes::Buf;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::ProducerId as Pid;

    /// Reads a frame back as a broker does: size, header, body.
    fn as_broker<R: Request>(mut frame: BytesMut) -> (RequestHeader, R) {
        let mut b = frame.split().freeze();
        assert_eq!(b.get_i32() as usize, b.len(), "size prefix");
        let h = kafka_protocol::protocol::decode_request_header_from_buffer(&mut b).unwrap();
        let req = R::decode(&mut b, h.request_api_version).unwrap();
        assert!(!b.has_remaining(), "nothing after the body");
        (h, req)
    }

    /// A response as a broker sends it, header included.
    fn reply<R: Request>(resp: &R::Response, version: i16, correlation: i32) -> Bytes {
        let mut b = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(correlation)
            .encode(&mut b, R::Response::header_version(version))
            .unwrap();
        resp.encode(&mut b, version).unwrap();
        b.freeze()
    }

    #[test]
    fn request_frames_carry_our_header_and_fields() {
        // FindCoordinator v1: key type "transaction"
        let f = encode_request(&find_coordinator("mysql-replicator:/t"), 1, 7, "rc").unwrap();
        let (h, req): (_, FindCoordinatorRequest) = as_broker(f);
        assert_eq!((h.request_api_key, h.request_api_version), (10, 1));
        assert_eq!(h.correlation_id, 7);
        assert_eq!(h.client_id.as_deref(), Some("rc"));
        assert_eq!((req.key.as_str(), req.key_type), ("mysql-replicator:/t", 1));
        // InitProducerId, before (v1) and after (v3, flexible) the producer id fields
        for v in [1, 3, 4] {
            let f = encode_request(&init_producer_id("t", 60_000), v, 2, "").unwrap();
            let (h, req): (_, InitProducerIdRequest) = as_broker(f);
            assert_eq!(h.request_api_version, v);
            assert_eq!(
                req.transactional_id.as_ref().map(|t| t.0.as_str()),
                Some("t")
            );
            assert_eq!(req.transaction_timeout_ms, 60_000);
            assert_eq!((req.producer_id, req.producer_epoch), (Pid(-1), -1));
        }
    }

    #[test]
    fn produce_groups_partitions_by_topic_with_acks_all() {
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let (x, y) = (Bytes::from_static(b"x"), Bytes::from_static(b"yy"));
        let batches = [
            PartitionBatch {
                topic: &a,
                partition: 0,
                batch: &x,
            },
            PartitionBatch {
                topic: &a,
                partition: 2,
                batch: &y,
            },
            PartitionBatch {
                topic: &b,
                partition: 1,
                batch: &x,
            },
        ];
        for v in [3, 7, 8] {
            let f = encode_request(&produce(1_500, batches.clone()), v, 1, "rc").unwrap();
            let (_, req): (_, ProduceRequest) = as_broker(f);
            assert_eq!((req.acks, req.timeout_ms), (-1, 1_500));
            assert_eq!(req.transactional_id, None, "not transactional");
            let got: Vec<(String, i32, Bytes)> = req
                .topic_data
                .iter()
                .flat_map(|t| {
                    t.partition_data
                        .iter()
                        .map(|p| (t.name.0.to_string(), p.index, p.records.clone().unwrap()))
                })
                .collect();
            assert_eq!(
                got,
                [
                    ("a".into(), 0, x.clone()),
                    ("a".into(), 2, y.clone()),
                    ("b".into(), 1, x.clone())
                ],
                "v{v}"
            );
            assert_eq!(req.topic_data.len(), 2, "one entry per topic");
        }
    }

    #[test]
    fn produce_response_is_read_per_partition_after_its_correlation() {
        let resp = ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
            .with_name(TopicName(StrBytes::from_static_str("topic")))
            .with_partition_responses(vec![
                PartitionProduceResponse::default()
                    .with_index(0)
                    .with_base_offset(100),
                PartitionProduceResponse::default()
                    .with_index(3)
                    .with_error_code(PRODUCER_FENCED)
                    .with_base_offset(-1),
            ])]);
        for v in [3, 8] {
            let mut body = reply::<ProduceRequest>(&resp, v, 9);
            assert_eq!(
                response_correlation::<ProduceRequest>(&mut body, v).unwrap(),
                9
            );
            let res = read_produce(&decode_response::<ProduceRequest>(&mut body, v).unwrap());
            assert_eq!(res.len(), 2);
            assert_eq!(
                (
                    res[0].topic.as_str(),
                    res[0].partition,
                    res[0].error,
                    res[0].base_offset
                ),
                ("topic", 0, 0, 100)
            );
            assert_eq!(error_name(res[1].error), "PRODUCER_FENCED");
        }
        let body = reply::<ProduceRequest>(&resp, 8, 9);
        let mut short = body.slice(..20);
        response_correlation::<ProduceRequest>(&mut short, 8).unwrap();
        let err = decode_response::<ProduceRequest>(&mut short, 8).unwrap_err();
        assert!(err.to_string().starts_with("Produce v8: "), "{err}");
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
    fn producer_id_and_coordinator_are_read_in_old_and_flexible_versions() {
        let resp = InitProducerIdResponse::default()
            .with_producer_id(Pid(12))
            .with_producer_epoch(5);
        for v in [1, 3] {
            let mut body = reply::<InitProducerIdRequest>(&resp, v, 4);
            assert_eq!(
                response_correlation::<InitProducerIdRequest>(&mut body, v).unwrap(),
                4
            );
            let r = decode_response::<InitProducerIdRequest>(&mut body, v).unwrap();
            assert_eq!(read_producer_id(&r), (0, 12, 5), "v{v}");
        }
        let resp = FindCoordinatorResponse::default()
            .with_host(StrBytes::from_static_str("kafka-2"))
            .with_port(9092);
        let mut body = reply::<FindCoordinatorRequest>(&resp, 2, 1);
        response_correlation::<FindCoordinatorRequest>(&mut body, 2).unwrap();
        let c = read_coordinator(&decode_response::<FindCoordinatorRequest>(&mut body, 2).unwrap());
        assert_eq!((c.error, c.host.as_str(), c.port), (0, "kafka-2", 9092));
        let refused = FindCoordinatorResponse::default()
            .with_error_code(15)
            .with_error_message(Some(StrBytes::from_static_str("loading")));
        let c = read_coordinator(&refused);
        assert_eq!((c.error, c.message.as_deref()), (15, Some("loading")));
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
    fn api_versions_v0_lists_ranges() {
        let resp = ApiVersionsResponse::default().with_api_keys(vec![
            ApiVersion::default()
                .with_api_key(0)
                .with_min_version(3)
                .with_max_version(9),
            ApiVersion::default()
                .with_api_key(22)
                .with_min_version(0)
                .with_max_version(4),
        ]);
        let mut body = reply::<ApiVersionsRequest>(&resp, API_VERSIONS_VERSION, 1);
        response_correlation::<ApiVersionsRequest>(&mut body, API_VERSIONS_VERSION).unwrap();
        let r = decode_response::<ApiVersionsRequest>(&mut body, API_VERSIONS_VERSION).unwrap();
        assert_eq!(read_api_versions(&r), (0, vec![(0, 3, 9), (22, 0, 4)]));
        let f = encode_request(&api_versions(), API_VERSIONS_VERSION, 1, "rc").unwrap();
        assert_eq!(f.len(), 4 + 2 + 2 + 4 + 2 + 2, "v0 has an empty body");
    }
}
