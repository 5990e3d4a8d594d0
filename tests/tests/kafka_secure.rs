//! The Core against a secured Kafka: Tansu behind a real TLS server (socat,
//! certificates made by the test with openssl; see
//! `replicator_tests::secure_kafka`). A task runs over TLS end to end with
//! host name verification, every row exactly once, read back by an
//! independent TLS client (librdkafka); a CA that did not sign the broker's
//! certificate, and a host name the certificate does not carry, are clear
//! definite errors in the instance node, not a retry loop; turning host
//! name verification off accepts the second.
//!
//! SASL: Tansu 0.6.0 with `--authentication` speaks SCRAM. Its memory
//! storage never stores a user, so against it only the refusal can be
//! tested: a SCRAM-SHA-512 exchange whose final message is `e=unknown-user`
//! (Tansu sends it with error code 0, so only the client's check of the
//! server's final message catches it) must be a definite error naming the
//! user, not a retry loop and not a connection that goes on
//! unauthenticated. On its PostgreSQL storage (the postgres-enabled Tansu
//! build, `replicator_tests::pg_kafka`) users survive a restart: a
//! SCRAM-SHA-256 and a SCRAM-SHA-512 user are created while the broker runs
//! without `--authentication`, the broker is restarted with it, and a task
//! replicates over TLS + SCRAM with each mechanism, every row once, read
//! back by librdkafka logged in as the SCRAM-SHA-256 user; a wrong password
//! is a definite error naming the mechanism and the user.

mod support;

use replicator_common::nodes::InstanceInfo;
use replicator_tests::pg_kafka::{skip_tansu_pg_tests, Scram};
use replicator_tests::secure_kafka::SecureKafka;
use replicator_tests::{shared_stack, Stack};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{exactly_once, Scenario};

const SESSION_MS: u64 = 1500;

fn leak(stack: Stack) -> &'static Stack {
    Box::leak(Box::new(stack))
}

fn with_properties(mut cfg: Value, props: &[(String, String)]) -> Value {
    let map: serde_json::Map<String, Value> =
        props.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    cfg["sink"]["properties"] = Value::Object(map);
    cfg
}

async fn insert_rows(stack: &Stack, s: &Scenario, ids: std::ops::RangeInclusive<i64>) {
    for id in ids {
        stack
            .sql(&format!(
                "INSERT INTO `{}`.`{}` (id, v, txn, note) VALUES ({id}, 0, {id}, 'row {id}')",
                s.db, s.table
            ))
            .await;
    }
}

