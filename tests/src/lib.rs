//! # replicator-tests: the harness for end-to-end tests
//!
//! Every integration test of the workspace runs against real servers:
//! ZooKeeper 3.8, MariaDB 10.11 (binlog on, row format, full row image and
//! metadata) and Tansu (Kafka protocol). This crate starts them, hands out
//! their addresses, and offers the few helpers every test needs.
//!
//! ```no_run
//! use replicator_tests::{shared_stack, unique_name, unique_root, Process};
//! use std::time::Duration;
//!
//! #[tokio::test]
//! async fn orders_reach_kafka() {
//!     let stack = shared_stack!(); // returns early when REPLICATOR_SKIP_STACK_TESTS=1
//!     let db = stack.create_database("shop").await;
//!     stack.sql(&format!("CREATE TABLE `{db}`.t (id INT PRIMARY KEY)")).await;
//!     let topic = unique_name("orders");
//!     stack.create_topic(&topic, 1).await;
//!     let root = unique_root(); // a ZooKeeper root of this test's own
//!     let mut core = Process::spawn(
//!         "replicator-core",
//!         ["--zk", stack.zk_connect(), "--root", &root, "--host-id", "h1"],
//!         &[],
//!     );
//!     core.wait_for_log("RUNNING", Duration::from_secs(10)).await;
//!     let messages = stack.read_topic_until(&topic, 1, Duration::from_secs(10)).await;
//!     assert_eq!(messages.len(), 1);
//! }
//! ```
//!
//! ## Which servers
//!
//! [`Stack::shared`] gives the stack of the whole test binary. When
//! `REPLICATOR_TEST_ZK`, `REPLICATOR_TEST_MYSQL` and `REPLICATOR_TEST_KAFKA`
//! are all set (`set -a; source .state/stack/stack.env` after
//! deploy/start-stack.sh), those servers are used. Otherwise the first call
//! starts all three on free loopback ports in a temporary directory (about
//! 5 s) and they are killed when the test process exits. Tests share it by
//! using their own names: [`unique_name`] for databases and topics,
//! [`unique_root`] for the ZooKeeper root passed as `--root`.
//! [`Stack::start`] starts a private stack, for tests that pause or kill a
//! server ([`Stack::pause`]) or need servers of their own.
//!
//! With `REPLICATOR_SKIP_STACK_TESTS=1`, [`shared_stack!`],
//! [`Stack::shared_or_skip`] and [`Stack::start_or_skip`] print
//! `skipped: REPLICATOR_SKIP_STACK_TESTS is set` and the test returns.
//! Otherwise nothing is skipped: a server that cannot start fails the test
//! with the tail of its log.
//!
//! ## The API
//!
//! - addresses: [`Stack::zk_connect`], [`Stack::mysql_url`],
//!   [`Stack::mysql_host`], [`Stack::mysql_port`], [`Stack::mysql_user`],
//!   [`Stack::mysql_password`], [`Stack::kafka_bootstrap`];
//! - SQL ([`mysql`]): [`Stack::sql`], [`Stack::query`],
//!   [`Stack::create_database`], [`Stack::conn`], [`Stack::pool`],
//!   [`Stack::binlog_position`], [`Stack::gtid_position`];
//! - Kafka ([`kafka`]): [`Stack::create_topic`], [`Stack::produce`],
//!   [`Stack::read_topic`], [`Stack::read_topic_until`], [`Message`],
//!   [`Stack::kafka_config`] for clients of your own;
//! - ZooKeeper ([`zk`]): [`Stack::zk`] (a `replicator_common::zk::Zk`
//!   session under a root), [`Stack::zk_client`] (a raw session);
//! - processes ([`process`]): [`Process::spawn`] for the workspace binaries,
//!   with `kill`, `stop`, `pause`, `resume`, `pid`, `wait_for_log`;
//! - faults: [`Stack::pause`]/[`Stack::resume`] (SIGSTOP/SIGCONT),
//!   [`Stack::kill_server`]/[`Stack::restart_server`] (SIGKILL, then the
//!   same port and data) on private stacks; [`ZkEnsemble`] and
//!   [`Stack::with_zk`] for a ZooKeeper ensemble; [`Netns`] and
//!   [`Stack::start_with`] ([`ServerOptions`]) for network partitions;
//! - waiting ([`wait`]): [`wait_until`], [`wait_for`], [`try_wait_for`].
//!
//! Helpers panic with context instead of returning errors: they are for
//! tests, and a panic message is the report.
//!
//! # Layout
//! - [`stack`]: [`Stack`], shared or private, owned or reused.
//! - [`servers`]: spawning ZooKeeper, MariaDB and Tansu with the configs of
//!   `deploy/conf/` (the same files deploy/start-stack.sh uses).
//! - [`reaper`]: the run directory and the process that cleans up after the
//!   test process, even though a `static` is never dropped.
//! - [`mysql`], [`kafka`], [`zk`]: helpers on [`Stack`] per server.
//! - [`process`]: the project's binaries as child processes.
//! - [`secure_kafka`]: a private Tansu behind a TLS terminator (and SASL),
//!   with test certificates ([`certs`], shared with the source TLS tests).
//! - [`postgres`]: a PostgreSQL server of a test's own.
//! - [`pg_kafka`]: a private Tansu on PostgreSQL storage (the
//!   postgres-enabled build), restartable without losing its data or its
//!   SCRAM users.
//! - [`zk_ensemble`]: a ZooKeeper ensemble of a test's own (3 servers, or 1
//!   listening on every address), whose members can be killed and restarted.
//! - [`netns`]: network namespaces joined by veth links a test can cut
//!   (partitions between a Core and ZooKeeper, Kafka or the source).
//! - [`mariadb_pair`]: a MariaDB primary and a GTID replica of it, with
//!   SIGKILL and promotion, for source failover tests; [`Stack::with_mysql`]
//!   points a stack at one of them.
//! - [`wait`]: polling with deadlines.
//! - [`bench`]: what the benchmark binaries share.
//! - [`names`]: unique names.

pub mod bench;
pub mod certs;
pub mod kafka;
pub mod mariadb_pair;
pub mod mysql;
pub mod names;
pub mod netns;
pub mod pg_kafka;
pub mod postgres;
pub mod process;
pub mod reaper;
pub mod secure_kafka;
pub mod servers;
pub mod stack;
pub mod wait;
pub mod zk;
pub mod zk_ensemble;

pub use kafka::{without_fences, Message};
pub use names::{unique_name, unique_root};
pub use netns::{skip_netns_tests, Netns};
pub use process::{bin_path, Process, Signal};
pub use servers::{Server, ServerOptions};
pub use stack::{skip_stack_tests, Stack};
pub use wait::{try_wait_for, wait_for, wait_until};
pub use zk_ensemble::ZkEnsemble;

/// `let stack = shared_stack!();` in a test returning `()`: the shared
/// [`Stack`], or an early `return` (with a printed reason) when
/// `REPLICATOR_SKIP_STACK_TESTS=1`.
#[macro_export]
macro_rules! shared_stack {
    () => {
        match $crate::Stack::shared_or_skip() {
            Some(stack) => stack,
            None => return,
        }
    };
}
