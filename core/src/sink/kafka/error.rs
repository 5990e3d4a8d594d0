//! Why the producer could not start, send, deliver or flush: one error type
//! per stage, each carrying the one below it as its source.
//!
//! - [`ProducerError`]: starting (connecting, `InitProducerId`) and
//!   accepting a record ([`super::Producer::send`]).
//! - [`AttemptError`]: one attempt at a `Produce` request
//!   ([`super::broker`]).
//! - [`DeliveryError`]: records that will not be delivered (the first one
//!   stops the producer and fails the tracker).
//! - [`FlushError`]: a flush that did not end with everything acknowledged.

use super::conn::ConnError;
use super::protocol::{self, error_name};
use super::reroute::Tp;
use std::sync::Arc;

/// Why the producer could not start or accept a record.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    #[error(transparent)]
    Conn(#[from] ConnError),
    #[error("{what}: Kafka error {name} ({code})")]
    Broker {
        what: String,
        code: i16,
        name: &'static str,
    },
    #[error("no reachable broker in `{0}`")]
    NoBroker(String),
    #[error("a record of {size} bytes does not fit in a batch (batch.size {max})")]
    TooLarge { size: usize, max: usize },
    /// The producer stopped at a delivery failure (none when it was purged).
    #[error("producer stopped: {}", .0.as_ref().map_or_else(|| "purged".to_string(), ToString::to_string))]
    Stopped(Option<Arc<DeliveryError>>),
    #[error("Kafka at {addr}: {source}")]
    Unsupported {
        addr: String,
        #[source]
        source: protocol::UnsupportedVersions,
    },
}

/// Why one attempt at a `Produce` request failed.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error(transparent)]
    Connect(#[from] ProducerError),
    #[error(transparent)]
    Conn(#[from] ConnError),
    #[error("producing to {topic}/{partition}: Kafka error {name} ({code}){hint}")]
    Broker {
        topic: Arc<str>,
        partition: i32,
        code: i16,
        name: &'static str,
        /// Said of a fenced epoch: who fenced it.
        hint: &'static str,
    },
    #[error("{0} after the broker restarted: not taken on trust")]
    AfterRestart(Box<AttemptError>),
    #[error("lease expired: nothing more goes on the wire (self-fenced)")]
    LeaseExpired,
}

/// Why records were not delivered; the first one stops the producer.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("compressing a batch with {codec}: {source}")]
    Compress {
        codec: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{source} (gave up after {attempts} attempts in {elapsed_ms} ms)")]
    GaveUp {
        #[source]
        source: AttemptError,
        attempts: u32,
        elapsed_ms: u128,
    },
    #[error(transparent)]
    Stopped(AttemptError),
}

/// Why a flush did not end with everything acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    /// The first delivery failure, as the tracker recorded it.
    #[error(transparent)]
    Failed(Arc<DeliveryError>),
    #[error("{in_flight} messages still unacknowledged after {waited_ms} ms")]
    TimedOut { in_flight: usize, waited_ms: u128 },
}

impl ProducerError {
    /// True when retrying cannot help (the task must stop).
    pub fn is_definite(&self) -> bool {
        match self {
            ProducerError::Broker { code, .. } => protocol::is_definite(*code),
            ProducerError::Conn(c) => c.is_definite(),
            ProducerError::TooLarge { .. } | ProducerError::Unsupported { .. } => true,
            _ => false,
        }
    }

    pub(super) fn broker(what: impl Into<String>, code: i16) -> Self {
        ProducerError::Broker {
            what: what.into(),
            code,
            name: error_name(code),
        }
    }
}

impl AttemptError {
    /// The broker's answer `code` for the batch of partition `tp`.
    pub(super) fn produce(tp: &Tp, code: i16) -> Self {
        AttemptError::Broker {
            topic: tp.0.clone(),
            partition: tp.1,
            code,
            name: error_name(code),
            hint: if matches!(
                code,
                protocol::PRODUCER_FENCED | protocol::INVALID_PRODUCER_EPOCH
            ) {
                " (a newer writer of this task started: this one is fenced)"
            } else {
                ""
            },
        }
    }
}