/// Waits until the task's only instance reports a definite error.
async fn wait_error(s: &Scenario) -> InstanceInfo {
    let t0 = Instant::now();
    loop {
        if let Some((_, info)) = s.instances().await.into_iter().next() {
            if info.error.is_some() {
                return info;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no error reported: {:?}",
            s.instances().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn task_runs_over_tls_with_host_name_verification() {
    let base = shared_stack!();
    let kafka = SecureKafka::start(false);
    let props = SecureKafka::tls_properties(&kafka.ca_file);
    let stack = leak(kafka.stack(base, props.clone()));
    let s = Scenario::new(stack, "tls").await;
    s.put_config(with_properties(s.config(), &props)).await;
    let mut core = s.core("h1", SESSION_MS);
    core.wait_for_log("replication starts", Duration::from_secs(30))
        .await;
    insert_rows(stack, &s, 1..=50).await;
    let msgs = s.wait_messages(50, Duration::from_secs(30)).await;
    let problems = exactly_once(&msgs, 50);
    assert!(problems.is_empty(), "{problems:#?}\n{}", core.tail(30));
    assert!(
        s.instances().await.iter().all(|(_, i)| i.error.is_none()),
        "{:?}",
        s.instances().await
    );
    // a SIGKILL takeover reads the topic tail over TLS too
    core.kill();
    let mut core = s.core("h2", SESSION_MS);
    insert_rows(stack, &s, 51..=60).await;
    let msgs = s.wait_messages(60, Duration::from_secs(30)).await;
    let problems = exactly_once(&msgs, 60);
    assert!(problems.is_empty(), "{problems:#?}\n{}", core.tail(30));
    assert!(!core.log_lines_matching("read topic tail").is_empty());
    core.stop().await;

    // replicatorctl tail reads the same topic over TLS
    let out = std::process::Command::new(replicator_tests::bin_path("replicatorctl"))
        .args([
            "tail",
            &s.topic,
            "--brokers",
            &kafka.bootstrap,
            "--from-beginning",
        ])
        .args(["--max", "60", "--max-wait-ms", "20000"])
        .args(["--kafka-property", "security.protocol=ssl"])
        .arg("--kafka-property")
        .arg(format!("ssl.ca.location={}", kafka.ca_file.display()))
        .output()
        .expect("run replicatorctl tail");
    let lines = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(
        out.status.success() && lines == 60,
        "{lines} lines, {}",
        String::from_utf8_lossy(&out.stderr)
    );
    kafka.stop().await;
}

async fn definite_error_case(
    stack: &'static Stack,
    prefix: &str,
    brokers: &str,
    props: &[(String, String)],
) -> String {
    definite_error_with_env(stack, prefix, brokers, props, &[]).await
}

async fn definite_error_with_env(
    stack: &'static Stack,
    prefix: &str,
    brokers: &str,
    props: &[(String, String)],
    env: &[(&str, &str)],
) -> String {
    let s = Scenario::new(stack, prefix).await;
    let mut cfg = with_properties(s.config(), props);
    cfg["sink"]["brokers"] = json!(brokers);
    s.put_config(cfg).await;
    let session = SESSION_MS.to_string();
    let args = ["--task", &s.task, "--zk-session-timeout-ms", &session];
    let mut core = stack.core(&s.root, "h1", &args, env);
    let info = wait_error(&s).await;
    let error = info.error.unwrap();
    assert!(
        info.retrying.is_none(),
        "a definite error, not a retry loop: {:?}",
        info.retrying
    );
    // it stays stopped: no retry in the log
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        core.log_lines_matching("transient error; retrying")
            .is_empty(),
        "{}",
        core.tail(20)
    );
    core.stop().await;
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn untrusted_certificates_are_definite_errors() {
    let base = shared_stack!();
    let kafka = SecureKafka::start(false);
    let good = SecureKafka::tls_properties(&kafka.ca_file);
    let stack = leak(kafka.stack(base, good.clone()));

    // a CA that did not sign the broker's certificate
    let wrong = SecureKafka::tls_properties(&kafka.wrong_ca_file);
    let error = definite_error_case(stack, "wrongca", &kafka.bootstrap, &wrong).await;
    println!("wrong CA: {error}");
    assert!(
        error.contains("cannot connect to Kafka securely") && error.contains("UnknownIssuer"),
        "{error}"
    );

    // the right CA, but an address the certificate does not name
    let by_ip = format!("127.0.0.1:{}", kafka.port);
    let error = definite_error_case(stack, "wrongname", &by_ip, &good).await;
    println!("wrong host name: {error}");
    assert!(error.contains("not valid for name"), "{error}");

    // the same address with host name verification off: it runs
    let s = Scenario::new(stack, "noverify").await;
    let mut props = good.clone();
    props.push((
        "ssl.endpoint.identification.algorithm".into(),
        "none".into(),
    ));
    let mut cfg = with_properties(s.config(), &props);
    cfg["sink"]["brokers"] = json!(by_ip);
    s.put_config(cfg).await;
    let mut core = s.core("h1", SESSION_MS);
    core.wait_for_log("replication starts", Duration::from_secs(30))
        .await;
    insert_rows(stack, &s, 1..=3).await;
    let msgs = s.wait_messages(3, Duration::from_secs(30)).await;
    assert!(exactly_once(&msgs, 3).is_empty(), "{}", core.tail(30));
    core.stop().await;

    // a CA file that does not exist: a config error naming the key
    let missing = SecureKafka::tls_properties(Path::new("/nonexistent/ca.pem"));
    let error = definite_error_case(stack, "noca", &kafka.bootstrap, &missing).await;
    assert!(error.contains("ssl.ca.location"), "{error}");
    kafka.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_scram_login_is_a_definite_error() {
    let base = shared_stack!();
    let kafka = SecureKafka::start(true);
    let stack = leak(kafka.stack(base, SecureKafka::tls_properties(&kafka.ca_file)));
    let mut props = SecureKafka::tls_properties(&kafka.ca_file);
    props[0].1 = "sasl_ssl".into();
    props.extend([
        ("sasl.mechanism".to_string(), "SCRAM-SHA-512".to_string()),
        ("sasl.username".to_string(), "alice".to_string()),
        (
            "sasl.password_env".to_string(),
            "REPLICATOR_TEST_KAFKA_PW".to_string(),
        ),
    ]);
    let error = definite_error_with_env(
        stack,
        "scram",
        &kafka.bootstrap,
        &props,
        &[("REPLICATOR_TEST_KAFKA_PW", "not-a-real-password")],
    )
    .await;
    println!("refused SCRAM login: {error}");
    assert!(
        error.contains("SCRAM-SHA-512")
            && error.contains("alice")
            && error.contains("unknown-user"),
        "{error}"
    );
    assert!(!error.contains("not-a-real-password"), "{error}");

    // the password's variable missing on the Core's host: a config error naming it
    let error = definite_error_case(stack, "scramenv", &kafka.bootstrap, &props).await;
    assert!(error.contains("REPLICATOR_TEST_KAFKA_PW"), "{error}");
    kafka.stop().await;
}

/// `sink.properties` for TLS with `ca` and a SCRAM login whose password is
/// in the Core's environment variable `password_env`.
fn scram_properties(
    ca: &Path,
    mechanism: Scram,
    user: &str,
    password_env: &str,
) -> Vec<(String, String)> {
    let mut props = SecureKafka::tls_properties(ca);
    props[0].1 = "sasl_ssl".into();
    props.extend([
        ("sasl.mechanism".to_string(), mechanism.name().to_string()),
        ("sasl.username".to_string(), user.to_string()),
        ("sasl.password_env".to_string(), password_env.to_string()),
    ]);
    props
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_log_in_with_scram_sha_256_and_512_over_tls() {
    let base = shared_stack!();
    if skip_tansu_pg_tests() {
        return;
    }
    // Given two users created while the broker needs no authentication,
    // then a broker restarted with --authentication
    let mut kafka = tokio::task::block_in_place(SecureKafka::start_on_postgres);
    let users = [
        (Scram::Sha256, "ann256", "pw-of-ann-256"),
        (Scram::Sha512, "bob512", "pw-of-bob-512"),
    ];
    for (mechanism, user, password) in users {
        kafka.postgres().create_user(mechanism, user, password);
    }
    kafka.postgres().set_authentication(true).await;
    // the harness's own clients (librdkafka) log in as the SCRAM-SHA-256 user
    let mut reader = SecureKafka::tls_properties(&kafka.ca_file);
    reader[0].1 = "sasl_ssl".into();
    reader.extend([
        ("sasl.mechanism".to_string(), "SCRAM-SHA-256".to_string()),
        ("sasl.username".to_string(), "ann256".to_string()),
        ("sasl.password".to_string(), "pw-of-ann-256".to_string()),
        // Tansu 0.6.0's read_committed ListOffsets query needs PostgreSQL 16+
        (
            "isolation.level".to_string(),
            "read_uncommitted".to_string(),
        ),
    ]);
    let stack = leak(kafka.stack(base, reader));

    for (mechanism, user, password) in users {
        // When a task logs in with that mechanism
        let s = Scenario::new(stack, "scramok").await;
        let props = scram_properties(&kafka.ca_file, mechanism, user, "REPLICATOR_TEST_KAFKA_PW");
        s.put_config(with_properties(s.config(), &props)).await;
        // a long session: a lease lost under load restarts the pipeline, whose
        // tail read Tansu 0.6.0 on PostgreSQL 15 cannot serve (docs/faults.md)
        let session = "6000".to_string();
        let args = ["--task", &s.task, "--zk-session-timeout-ms", &session];
        let mut core = stack.core(
            &s.root,
            "h1",
            &args,
            &[("REPLICATOR_TEST_KAFKA_PW", password)],
        );
        core.wait_for_log("replication starts", Duration::from_secs(30))
            .await;
        insert_rows(stack, &s, 1..=40).await;
        // Then every row arrives exactly once, with no error on the way
        let msgs = s.wait_messages(40, Duration::from_secs(30)).await;
        let problems = exactly_once(&msgs, 40);
        assert!(
            problems.is_empty(),
            "{}: {problems:#?}\n{}",
            mechanism.name(),
            core.tail(30)
        );
        assert!(
            s.instances().await.iter().all(|(_, i)| i.error.is_none()),
            "{:?}",
            s.instances().await
        );
        println!("{} as {user}: 40 rows, each once", mechanism.name());
        core.stop().await;
    }

    // a wrong password: a definite error naming the mechanism and the user
    for (mechanism, user, _) in users {
        let props = scram_properties(&kafka.ca_file, mechanism, user, "REPLICATOR_TEST_KAFKA_PW");
        let error = definite_error_with_env(
            stack,
            "scrambad",
            &kafka.bootstrap,
            &props,
            &[("REPLICATOR_TEST_KAFKA_PW", "not-the-password")],
        )
        .await;
        println!("wrong password, {}: {error}", mechanism.name());
        assert!(
            error.contains(mechanism.name()) && error.contains(user),
            "{error}"
        );
        assert!(!error.contains("not-the-password"), "{error}");
    }
    kafka.stop().await;
}
