//! A broker restart mid-stream, on a storage that survives it: Tansu on
//! PostgreSQL (`replicator_tests::pg_kafka`, the postgres-enabled Tansu
//! build). A writer commits 5-row transactions throughout; the broker is
//! stopped with SIGTERM and started again on the same port and database,
//! then, once the task has recovered, killed with SIGKILL and started
//! again. After each restart the task must resume by itself; at the end
//! every row must be in the topic exactly once and the counter row's
//! updates in commit order. Prints its figures (recovery time per restart,
//! rows, lost, duplicated), how long the broker was away, how many requests
//! the producer resent and whether the pipeline had to restart from its
//! context.
//!
//! Needs the postgres-enabled Tansu (`deploy/install.sh` builds it);
//! `REPLICATOR_TEST_SKIP_TANSU_PG=1` skips it explicitly.
//!
//! PostgreSQL 16 or later: Tansu 0.6.0's `list_latest_offset_committed.sql`
//! (a ListOffsets for the latest offset at `read_committed`, what every tail
//! read and librdkafka's watermark query send) selects from a subquery
//! without an alias, which PostgreSQL accepts from version 16 only (on
//! Debian 12's 15 the broker answers it by closing the connection). The
//! harness takes the PostgreSQL 16 that `deploy/install.sh` installs.

mod support;

use replicator_tests::pg_kafka::PgKafka;
use replicator_tests::{shared_stack, Signal, Stack};
use std::time::Duration;
use support::faults::{print_figures, recover_from, running_under_writes, tally};
use support::{finish_and_check, Outcome};

const SESSION_MS: u64 = 6000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_restart_mid_stream_loses_and_duplicates_nothing() {
    let base = shared_stack!();
    let Some(mut kafka) = PgKafka::start_or_skip() else {
        return;
    };
    let stack: &'static Stack = Box::leak(Box::new(kafka.stack(base)));
    // Given a RUNNING Core and a writer
    let (s, mut core, writer) = running_under_writes(stack, "brestart", SESSION_MS).await;

    let mut recoveries = Vec::new();
    for signal in [Signal::Term, Signal::Kill] {
        // When the broker is stopped (or killed) mid-stream and started again
        // Then the task produces again by itself
        let (away, took, _) =
            recover_from(&s, Duration::from_secs(120), kafka.restart(signal)).await;
        eprintln!(
            "broker restart ({signal:?}): back after {} ms, task produces again {} ms after the signal",
            away.as_millis(),
            took.as_millis()
        );
        recoveries.push(took);
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }

    // Then every row arrives exactly once, the counter in commit order
    let Outcome {
        rows: n,
        messages: msgs,
        problems,
    } = finish_and_check(writer, &s, 5).await;
    let resends = core.log_lines_matching("resending").len();
    let restarts = core
        .log_lines_matching("transient error; retrying from the context")
        .len();
    print_figures(
        "broker-restart-term-then-kill",
        &recoveries,
        tally(&msgs, n),
    );
    eprintln!("producer: {resends} requests resent, {restarts} pipeline restarts");
    assert!(
        problems.is_empty(),
        "{n} rows, {} messages: {problems:#?}\n{}\n{}",
        msgs.len(),
        core.tail(60),
        kafka.log_tail(40)
    );
    core.stop().await;
    kafka.stop().await;
}
