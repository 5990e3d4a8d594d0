//! `replicatorctl tail` against the test stack's Kafka: it waits for a topic
//! that does not exist yet, prints every partition from the beginning with
//! `--meta`, stops after `--max`; from the end it prints only what is
//! written after it started.

use replicator_tests::{bin_path, shared_stack, unique_name};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

fn tail(args: &[&str]) -> Child {
    Command::new(bin_path("replicatorctl"))
        .arg("tail")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn replicatorctl tail")
}

/// Reads stderr lines until one contains `what`; returns them all.
fn stderr_until(child: &mut Child, what: &str) -> String {
    let mut seen = String::new();
    let mut lines = BufReader::new(child.stderr.as_mut().expect("stderr")).lines();
    for line in lines.by_ref() {
        let line = line.expect("stderr line");
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(what) {
            return seen;
        }
    }
    panic!("replicatorctl tail ended without printing `{what}`:\n{seen}");
}

/// Waits for exit; returns the code and stdout.
fn finish(mut child: Child) -> (i32, String) {
    let status = child.wait().expect("wait for tail");
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .unwrap();
    (status.code().unwrap_or(-1), out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_waits_for_the_topic_then_prints_from_the_beginning_or_the_end() {
    let stack = shared_stack!();
    let topic = unique_name("tail");
    let brokers = stack.kafka_bootstrap();

    // Given a tail from the beginning started before its topic exists
    let mut first = tail(&[
        &topic,
        "--brokers",
        brokers,
        "--from-beginning",
        "--max",
        "3",
        "--meta",
        "--max-wait-ms",
        "60000",
    ]);
    let waiting = tokio::task::block_in_place(|| stderr_until(&mut first, "waiting for topic"));
    assert!(waiting.contains(&topic), "{waiting}");
    // When the topic is created and three messages land on its two partitions
    stack.create_topic(&topic, 2).await;
    for i in 0..3 {
        stack
            .produce(
                &topic,
                Some(i % 2),
                Some(format!("[{i}]").as_bytes()),
                format!(r#"{{"n":{i}}}"#).as_bytes(),
            )
            .await;
    }
    // Then it prints the three with topic, partition, offset and key, and exits 0
    let (code, out) = tokio::task::block_in_place(|| finish(first));
    assert_eq!(code, 0, "{out}");
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            format!(r#"{topic}/0@0 [0] {{"n":0}}"#),
            format!(r#"{topic}/0@1 [2] {{"n":2}}"#),
            format!(r#"{topic}/1@0 [1] {{"n":1}}"#),
        ]
    );

    // Given a tail from the end of the same topic
    let mut second = tail(&[&topic, "--brokers", brokers, "--max", "1"]);
    tokio::task::block_in_place(|| stderr_until(&mut second, "tailing 2 partition(s)"));
    // When one more message is written
    stack.produce(&topic, Some(1), None, br#"{"n":9}"#).await;
    // Then only that one is printed, value only
    let (code, out) = tokio::task::block_in_place(|| finish(second));
    assert_eq!((code, out.as_str()), (0, "{\"n\":9}\n"));

    // and a tail that gets fewer than --max messages in --max-wait-ms exits 2
    let third = tail(&[
        &topic,
        "--brokers",
        brokers,
        "--max",
        "1",
        "--max-wait-ms",
        "1500",
    ]);
    let (code, out) = tokio::task::block_in_place(|| finish(third));
    assert_eq!((code, out.as_str()), (2, ""));
}
