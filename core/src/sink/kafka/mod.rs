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
//! # Layout
//! - [`wire`]: integers, strings, varints (pure).
//! - [`batch`]: record batch v2 builder with CRC-32C (pure).
//! - [`compress`]: the `compression.type` codecs, framed as Kafka's Java
//!   client writes them (pure).
//! - [`protocol`]: the ApiVersions, FindCoordinator, InitProducerId and
//!   Produce messages, version choice, error classes (pure).
//! - [`tls`]: rustls client configuration and handshake.
//! - [`sasl`]: SaslHandshake/SaslAuthenticate, PLAIN and SCRAM (pure).
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
pub mod wire;

pub use producer::{
    no_guard, transactional_id, DeliveryError, FlushError, LeaderLookup, LookupError, Producer,
    ProducerError, WireGuard,
};
