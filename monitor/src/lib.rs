//! # replicator-monitor
//!
//! Watches a mysql-replicator cluster through ZooKeeper, raises alerts and
//! notifies (docs/design.md §3, §9). Flow, once per poll interval: [`collect`] reads
//! the cluster into a [`snapshot::Snapshot`]; [`rules::evaluate`] (pure)
//! turns it into conditions; the leader's [`lifecycle::Book`] (pure) decides
//! what fires, repeats and resolves; [`store`] persists active alerts under
//! `/alerts`; [`notify`] logs and queues notifications for webhooks and
//! Kafka; [`http`] serves `/alerts`, `/metrics` and `/healthz`.
//!
//! Several monitors may run: [`election`] picks the leader (lowest sequence
//! under `/monitor/leader`). Every monitor evaluates, so its rule state is
//! warm; only the leader persists and notifies. A new leader adopts the
//! alerts in `/alerts` without firing them again. A monitor that loses its
//! ZooKeeper session stops acting as leader at once and stands again with a
//! new session.
//!
//! # Layout
//! - [`config`]: thresholds with their defaults, the JSON config file.
//! - [`snapshot`]: the cluster as plain data.
//! - [`collect`]: ZooKeeper to snapshot, in batched multi-reads.
//! - [`source`]: source binlog positions for `stalled`, polled in the background.
//! - [`alert`]: rules, subjects, alert ids, conditions.
//! - [`rules`]: the rules, a pure function.
//! - [`lifecycle`]: fire / repeat / resolve, pure.
//! - [`store`]: `/alerts` in ZooKeeper.
//! - [`notify`]: log, webhook and Kafka channels.
//! - [`metrics`]: Prometheus text, pure.
//! - [`http`]: the HTTP listener.
//! - [`election`]: monitor leader election.
//! - [`runner`]: sessions and passes; [`run`] is the entry point.
//! - [`error`]: the error type, [`MonitorError`].

pub mod alert;
pub mod collect;
pub mod config;
pub mod election;
pub mod error;
pub mod http;
pub mod lifecycle;
pub mod metrics;
pub mod notify;
pub mod rules;
pub mod runner;
pub mod snapshot;
pub mod source;
pub mod store;

pub use config::{FileConfig, KafkaChannel, MonitorConfig, Thresholds, WebhookOptions};
pub use error::MonitorError;
pub use runner::run;
