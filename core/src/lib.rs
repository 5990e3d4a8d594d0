//! # replicator-core
//!
//! Streams MySQL/MariaDB binlog row changes into Kafka, with hot standby
//! (lowest ephemeral-sequential instance runs the task) and cold standby
//! (grouped scanning), coordinated through ZooKeeper (see `docs/design.md`).
//!
//! # Layout
//! - [`decode`]: raw binlog event bodies to typed events and JSON row images (pure).
//! - [`source`]: source connection, preflight checks, start position, binlog stream.
//! - [`pipeline`]: one task's run: events to messages, transactions, context commits.
//! - [`sink`]: Kafka producer, topic creation, partitioning, duplicate removal, acks.
//! - [`snapshot`]: consistent chunked copy of existing rows merged into the stream.
//! - [`progress`]: the context node (version-checked, fencing).
//! - [`lease`]: the time-bounded right to produce, renewed by ZooKeeper round trips.
//! - [`election`]: lowest-sequence decisions (pure).
//! - [`instance`]: this process's instance node of a task.
//! - [`hot`]: the hot-standby loop of one task (RUNNING/STANDBY, switchover, pause, live config).
//! - [`scan`]: cold-standby scan decisions (pure); [`cold`]: the scanner.
//! - [`runtime`]: the process: ZooKeeper session, `/cores/<host>`, every task and group.
//! - [`error`]: transient vs definite errors, back-off.
//! - [`metrics`]: Prometheus text on `--metrics-addr`.

pub mod cold;
pub mod decode;
pub mod election;
pub mod error;
pub mod hot;
pub mod instance;
pub mod lease;
pub mod metrics;
pub mod pipeline;
pub mod progress;
pub mod running;
pub mod runtime;
pub mod scan;
pub mod sink;
pub mod snapshot;
pub mod source;

pub use runtime::{run, CoreConfig};
