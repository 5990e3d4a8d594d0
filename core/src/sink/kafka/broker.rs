//! One broker, one request at a time: a connection with the request
//! versions both sides speak, and one attempt at a `Produce` request on it.
//!
//! Flow in: a link's batches, sealed. Flow out: the batches the broker
//! took, acknowledged to the tracker; the others stay with the caller with
//! the reason ([`Failure`]) to resend them or stop.
//!
//! A request that failed on an established connection is resent first on
//! a new connection to the same broker (a restarted broker is back at
//! once): that failure asks no metadata. Only a connection that cannot be
//! made, or a leader error in the answer, makes the caller ask who leads
//! the partitions now ([`super::leaders`]). A refused connection marks the
//! batches `restarted` (see [`super::answer`]).
//!
//! Self-fence: the writer's lease ([`super::WireGuard`]) is asked last,
//! after the request is encoded and right before it goes on the wire; once
//! it says no, nothing more is sent.
//!
//! The requests and responses are the `kafka-protocol` crate's
//! ([`super::protocol`]); the connection is [`super::conn`].

use super::answer::{self, topics_of, Failure};
use super::conn::{Client, Conn, ConnError};
use super::error::{AttemptError, ProducerError};
use super::protocol::{self, Versions};
use super::seal::Sealed;
use super::shared::{Link, Shared};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Connects and learns which versions to use with this broker
/// (`ApiVersions`; a broker that refuses v0 gets our defaults).
pub async fn connect(addr: &str, client: &Client) -> Result<(Conn, Versions), ProducerError> {
    let mut conn = Conn::connect(addr, client).await?;
    let answer = conn
        .call(&protocol::api_versions(), protocol::API_VERSIONS_VERSION)
        .await?;
    let (error, ranges) = protocol::read_api_versions(&answer);
    if error != 0 {
        tracing::debug!(
            broker = addr,
            code = error,
            "ApiVersions refused; using defaults"
        );
        return Ok((conn, Versions::default()));
    }
    let versions =
        protocol::pick_versions(&ranges).map_err(|source| ProducerError::Unsupported {
            addr: addr.to_string(),
            source,
        })?;
    tracing::debug!(broker = addr, ?versions, "negotiated request versions");
    Ok((conn, versions))
}

/// Sends `batches` once; removes (and acknowledges) those the broker took.
pub async fn attempt(
    addr: &Arc<str>,
    link: &Link,
    conn: &mut Option<(Conn, Versions)>,
    batches: &mut Vec<Sealed>,
    shared: &Shared,
) -> Result<(), Failure> {
    if conn.is_none() {
        match connect(addr, &shared.client).await {
            Ok(c) => *conn = Some(c),
            Err(e @ ProducerError::Unsupported { .. }) => return Err(Failure::Stop(e.into())),
            Err(e) => {
                if let ProducerError::Conn(ConnError::Connect { source, .. }) = &e {
                    if source.kind() == std::io::ErrorKind::ConnectionRefused {
                        for b in batches.iter_mut() {
                            b.restarted = true;
                        }
                    }
                }
                return Err(Failure::Retry {
                    error: e.into(),
                    refresh: topics_of(batches),
                });
            }
        }
    }
    let (c, v) = conn.as_mut().expect("connected");
    let version = v.produce;
    // `batches` is sorted by topic: one entry per topic.
    let request = protocol::produce(
        shared.timeout.as_millis() as i32,
        batches.iter().map(|b| protocol::PartitionBatch {
            topic: &b.tp.0,
            partition: b.tp.1,
            batch: &b.bytes,
        }),
    );
    let frame = c
        .encode(&request, version)
        .map_err(|e| Failure::Stop(e.into()))?;
    // Self-fence: the last check before the request goes on the wire. A
    // process frozen with this request queued finds its lease expired here.
    if !(shared.guard)() {
        shared.lease_expired.store(true, Ordering::Release);
        return Err(Failure::Stop(AttemptError::LeaseExpired));
    }
    // A request that failed on an established connection is first resent
    // on a new connection to the same broker (a restarted broker is back at
    // once); only a connection that cannot be made asks the metadata.
    let response = c.exchange(frame).await.map_err(|e| Failure::Retry {
        error: e.into(),
        refresh: Vec::new(),
    })?;
    let (acked, failure) = answer::judge(&protocol::read_produce(&response), batches);
    for b in &acked {
        shared.ack(b);
    }
    if !acked.is_empty() && !link.acked.swap(true, Ordering::AcqRel) {
        tracing::info!(broker = %addr, "kafka broker acknowledges our requests");
    }
    failure.map_or(Ok(()), Err)
}
