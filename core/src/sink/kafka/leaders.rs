//! Who leads a topic's partitions now, asked of the cluster's metadata
//! after a leader error or a connection that could not be made.
//!
//! Flow in: the topics of a failed request's batches. Flow out: the leader
//! address of each partition of the topics the metadata knows. The lookup
//! itself is the sink's ([`LeaderLookup`]: rdkafka's metadata request,
//! blocking); here it runs on a blocking thread, bounded by the request
//! timeout (plus a second for the thread). A topic whose lookup fails,
//! times out or finds no leader is left out: its batches are resent where
//! they were ([`super::reroute`] decides what moves).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Who leads each partition of a topic now, from the cluster's metadata:
/// asked after a leader error or a failed connection.
pub trait LeaderLookup: Send + Sync {
    /// Blocking (the producer runs it on a blocking thread), bounded by
    /// `timeout`: the leader address of each partition of `topic`, or
    /// `None` when the metadata does not know the topic or a partition has
    /// no leader.
    fn leaders(&self, topic: &str, timeout: Duration)
        -> Result<Option<Vec<Arc<str>>>, LookupError>;
}

/// Why a metadata lookup gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("metadata of {topic}: {source}")]
    Kafka {
        topic: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("metadata of {topic}: no answer within {waited_ms} ms")]
    TimedOut { topic: String, waited_ms: u128 },
    #[error("metadata of {topic}: the lookup task failed: {source}")]
    Task {
        topic: String,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("the metadata client is closed")]
    Closed,
}

/// The partition leaders of each of `topics` that the metadata names;
/// failures are logged and leave their topic out.
pub async fn leaders_of(
    lookup: &Arc<dyn LeaderLookup>,
    topics: Vec<Arc<str>>,
    timeout: Duration,
) -> HashMap<Arc<str>, Vec<Arc<str>>> {
    let mut found = HashMap::new();
    for topic in topics {
        match lookup_leaders(lookup.clone(), topic.clone(), timeout).await {
            Ok(Some(leaders)) => {
                found.insert(topic, leaders);
            }
            Ok(None) => {
                tracing::debug!(topic = %topic, "no leader in the metadata; resending to the same broker")
            }
            Err(e) => {
                tracing::warn!(topic = %topic, error = %e, "kafka metadata refresh failed; resending to the same broker")
            }
        }
    }
    found
}

/// The leaders of `topic`, looked up on a blocking thread; waits at most
/// `timeout` (plus a second for the thread), as the lookup itself does.
async fn lookup_leaders(
    lookup: Arc<dyn LeaderLookup>,
    topic: Arc<str>,
    timeout: Duration,
) -> Result<Option<Vec<Arc<str>>>, LookupError> {
    let t = topic.clone();
    let started = Instant::now();
    let task = tokio::task::spawn_blocking(move || lookup.leaders(&t, timeout));
    match tokio::time::timeout(timeout + Duration::from_secs(1), task).await {
        Ok(Ok(r)) => r,
        Ok(Err(source)) => Err(LookupError::Task {
            topic: topic.to_string(),
            source,
        }),
        Err(_) => Err(LookupError::TimedOut {
            topic: topic.to_string(),
            waited_ms: started.elapsed().as_millis(),
        }),
    }
}
