//! Fencing at the broker: the producer id and the new epoch that fence
//! every earlier writer of the task.
//!
//! On start the producer asks the task's transaction coordinator for the
//! producer id of transactional id `mysql-replicator:<task znode>`
//! (`InitProducerId`). Every call returns the same id with a higher epoch.
//! Tansu then refuses older epochs everywhere (`PRODUCER_FENCED`); Apache
//! Kafka refuses them on a partition only once a batch of the new epoch
//! landed there (`INVALID_PRODUCER_EPOCH`), which is why the sink writes a
//! fence record to every partition before it reads a tail
//! ([`crate::sink::takeover`]). Batches are idempotent, not transactional:
//! they are visible at once and need no commit.
//!
//! A coordinator that is loading, not available or not the coordinator
//! (or a transaction still settling) is asked again for up to 10 s.

use super::batch::ProducerId;
use super::broker::connect;
use super::conn::Client;
use super::error::ProducerError;
use super::protocol;
use std::time::{Duration, Instant};

/// How long to keep asking a coordinator that is not ready.
const COORDINATOR_PATIENCE: Duration = Duration::from_secs(10);

/// The transactional id whose epochs fence the writers of a task: its
/// znode path (`task_path`), unique per deployment and task even when
/// several deployments share a Kafka cluster.
pub fn transactional_id(task_path: &str) -> String {
    format!("mysql-replicator:{task_path}")
}

/// `COORDINATOR_LOAD_IN_PROGRESS`, `COORDINATOR_NOT_AVAILABLE`,
/// `NOT_COORDINATOR`, `CONCURRENT_TRANSACTIONS`: ask again.
fn retriable_coordinator_error(code: i16) -> bool {
    matches!(code, 14..=16 | 51)
}

/// Finds the coordinator of `transactional_id` through the broker at
/// `bootstrap` and takes the next epoch of its producer id.
pub async fn init_producer_id(
    bootstrap: &str,
    transactional_id: &str,
    client: &Client,
) -> Result<ProducerId, ProducerError> {
    let deadline = Instant::now() + COORDINATOR_PATIENCE;
    let (mut conn, v) = connect(bootstrap, client).await?;
    loop {
        let find = protocol::find_coordinator(transactional_id);
        let c = protocol::read_coordinator(&conn.call(&find, v.find_coordinator).await?);
        if c.error != 0 {
            if retriable_coordinator_error(c.error) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            return Err(ProducerError::broker(
                format!("finding the coordinator of {transactional_id}"),
                c.error,
            ));
        }
        let addr = format!("{}:{}", c.host, c.port);
        let mut coord = if addr == conn.addr() {
            None
        } else {
            Some(connect(&addr, client).await?)
        };
        let (cc, cv) = match coord.as_mut() {
            Some((c, cv)) => (c, *cv),
            None => (&mut conn, v),
        };
        let init = protocol::init_producer_id(transactional_id, 60_000);
        let (error, id, epoch) =
            protocol::read_producer_id(&cc.call(&init, cv.init_producer_id).await?);
        match error {
            0 => return Ok(ProducerId { id, epoch }),
            e if retriable_coordinator_error(e) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            e => {
                return Err(ProducerError::broker(
                    format!("getting a producer id for {transactional_id}"),
                    e,
                ))
            }
        }
    }
}
