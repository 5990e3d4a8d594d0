//! # replicator-common
//!
//! Types and helpers shared by every mysql-replicator process (see
//! `docs/design.md`).
//!
//! # Layout
//! - [`backoff`]: capped, jittered retry delays.
//! - [`election`]: lowest-sequence decisions over `<host>-<seq>` children (pure).
//! - [`candidacy`]: the ZooKeeper round of that election (register, list,
//!   watch the predecessor), used by Core task instances and Monitor leaders.
//! - [`names`]: task/group/host name validation (`[A-Za-z0-9_.-]{1,128}`).
//! - [`paths`]: the ZooKeeper layout of docs/design.md §3 as functions.
//! - [`position`]: binlog positions and GTIDs, with ordering that refuses to
//!   compare positions of different streams.
//! - [`gtid`]: one GTID and one GTID set type for both flavours (MariaDB
//!   `domain-server-seq`, MySQL `uuid:interval`), serialized as server text.
//! - [`gtid_set`]: MySQL GTID sets with difference and union (source failover).
//! - [`message`]: the Kafka message contract: header names and the message
//!   position (`file:pos:row`) with its ordering.
//! - [`cli`]: the ZooKeeper flags every binary takes.
//! - [`config`]: the TaskConfig of docs/design.md §8, its parser and the
//!   validation that reports every problem at once (the source part in
//!   `config/source.rs`, the lenient field walker in `config/fields.rs`).
//! - [`producer`]: the producer settings a task may give in `sink.properties`.
//! - [`kafka_security`]: TLS and SASL settings of a Kafka client (part of them).
//! - [`secret`]: a redacting wrapper for passwords.
//! - [`nodes`]: JSON codecs of the other znodes (progress, instance, control,
//!   core, alert).
//! - [`zk`]: ZooKeeper session helper (connect with timeout, session events,
//!   node helpers).
//! - [`zk_watchdog`]: the workaround for zookeeper-client 0.11.2's busy
//!   loop (a runtime per session, a silence watchdog).
//! - [`shutdown`]: a cancellation token for SIGTERM/SIGINT.
//! - [`source_conn`]: which server of a task's source to reach and the
//!   connection options (credentials, `source.tls`), for the Core and the Monitor.
//! - [`telemetry`]: tracing set-up.

pub mod backoff;
pub mod candidacy;
pub mod civil;
pub mod cli;
pub mod config;
pub mod election;
pub mod gtid;
pub mod gtid_set;
pub mod kafka_security;
pub mod message;
pub mod names;
pub mod nodes;
pub mod paths;
pub mod position;
pub mod producer;
pub mod secret;
pub mod shutdown;
pub mod source_conn;
pub mod task_node;
pub mod telemetry;
pub mod zk;
pub mod zk_watchdog;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
