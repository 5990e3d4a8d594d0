//! A small Kafka producer of our own, speaking the wire protocol.
//!
//! librdkafka cannot be fenced from outside: a process frozen while it held
//! queued messages sends them when it resumes, before anything in the
//! process can stop it. This producer takes a producer id epoch from the
//! broker for the task (`InitProducerId` on transactional id
//! `mysql-replicator:<task znode>`), so the broker itself refuses whatever an
//! earlier writer of the task still sends (on Apache Kafka per partition,
//! once the new epoch landed there: see [`crate::sink::takeover`]), and it
//! asks the writer's lease before each request goes on the wire.
//!
//! # Which crate does what
//! The wire format is the `kafka-protocol` crate's (generated from Kafka's
//! own message schemas): every request and response we send and read
//! (ApiVersions, FindCoordinator, InitProducerId, Produce, SaslHandshake,
//! SaslAuthenticate) with their headers. The record batch inside a Produce
//! request is ours ([`batch`], with the codecs of [`compress`]): the crate's
//! record batch encoder cost a fifth to a third of the end-to-end rate
//! (measured, see [`batch`]); the tests decode our batches with the crate's
//! decoder. TLS is rustls'; the SCRAM primitives are RustCrypto's. Ours is
//! also what no crate does: batching, fencing and self-fencing, resends
//! with the same sequence numbers, acknowledgement tracking, the choice of
//! request versions, the meaning of error codes, the SCRAM exchange.
//!
//! # Layout
//! - [`batch`]: one partition's record batch v2: size bound, producer id,
//!   epoch and sequence, CRC-32C (pure).
//! - [`compress`]: the `compression.type` codecs, framed as Kafka's Java
//!   client writes them (pure).
//! - [`protocol`]: which requests and versions, built as the crate's
//!   messages and framed; what an error code means (pure).
//! - [`tls`]: rustls client configuration and handshake.
//! - [`sasl`]: the PLAIN and SCRAM mechanisms (pure).
//! - [`conn`]: one broker connection (TCP, TLS, SASL), request/response with a timeout.
//! - [`reroute`]: which unacknowledged batches follow a moved partition
//!   leader, in what order, with which sequence numbers (pure).
//! - [`producer`]: batching, fencing, resends and hand-overs to a new
//!   leader, acknowledgements to the tracker.

pub mod batch;
pub mod compress;
pub mod conn;
pub mod producer;
pub mod protocol;
pub mod reroute;
pub mod sasl;
pub mod tls;

pub use producer::{
    no_guard, transactional_id, DeliveryError, FlushError, LeaderLookup, LookupError, Producer,
    ProducerError, WireGuard,
};
