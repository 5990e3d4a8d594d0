//! A partition's batch from open to sealed: the open batch with the
//! transactions of its records ([`Pending`]), and the sealed one
//! ([`Sealed`]) that every attempt sends, on whichever link. Pure.
//!
//! Sealing stamps the producer id, epoch and base sequence into the batch
//! and compresses it ([`super::batch`], [`super::compress`]) once: every
//! resend carries the same bytes, also to a new leader, so the broker can
//! tell a resend of what it already appended (the original offset) from a
//! new batch. It runs outside the link's queue lock, since compression
//! takes time.

use super::batch::{BatchBuilder, ProducerId};
use super::error::DeliveryError;
use super::reroute::{OfPartition, Tp};
use replicator_common::producer::Compression;
use std::time::Instant;

/// One record as [`super::Producer::send`] takes it.
pub struct Record<'a> {
    /// Creation time, ms since the epoch.
    pub ts: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The transaction it belongs to (acknowledged to the tracker).
    pub txn: u64,
    /// What it adds to a batch ([`BatchBuilder::record_size`]).
    pub size: usize,
}

/// One partition's open batch.
pub struct Pending {
    pub batch: BatchBuilder,
    /// Run-length transaction ids of the records, in order.
    pub txns: Vec<(u64, u64)>,
    /// The sum of its records' [`Record::size`]: what the bounds on
    /// unacknowledged bytes were charged for them, and so exactly what they
    /// are settled with (the size a record really takes can be smaller).
    counted: usize,
}

impl Pending {
    pub fn new(capacity: usize) -> Self {
        Self {
            batch: BatchBuilder::with_capacity(capacity),
            txns: Vec::new(),
            counted: 0,
        }
    }

    /// Appends one record.
    pub fn push(&mut self, r: &Record) {
        self.batch.push(r.ts, r.key, r.value, r.headers);
        self.counted += r.size;
        match self.txns.last_mut() {
            Some((t, n)) if *t == r.txn => *n += 1,
            _ => self.txns.push((r.txn, 1)),
        }
    }

    /// What its records were charged against the bounds ([`Pending::counted`]).
    pub fn counted(&self) -> usize {
        self.counted
    }
}

/// One partition's batch, sealed with its producer id, epoch and sequence
/// once: every resend carries the same bytes, also to a new leader, so the
/// broker can tell a resend of what it already appended (the original
/// offset) from a new batch.
pub struct Sealed {
    pub tp: Tp,
    pub bytes: bytes::Bytes,
    pub txns: Vec<(u64, u64)>,
    /// Records, and what they were charged against the bounds (to settle
    /// them with the same).
    pub msgs: usize,
    pub counted: usize,
    /// Failed attempts so far, on any link.
    pub attempts: u32,
    /// When it first went on the wire (the delivery timeout counts from it).
    pub first_sent: Option<Instant>,
    /// The broker it is sent to refused a connection during its resends: a
    /// `DUPLICATE_SEQUENCE_NUMBER` answer from it is not taken on trust
    /// (cleared when the batch is handed over to a new leader).
    pub restarted: bool,
}

impl OfPartition for Sealed {
    fn tp(&self) -> &Tp {
        &self.tp
    }
}

/// A batch taken from a partition's queue for the next request.
pub enum Taken {
    /// Handed over from another link: sealed there.
    Sealed(Sealed),
    /// To seal with base sequence `seq`.
    Open { tp: Tp, seq: i32, pending: Pending },
}

/// Sealing failed: every batch taken is dropped.
pub struct SealFailed {
    /// The first batch that could not be compressed.
    pub error: DeliveryError,
    /// Records, and what they were charged against the bounds, of every batch taken
    /// (to settle the bounds).
    pub msgs: usize,
    pub counted: usize,
}

/// Seals the open batches of `taken` with `pid` and `codec`; batches
/// sealed before (handed over) pass unchanged.
pub fn seal(
    taken: Vec<Taken>,
    pid: ProducerId,
    codec: Compression,
) -> Result<Vec<Sealed>, Box<SealFailed>> {
    let mut out = Vec::with_capacity(taken.len());
    let mut failed = None;
    let (mut failed_msgs, mut failed_counted) = (0, 0);
    for t in taken {
        match t {
            Taken::Sealed(s) => out.push(s),
            Taken::Open { tp, seq, pending } => {
                let msgs = pending.batch.count() as usize;
                let counted = pending.counted();
                match pending.batch.seal(pid, seq, codec) {
                    Ok(bytes) => out.push(Sealed {
                        tp,
                        bytes,
                        txns: pending.txns,
                        msgs,
                        counted,
                        attempts: 0,
                        first_sent: None,
                        restarted: false,
                    }),
                    Err(source) => {
                        failed_msgs += msgs;
                        failed_counted += counted;
                        failed.get_or_insert(DeliveryError::Compress {
                            codec: codec.name(),
                            source,
                        });
                    }
                }
            }
        }
    }
    match failed {
        Some(error) => Err(Box::new(SealFailed {
            error,
            msgs: failed_msgs + out.iter().map(|s| s.msgs).sum::<usize>(),
            counted: failed_counted + out.iter().map(|s| s.counted).sum::<usize>(),
        })),
        None => Ok(out),
    }
}
