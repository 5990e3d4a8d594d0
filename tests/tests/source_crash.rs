//! The source MariaDB is SIGKILLed under writes and started again (twice):
//! the task resumes by itself, and every row the table holds afterwards
//! arrives exactly once (a row whose commit returned an error may or may
//! not exist; if it exists it must arrive once, if not, never). Prints its
//! figures (recovery time per crash, rows, lost, duplicated).
//!
//! Runs on a private stack: it kills that stack's MariaDB.

mod support;

use replicator_tests::{Server, Stack};
use std::time::{Duration, Instant};
use support::faults::{print_figures, recover_from, tally_ids, CrashWriter};
use support::Scenario;

const SESSION_MS: u64 = 6000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_resumes_after_the_source_is_killed_and_restarted() {
    let Some(stack) = Stack::start_or_skip() else {
        return;
    };
    let stack: &'static Stack = Box::leak(Box::new(stack));
    // Given a RUNNING Core and a writer that survives the source going away
    let s = Scenario::new(stack, "srccrash").await;
    let mut a = s
        .running_core("a", SESSION_MS, Duration::from_secs(30))
        .await;
    let writer = CrashWriter::start(stack, &s.db, &s.table, 3, Duration::from_millis(10));
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut recoveries = Vec::new();
    for round in 1..=2 {
        // When the source is SIGKILLed under writes and started again
        let crash = async {
            let killed_at = Instant::now();
            tokio::task::spawn_blocking(move || {
                stack.kill_server(Server::MariaDb);
                std::thread::sleep(Duration::from_secs(1));
                stack.restart_server(Server::MariaDb, Duration::from_secs(90));
            })
            .await
            .expect("restart MariaDB");
            killed_at.elapsed()
        };
        // Then the task resumes by itself
        let (up, took, _) = recover_from(&s, Duration::from_secs(120), crash).await;
        eprintln!(
            "source crash {round}: MariaDB back after {} ms, task produces again {} ms after the kill",
            up.as_millis(),
            took.as_millis()
        );
        recoveries.push(took);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // Then every row the table holds arrives exactly once, and nothing else
    let report = writer.finish().await;
    let ids: Vec<i64> = stack
        .query(&format!(
            "SELECT id FROM `{}`.`{}` ORDER BY id",
            s.db, s.table
        ))
        .await;
    assert!(
        ids.len() as i64 >= report.committed * 3,
        "the table lost committed rows: {} rows, {report:?}",
        ids.len()
    );
    let msgs = s
        .settled_messages(ids.len(), ids.len(), Duration::from_secs(120))
        .await;
    let figures = tally_ids(&msgs, &ids);
    eprintln!(
        "writer: {} transactions committed, {} failed (uncertain), {} rows in the table",
        report.committed,
        report.failed,
        ids.len()
    );
    print_figures("source-crash-x2", &recoveries, figures);
    assert_eq!(
        (figures.lost, figures.duplicated),
        (0, 0),
        "every row of the table exactly once\n{}",
        a.tail(40)
    );
    a.stop().await;
}
