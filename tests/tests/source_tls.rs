//! TLS to the source: a MariaDB started with a certificate this test makes
//! with `openssl` (a CA, and a server certificate for IP 127.0.0.1 only).
//!
//! - `verify_ca` replicates through TLS (by the address the certificate
//!   names: mysql_async 0.37's rustls backend checks the name even when told
//!   not to, see docs/source-tls.md);
//! - `verify_identity` to `localhost` stops with a definite error saying the
//!   certificate does not verify;
//! - `verify_ca` with another CA: the same kind of error;
//! - `required` against the shared MariaDB, which offers no TLS: a definite
//!   error saying so.

mod support;

use replicator_common::nodes::InstanceState;
use replicator_tests::certs::make_certificates;
use replicator_tests::mariadb_pair::MariaSolo;
use replicator_tests::{shared_stack, Stack};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::Scenario;

fn tls_config(s: &Scenario, host: &str, port: u16, tls: Value) -> Value {
    let mut cfg = s.config();
    cfg["source"]["host"] = json!(host);
    cfg["source"]["port"] = json!(port);
    cfg["source"]["tls"] = tls;
    cfg
}

/// Waits for the RUNNING instance's error.
async fn instance_error(s: &Scenario, core: &replicator_tests::Process) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let err = s
            .instances()
            .await
            .into_iter()
            .find(|(_, i)| i.state == InstanceState::Running)
            .and_then(|(_, i)| i.error);
        if let Some(e) = err {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "no instance error in 30 s; core log:\n{}",
            core.tail(30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_modes_against_a_mariadb_with_a_test_certificate() {
    let shared: &'static Stack = shared_stack!();
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path(), "127.0.0.1", "IP:127.0.0.1");
    let p = |f: &str| certs.path().join(f).display().to_string();
    let solo = MariaSolo::start(&format!(
        "ssl_ca={}\nssl_cert={}\nssl_key={}",
        p("ca.pem"),
        p("server.pem"),
        p("server.key")
    ))
    .await
    .unwrap_or_else(|e| panic!("cannot start MariaDB with TLS: {e}"));
    let have: Vec<String> = solo.db.query("SELECT @@have_ssl").await;
    assert_eq!(have, vec!["YES".to_string()], "MariaDB did not enable TLS");
    let port = solo.db.port;
    let stack = shared.with_mysql(port).leak();

    // verify_ca: replicates, over TLS
    let s = Scenario::new(stack, "tlsca").await;
    s.put_config(tls_config(
        &s,
        "127.0.0.1",
        port,
        json!({"mode": "verify_ca", "ca_file": p("ca.pem")}),
    ))
    .await;
    let mut core = s.core("tls1", 6000);
    core.wait_for_log("replication starts", Duration::from_secs(30))
        .await;
    stack
        .sql(&format!(
            "INSERT INTO `{}`.`{}` (id, v, txn) VALUES (1, 1, 1), (2, 2, 2)",
            s.db, s.table
        ))
        .await;
    let msgs = s.wait_messages(2, Duration::from_secs(30)).await;
    assert_eq!(msgs.len(), 2);
    // the Core's sessions are encrypted
    let tls_sessions: Vec<String> = solo
        .db
        .query("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'SSL_ACCEPTS'")
        .await;
    let accepts: u64 = tls_sessions
        .first()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        accepts >= 2,
        "TLS handshakes accepted by the server: {accepts}"
    );
    core.stop().await;

    // verify_identity to `localhost`: the certificate names 127.0.0.1 only
    let s = Scenario::new(stack, "tlsid").await;
    s.put_config(tls_config(
        &s,
        "localhost",
        port,
        json!({"mode": "verify_identity", "ca_file": p("ca.pem")}),
    ))
    .await;
    let mut core = s.core("tls2", 6000);
    let e = instance_error(&s, &core).await;
    println!("verify_identity, wrong name: {e}");
    assert!(
        e.contains("source TLS") && e.contains("does not verify"),
        "{e}"
    );
    // and by the name it carries, it works
    s.put_config(tls_config(
        &s,
        "127.0.0.1",
        port,
        json!({"mode": "verify_identity", "ca_file": p("ca.pem")}),
    ))
    .await;
    core.wait_for_log("replication starts", Duration::from_secs(30))
        .await;
    core.stop().await;

    // verify_ca with a CA that did not sign the certificate
    let s = Scenario::new(stack, "tlsother").await;
    s.put_config(tls_config(
        &s,
        "127.0.0.1",
        port,
        json!({"mode": "verify_ca", "ca_file": p("other-ca.pem")}),
    ))
    .await;
    let mut core = s.core("tls3", 6000);
    let e = instance_error(&s, &core).await;
    println!("verify_ca, other CA: {e}");
    assert!(
        e.contains("source TLS") && e.contains("does not verify"),
        "{e}"
    );
    core.stop().await;

    // required against a server that offers no TLS (the shared MariaDB)
    let s = Scenario::new(shared, "tlsnone").await;
    let mut cfg = s.config();
    cfg["source"]["tls"] = json!({"mode": "required"});
    s.put_config(cfg).await;
    let mut core = s.core("tls4", 6000);
    let e = instance_error(&s, &core).await;
    println!("required, no TLS offered: {e}");
    assert!(e.contains("does not offer TLS"), "{e}");
    core.stop().await;
}
