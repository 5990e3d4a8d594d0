//! What the producer and its link tasks share: the producer id, the
//! bounds on what is unacknowledged, the stop flag, the lease guard, and
//! the router that says which link sends each partition.
//!
//! Flow in: records accepted ([`super::Producer::send`] counts them),
//! acknowledgements and drops (settled here). Flow out: the tracker's
//! failure once the producer stops ([`Shared::stop`]). Nothing here does
//! I/O; the link tasks ([`super::link`]) do.

use super::batch::ProducerId;
use super::conn::Client;
use super::error::DeliveryError;
use super::leaders::LeaderLookup;
use super::queue::Queue;
use super::reroute::Tp;
use super::seal::Sealed;
use crate::sink::tracker::Tracker;
use replicator_common::producer::ProducerSettings;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// Asked right before each request goes on the wire: false stops the
/// producer before it sends (the writer's lease expired).
///
/// Self-fence: once the lease expired the producer sends nothing more, so
/// a process that resumes from a freeze does not put what it had queued on
/// the wire ([`super::broker`] asks it last before each request).
pub type WireGuard = Arc<dyn Fn() -> bool + Send + Sync>;

/// A guard that always allows sending (tests, tools without a lease).
pub fn no_guard() -> WireGuard {
    Arc::new(|| true)
}

/// One broker's link: its queue, and the bell its task waits on.
#[derive(Default)]
pub struct Link {
    pub queue: Mutex<Queue>,
    pub wake: Notify,
    /// The first acknowledgement from this broker since the link started,
    /// or since partitions were handed over to it, was logged.
    pub acked: AtomicBool,
}

/// Which link sends each partition; one lock, so that a record cannot
/// slip onto a partition's old link while the partition moves.
#[derive(Default)]
pub struct Router {
    pub links: HashMap<Arc<str>, Arc<Link>>,
    /// Where each partition's records go (set by its first record, changed
    /// by a hand-over).
    pub routes: HashMap<Tp, Arc<str>>,
    /// Hand-overs the sink has not yet learned.
    pub moves: Vec<(Tp, Arc<str>)>,
    /// The link tasks; `None` once the producer is dropped.
    pub tasks: Option<JoinSet<()>>,
}

pub struct Shared {
    pub pid: ProducerId,
    pub tracker: Arc<Tracker>,
    pub settings: ProducerSettings,
    pub client: Client,
    pub timeout: Duration,
    pub unacked_msgs: AtomicUsize,
    pub unacked_bytes: AtomicUsize,
    /// A flush waits: send without lingering.
    pub urgent: AtomicBool,
    pub stopped: AtomicBool,
    pub guard: WireGuard,
    /// The guard refused a request.
    pub lease_expired: AtomicBool,
    pub router: Mutex<Router>,
    /// `router.moves` is not empty.
    pub moved: AtomicBool,
    pub lookup: OnceLock<Arc<dyn LeaderLookup>>,
}

impl Shared {
    pub fn new(
        pid: ProducerId,
        settings: ProducerSettings,
        client: Client,
        tracker: Arc<Tracker>,
        guard: WireGuard,
    ) -> Self {
        Self {
            pid,
            tracker,
            settings,
            timeout: client.timeout,
            client,
            unacked_msgs: AtomicUsize::new(0),
            unacked_bytes: AtomicUsize::new(0),
            urgent: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            guard,
            lease_expired: AtomicBool::new(false),
            router: Mutex::new(Router {
                tasks: Some(JoinSet::new()),
                ..Router::default()
            }),
            moved: AtomicBool::new(false),
            lookup: OnceLock::new(),
        }
    }

    /// Records acknowledged or dropped: they no longer count against the
    /// unacknowledged bounds.
    pub fn settle(&self, msgs: usize, bytes: usize) {
        self.unacked_msgs.fetch_sub(msgs, Ordering::AcqRel);
        self.unacked_bytes.fetch_sub(bytes, Ordering::AcqRel);
    }

    pub fn settle_sealed(&self, batches: &[Sealed]) {
        for b in batches {
            self.settle(b.msgs, b.counted);
        }
    }

    /// Acknowledges the records of `b` to the tracker.
    pub fn ack(&self, b: &Sealed) {
        for &(txn, n) in &b.txns {
            self.tracker.ack_many(txn, n);
        }
        self.settle(b.msgs, b.counted);
    }

    /// Stops the producer: fails the tracker with `reason`.
    pub fn stop(&self, reason: DeliveryError) {
        if !self.stopped.swap(true, Ordering::AcqRel) {
            tracing::warn!(reason = %reason, "kafka producer stopped");
        }
        self.tracker.fail(0, reason);
    }

    pub fn links(&self) -> Vec<Arc<Link>> {
        let r = self.router.lock().expect("router lock");
        r.links.values().cloned().collect()
    }

    /// Drops everything `link` has queued; settles its records.
    pub fn drop_queued(&self, link: &Link) {
        let q = std::mem::take(&mut *link.queue.lock().expect("link queue lock"));
        let (msgs, counted) = q.unacked();
        self.settle(msgs, counted);
    }
}
