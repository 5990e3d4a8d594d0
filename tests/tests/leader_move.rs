//! A partition leader moving to another broker mid-stream, without a mock:
//! two Tansu brokers on one PostgreSQL storage (`replicator_tests::pg_kafka`).
//! The task's `brokers` lists both ports, A and B; only A runs at first. A
//! writer commits 5-row transactions throughout; the broker on A is killed
//! (SIGKILL) and one is started on B, on the same database, advertising B;
//! then the broker on B is killed and one started on A again. Each Tansu
//! names itself leader of every partition, so to the producer every
//! partition's leader moved: it must ask the metadata again, hand its
//! unacknowledged batches (same sequence numbers) over to the new leader and
//! carry on, without a pipeline restart; at the end every row is in the
//! topic exactly once and the counter row's updates in commit order.
//! Prints, per move, the time from the kill to the first request the new
//! broker acknowledged (by the Core log's timestamp).
//!
//! Tansu 0.6 never answers `NOT_LEADER_OR_FOLLOWER` (no broker here can), so
//! this test moves the leader by replacing the broker: the connection
//! failure path. The hand-over on `NOT_LEADER_OR_FOLLOWER` is the same code
//! after a different trigger; its pure part is unit-tested in
//! `core/src/sink/kafka/reroute.rs`.
//!
//! Needs the postgres-enabled Tansu and PostgreSQL 16 (see `broker_restart`);
//! `REPLICATOR_TEST_SKIP_TANSU_PG=1` skips it explicitly.

mod support;

use replicator_tests::pg_kafka::PgKafka;
use replicator_tests::{shared_stack, Signal, Stack};
use std::time::Duration;
use support::faults::{now_ms, print_figures, running_under_writes, tally};
use support::{finish_and_check, Outcome};

const SESSION_MS: u64 = 6000;
const RESTART: &str = "transient error; retrying from the context";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_moving_to_another_broker_is_followed_without_a_pipeline_restart() {
    let base = shared_stack!();
    let Some(mut kafka) = PgKafka::start_or_skip() else {
        return;
    };
    let a = kafka.bootstrap.clone();
    let port_a: u16 = a.rsplit(':').next().unwrap().parse().unwrap();
    let port_b = PgKafka::spare_port();
    let bootstrap = format!("{a},127.0.0.1:{port_b}");
    let stack: &'static Stack = Box::leak(Box::new(base.with_kafka(&bootstrap, Vec::new())));
    // Given a RUNNING Core whose task names brokers A and B (only A runs),
    // and a writer
    let (s, mut core, writer) = running_under_writes(stack, "lmove", SESSION_MS).await;

    let mut took = Vec::new();
    for to in [port_b, port_a] {
        // When the leader's broker is killed and another starts on the
        // other port, on the same storage
        let mark = core.log_mark();
        let written = writer.written();
        let killed_ms = now_ms();
        let up = kafka.move_to(Signal::Kill, to).await;
        // Then the producer hands its batches over to the new leader and
        // the new broker acknowledges requests
        let acked = core
            .wait_for_log_after(
                mark,
                &format!("acknowledges our requests.*broker=127.0.0.1:{to}"),
                Duration::from_secs(60),
            )
            .await;
        let t = since_ms_of_day(killed_ms, &acked);
        let moved = core
            .wait_for_log_after(
                mark,
                &format!("partition leader moved.*to=127.0.0.1:{to}"),
                Duration::from_secs(1),
            )
            .await;
        eprintln!(
            "leader moved to 127.0.0.1:{to}: new broker listening {} ms after the kill, \
             first request acknowledged there {} ms after it ({written} rows written before)\n  {moved}\n  {acked}",
            up.as_millis(),
            t.as_millis(),
        );
        took.push(t);
        // and keeps producing there while the writer goes on
        tokio::time::sleep(Duration::from_millis(2000)).await;
        assert!(
            writer.written() > written,
            "the writer kept committing:\n{}",
            core.tail(30)
        );
    }

    // Then every row arrives exactly once, the counter in commit order,
    // and the pipeline never restarted
    let Outcome {
        rows: n,
        messages: msgs,
        problems,
    } = finish_and_check(writer, &s, 5).await;
    let restarts = core.log_lines_matching(RESTART).len();
    let handovers = core.log_lines_matching("partition leader moved").len();
    let resends = core.log_lines_matching("resending").len();
    print_figures("leader-moved-to-another-broker", &took, tally(&msgs, n));
    eprintln!(
        "producer: {handovers} partition hand-overs, {resends} requests resent, {restarts} pipeline restarts"
    );
    assert!(
        problems.is_empty(),
        "{n} rows, {} messages: {problems:#?}\n{}\n{}",
        msgs.len(),
        core.tail(60),
        kafka.log_tail(40)
    );
    assert_eq!(
        restarts,
        0,
        "the producer followed the leader, the pipeline did not restart:\n{}",
        core.tail(60)
    );
    core.stop().await;
    kafka.stop().await;
}

/// The time from `then_ms` (ms since 1970, UTC) to the timestamp a Core log
/// line starts with (`2026-11-26T10:03:58.240097Z`): its time of day, so
/// that the log's polling interval does not count.
fn since_ms_of_day(then_ms: i64, line: &str) -> Duration {
    const DAY_US: i64 = 86_400_000_000;
    let stamp = line
        .split_whitespace()
        .next()
        .and_then(|s| s.split_once('T'))
        .map(|(_, t)| t.trim_end_matches('Z'))
        .unwrap_or_else(|| panic!("no timestamp in {line:?}"));
    let (hms, frac) = stamp.split_once('.').unwrap_or((stamp, "0"));
    let mut parts = hms.split(':').map(|p| p.parse::<i64>().expect("h:m:s"));
    let (h, m, sec) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let frac_us: i64 = format!("{frac:0<6}")[..6].parse().expect("fraction");
    let logged_us = ((h * 60 + m) * 60 + sec) * 1_000_000 + frac_us;
    let then_us = (then_ms * 1000).rem_euclid(DAY_US);
    Duration::from_micros((logged_us - then_us).rem_euclid(DAY_US) as u64)
}
