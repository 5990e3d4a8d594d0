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
//! Pure parts:
//! - [`batch`]: one partition's record batch v2: size bound, producer id,
//!   epoch and sequence, CRC-32C.
//! - [`compress`]: the `compression.type` codecs, framed as Kafka's Java
//!   client writes them.
//! - [`protocol`]: which requests and versions, built as the crate's
//!   messages and framed; what an error code means.
//! - [`sasl`]: the PLAIN and SCRAM mechanisms.
//! - [`seal`]: a partition's open batch and its sealing, once, with its
//!   producer id, epoch and sequence.
//! - [`queue`]: one link's per-partition queue of batches, with the next
//!   base sequence of each partition.
//! - [`answer`]: what a `Produce` answer means for each batch (acknowledge,
//!   resend, ask who leads, stop).
//! - [`retry`]: the delivery budget: back-off, and when to give up.
//! - [`reroute`]: which unacknowledged batches follow a moved partition
//!   leader, in what order, with which sequence numbers.
//! - [`error`]: why the producer could not start, send, deliver or flush.
//!
//! I/O and orchestration:
//! - [`tls`]: rustls client configuration and handshake.
//! - [`conn`]: one broker connection (TCP, TLS, SASL), request/response with a timeout.
//! - [`broker`]: a connection with the versions both sides speak, and one
//!   attempt at a `Produce` request (self-fence last).
//! - [`fence`]: the producer id and new epoch that fence earlier writers
//!   (`InitProducerId`).
//! - [`leaders`]: who leads a topic's partitions now, from the sink's
//!   metadata, on a blocking thread.
//! - [`shared`]: what the producer and its link tasks share: bounds, stop,
//!   lease guard, the router of partitions to links.
//! - [`link`]: one task per broker: batching, resends within the budget,
//!   hand-overs to a new leader.
//! - [`producer`]: the [`Producer`] the sink calls: start, send, flush,
//!   purge, the partitions that moved.

mod answer;
pub mod batch;
mod broker;
pub mod compress;
pub mod conn;
pub mod error;
mod fence;
mod leaders;
mod link;
pub mod producer;
pub mod protocol;
mod queue;
pub mod reroute;
mod retry;
pub mod sasl;
mod seal;
mod shared;
pub mod tls;

pub use error::{DeliveryError, FlushError, ProducerError};
pub use fence::transactional_id;
pub use leaders::{LeaderLookup, LookupError};
pub use producer::Producer;
pub use shared::{no_guard, WireGuard};
