//! Hot standby against the real stack: lowest sequence runs, failover on
//! SIGKILL, planned switchover and SIGTERM hand-over, a paused leader that
//! must not write after it resumes, and no herd effect.

mod support;

use replicator_common::nodes::InstanceState;
use replicator_tests::{shared_stack, Message, Process};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::{counter_in_order, exactly_once, old_epoch_after_new, Scenario, Writer};

const SESSION_MS: u64 = 1500;

async fn wait_new_leader(s: &Scenario, old: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let host = s.running_host(timeout).await;
        if host != old {
            return host;
        }
        assert!(Instant::now() < deadline, "{old} is still RUNNING");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A RUNNING Core `h1` and a STANDBY `h2` on the task.
async fn leader_and_standby(s: &Scenario) -> (Process, Process) {
    let h1 = s
        .running_core("h1", SESSION_MS, Duration::from_secs(20))
        .await;
    let mut h2 = s.core("h2", SESSION_MS);
    h2.wait_for_log("STANDBY", Duration::from_secs(20)).await;
    (h1, h2)
}

/// Freezes the RUNNING `h1` (SIGSTOP) until `h2` took over and `frozen`
/// more passed, resumes it and waits until it rejoins as STANDBY, then one
/// second more; returns `h1`'s log mark at the resume.
async fn freeze_until_taken_over(s: &Scenario, h1: &mut Process, frozen: Duration) -> usize {
    h1.pause();
    let next = wait_new_leader(s, "h1", Duration::from_secs(20)).await;
    assert_eq!(next, "h2");
    tokio::time::sleep(frozen).await;
    let mark = h1.log_mark();
    h1.resume();
    h1.wait_for_log_after(mark, "STANDBY", Duration::from_secs(20))
        .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    mark
}

/// Stops `writer` and checks that every row it wrote arrived exactly once
/// and that nothing of `old_epoch` follows the new epoch in any partition
/// (fence records included); returns the rows written and the messages.
async fn exactly_once_across_epochs(
    s: &Scenario,
    writer: Writer,
    old_epoch: i64,
) -> (i64, Vec<Message>) {
    let n = writer.finish().await;
    let msgs = s
        .wait_messages_with_fences(n as usize, Duration::from_secs(60))
        .await;
    let problems = exactly_once(&msgs, n);
    assert!(problems.is_empty(), "{n} rows: {problems:#?}");
    let late = old_epoch_after_new(&msgs, old_epoch);
    assert!(late.is_empty(), "{late:#?}");
    (n, msgs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_kills_switchovers_and_stops_keep_every_row_exactly_once() {
    let stack = shared_stack!();
    // Given three Cores on one task and a writer committing continuously
    let s = Scenario::new(stack, "chaos").await;
    let mut cores: HashMap<String, Process> = HashMap::new();
    for h in ["h1", "h2", "h3"] {
        cores.insert(h.to_string(), s.core(h, SESSION_MS));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let first = s.running_host(Duration::from_secs(20)).await;
    assert_eq!(first, "h1", "the smallest sequence runs");
    cores
        .get_mut("h1")
        .unwrap()
        .wait_for_log("replication starts", Duration::from_secs(20))
        .await;
    let writer = Writer::start(stack, &s.db, &s.table, 5, Duration::from_millis(5));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // When the RUNNING Core is killed 5 times, switched over 3 times and stopped twice
    let mut retired: Vec<Process> = Vec::new();
    let plan = [
        "kill", "switch", "kill", "term", "kill", "switch", "kill", "term", "switch", "kill",
    ];
    for (i, action) in plan.iter().enumerate() {
        let leader = s.running_host(Duration::from_secs(20)).await;
        let before = writer.txns();
        match *action {
            "kill" => {
                cores.get_mut(&leader).unwrap().kill();
            }
            "term" => {
                cores.get_mut(&leader).unwrap().stop().await;
            }
            _ => s.switchover().await,
        }
        let next = wait_new_leader(&s, &leader, Duration::from_secs(20)).await;
        if *action != "switch" {
            // restart the stopped one as a new standby
            if let Some(old) = cores.insert(leader.clone(), s.core(&leader, SESSION_MS)) {
                retired.push(old);
            }
        }
        // let some transactions flow through the new leader
        let deadline = Instant::now() + Duration::from_secs(10);
        while writer.txns() < before + 20 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        eprintln!("step {i}: {action} {leader} -> {next}");
    }
    let txns = writer.txns();
    let n = writer.finish().await;
    let txns = txns.max(0);
    // Then every row is in Kafka exactly once, in commit order per key
    let msgs = s.wait_messages(n as usize, Duration::from_secs(60)).await;
    let final_txns = msgs
        .iter()
        .map(|m| m.value_json())
        .filter(|v| v["type"] == "update")
        .count() as i64;
    assert!(
        final_txns >= txns,
        "counter updates {final_txns} < committed {txns}"
    );
    let mut problems = exactly_once(&msgs, n);
    problems.extend(counter_in_order(&msgs, final_txns));
    assert!(
        problems.is_empty(),
        "{n} rows, {} messages: {problems:#?}",
        msgs.len()
    );
    for (_, mut c) in cores {
        c.stop().await;
    }
}

/// A frozen leader may hold records it queued before the SIGSTOP and send
/// them the moment it resumes, before it can see that its lease is gone: the
/// broker refuses them (the new leader's producer epoch fenced the old one),
/// so nothing of the old epoch lands after the new leader's first message.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paused_leader_writes_nothing_after_it_resumes() {
    let stack = shared_stack!();
    let s = Scenario::new(stack, "pause").await;
    let (mut h1, mut h2) = leader_and_standby(&s).await;
    let writer = Writer::start(stack, &s.db, &s.table, 4, Duration::from_millis(5));
    tokio::time::sleep(Duration::from_millis(800)).await;

    // When the leader is frozen for longer than its session timeout
    let old_epoch = s.epoch().await;
    // Then it learns it lost the task and rejoins as STANDBY
    freeze_until_taken_over(&s, &mut h1, Duration::from_millis(1000)).await;
    // and every row arrives exactly once, nothing of the old epoch after
    // the new epoch in any partition
    exactly_once_across_epochs(&s, writer, old_epoch).await;
    let lost =
        h1.log_lines_matching("lease lost").len() + h1.log_lines_matching("session is over").len();
    assert!(lost > 0, "the resumed leader must notice:\n{}", h1.tail(30));
    let h1_state = s
        .instances()
        .await
        .into_iter()
        .find(|(_, i)| i.host == "h1")
        .map(|(_, i)| i.state);
    assert_eq!(h1_state, Some(InstanceState::Standby));
    h1.stop().await;
    h2.stop().await;
}

/// The leader is frozen while its producer holds queued requests (a long
/// linger and a writer pushing rows fast): when it resumes after the
/// takeover, its producer finds the lease expired right before the wire
/// and sends nothing (self-fence), and the broker would refuse the old
/// epoch anyway. Every row arrives exactly once; no message of the old
/// epoch follows one of the new epoch (fence records included).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_frozen_with_queued_requests_sends_nothing_after_the_takeover() {
    let stack = shared_stack!();
    let s = Scenario::new(stack, "frozen").await;
    let mut cfg = s.config();
    cfg["sink"]["properties"] = json!({"linger.ms": "400"});
    s.put_config(cfg).await;
    let (mut h1, mut h2) = leader_and_standby(&s).await;
    // Given a writer pushing rows fast, so that records sit in h1's
    // producer queue (linger 400 ms) at every moment
    let writer = Writer::start(stack, &s.db, &s.table, 20, Duration::from_millis(1));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let old_epoch = s.epoch().await;

    // When h1 is frozen with requests queued and h2 takes over
    // Then h1 sends nothing, stops producing and rejoins as STANDBY
    let mark = freeze_until_taken_over(&s, &mut h1, Duration::from_millis(1500)).await;
    let (n, msgs) = exactly_once_across_epochs(&s, writer, old_epoch).await;
    let after = &h1.log()[mark..];
    assert!(
        ["lease lost", "self-fenced", "session is over"]
            .iter()
            .any(|p| after.contains(p)),
        "the resumed leader must notice:\n{}",
        h1.tail(30)
    );
    let fences = msgs.iter().filter(|m| m.is_fence()).count();
    eprintln!(
        "{n} rows, {fences} fence records, self-fenced: {}\n{}\n{}",
        after.contains("self-fenced"),
        h2.log_lines_matching("fenced every partition").join("\n"),
        h2.log_lines_matching("read topic tail").join("\n")
    );
    h1.stop().await;
    h2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_leader_wakes_one_standby_not_all() {
    let stack = shared_stack!();
    let s = Scenario::new(stack, "herd").await;
    let mut leader = s.core("lead", SESSION_MS);
    leader
        .wait_for_log("replication starts", Duration::from_secs(20))
        .await;
    let mut standbys: Vec<Process> = Vec::new();
    for i in 0..10 {
        let mut p = s.core(&format!("sb{i}"), SESSION_MS);
        p.wait_for_log("STANDBY", Duration::from_secs(20)).await;
        standbys.push(p);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let marks: Vec<usize> = standbys.iter().map(|p| p.log_mark()).collect();

    // When the leader is killed
    leader.kill();
    let next = wait_new_leader(&s, "lead", Duration::from_secs(20)).await;
    assert_eq!(next, "sb0", "the next sequence takes over");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Then exactly one standby was notified that its predecessor went away
    let mut deleted = 0;
    let mut all = 0;
    for (p, mark) in standbys.iter().zip(&marks) {
        let lines: Vec<String> = p
            .log_lines_matching("predecessor watch fired")
            .into_iter()
            .skip_while(|_| false)
            .collect();
        let after: Vec<&String> = lines
            .iter()
            .filter(|l| p.log()[*mark..].contains(l.as_str()))
            .collect();
        all += after.len();
        deleted += after.iter().filter(|l| l.contains("NodeDeleted")).count();
    }
    assert_eq!(
        deleted, 1,
        "one NodeDeleted notification, not one per standby"
    );
    // the new leader's RUNNING state write notifies its own successor once
    assert!(all <= 2, "{all} watch notifications for one failover");
    for mut p in standbys {
        p.stop().await;
    }
}
