//! ZooKeeper access control: with `--zk-auth` on the Server and the Cores,
//! every znode under the root carries a creator-only ACL, so a client
//! without the replicator's credentials can read nothing (not even the
//! task config with its password reference) and create or delete nothing.
//! The source password comes from `password_env` on the Core host.

mod server_support;

use replicator_tests::{names::random_hex, shared_stack, unique_root};
use serde_json::json;
use server_support::{dump, table_regex, task_config, task_name, ServerProc};
use std::time::Duration;
use zookeeper_client::{Acls, Client, CreateMode, Error as ZkErr, Permission};

const WAIT: Duration = Duration::from_secs(30);

async fn client(stack: &replicator_tests::Stack, auth: Option<&str>) -> Client {
    let mut c = Client::connector().with_session_timeout(Duration::from_secs(10));
    if let Some(a) = auth {
        c = c.with_auth("digest", a.as_bytes());
    }
    c.connect(stack.zk_connect())
        .await
        .expect("ZooKeeper session")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_credentials_nothing_under_the_root_can_be_read_or_written() {
    let stack = shared_stack!();
    let root = unique_root();
    let auth = format!("replicator:zk-{}", random_hex(12));
    let pw_env = "REPLICATOR_TEST_SOURCE_PASSWORD";

    // Given a Server and a Core that authenticate to ZooKeeper
    let auth_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(auth_file.path(), format!("{auth}\n")).unwrap();
    let server = ServerProc::start(
        stack,
        &root,
        None,
        &["--zk-auth-file", &auth_file.path().display().to_string()],
        &[],
    )
    .await;
    let db = stack.create_database("acl").await;
    stack
        .sql(&format!(
            "CREATE TABLE `{db}`.t (id BIGINT PRIMARY KEY, v INT)"
        ))
        .await;
    let name = task_name("acl");
    // and a task whose password is an environment variable on the Core host
    let mut cfg = task_config(stack, &name, &[table_regex(&db, "t")]);
    let source = cfg["source"].as_object_mut().unwrap();
    source.remove("password");
    source.insert("password_env".into(), json!(pw_env));
    let created = server.call_json("POST", "/api/v1/tasks", &cfg);
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["config"]["source"]["password_env"], pw_env);
    assert!(created.body["config"]["source"].get("password").is_none());
    let env = [
        ("REPLICATOR_ZK_AUTH", auth.as_str()),
        (pw_env, stack.mysql_password()),
    ];
    let mut core = stack.core(&root, "h1", &["--task", &name], &env);
    core.wait_for_log("replication starts", WAIT).await;
    stack
        .sql(&format!("INSERT INTO `{db}`.t VALUES (1, 1)"))
        .await;
    let msgs = stack.read_topic_until(&format!("{db}.t"), 1, WAIT).await;
    assert_eq!(
        msgs.len(),
        1,
        "the Core read the source with the env password"
    );
    // wait for the context and control nodes to exist
    let authed = client(stack, Some(&auth)).await;
    let task = format!("{root}/tasks/{name}");
    let context = format!("{task}/context");
    replicator_tests::wait_until(WAIT, "context written", || async {
        authed.check_stat(&context).await.unwrap().is_some()
    })
    .await;
    let instances = authed
        .list_children(&format!("{task}/instances"))
        .await
        .unwrap();
    assert_eq!(instances.len(), 1);
    let instance = format!("{task}/instances/{}", instances[0]);
    let control = format!("{task}/control");

    // Then every znode under the root is readable and writable only by that identity
    let tree = dump(&authed, &root).await;
    assert!(tree.len() >= 7, "{:?}", tree.keys());
    for path in tree.keys() {
        let (acls, _) = authed.get_acl(path).await.unwrap();
        assert_eq!(acls.len(), 1, "{path}: {acls:?}");
        assert_eq!(acls[0].scheme(), "digest", "{path}: {acls:?}");
        assert!(acls[0].id().starts_with("replicator:"), "{path}: {acls:?}");
        assert_eq!(acls[0].permission(), Permission::ALL, "{path}");
    }

    // and a client without credentials can read nothing
    let anon = client(stack, None).await;
    let stranger = client(stack, Some("stranger:guess")).await;
    for c in [&anon, &stranger] {
        for path in [&root, &task, &context, &control, &instance] {
            assert_eq!(
                c.get_data(path).await.unwrap_err(),
                ZkErr::NoAuth,
                "read {path}"
            );
        }
        for path in [&root, &task] {
            assert_eq!(
                c.list_children(path).await.unwrap_err(),
                ZkErr::NoAuth,
                "list {path}"
            );
        }
        // nor write, create or delete anything
        let open = CreateMode::Persistent.with_acls(Acls::anyone_all());
        for parent in [root.clone(), format!("{root}/tasks"), task.clone()] {
            let path = format!("{parent}/intruder");
            assert_eq!(
                c.create(&path, b"x", &open).await.unwrap_err(),
                ZkErr::NoAuth,
                "create {path}"
            );
        }
        for path in [&task, &control] {
            assert_eq!(
                c.set_data(path, b"{}", None).await.unwrap_err(),
                ZkErr::NoAuth,
                "set {path}"
            );
        }
        for path in [&control, &context, &instance] {
            assert_eq!(
                c.delete(path, None).await.unwrap_err(),
                ZkErr::NoAuth,
                "delete {path}"
            );
        }
    }
    assert_eq!(dump(&authed, &root).await.len(), tree.len());

    // The API still works for the authenticated server, and deletes with its identity
    let del = server.call("DELETE", &format!("/api/v1/tasks/{name}"), None);
    assert_eq!(del.status, 200, "{}", del.text);
    assert!(authed.check_stat(&task).await.unwrap().is_none());
    assert!(!server
        .process
        .log()
        .contains(auth.split(':').nth(1).unwrap()));
    core.stop().await;
}
