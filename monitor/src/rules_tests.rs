//! Unit tests of [`super::evaluate`] on hand-built snapshots.

use super::*;
use crate::alert::AlertKey;
use crate::snapshot::{ContextState, InstanceSnapshot};
use replicator_common::config::TaskConfig;
use replicator_common::nodes::{
    AlertState, Desired, InstanceInfo, InstanceState, Retrying, Severity,
};

const T0: i64 = 1_700_000_000_000;

fn th() -> Thresholds {
    Thresholds {
        not_running_grace_ms: 1000,
        no_standby_grace_ms: 1000,
        lag_ms: 5000,
        stalled_ms: 3000,
        core_lost_grace_ms: 500,
        core_lost_expire_ms: 60_000,
        failover_hold_ms: 2000,
        retrying_ms: 2000,
        ..Thresholds::default()
    }
}

fn inst(host: &str, seq: i64, state: InstanceState, error: Option<&str>) -> InstanceSnapshot {
    InstanceSnapshot {
        name: format!("{host}-{seq:010}"),
        seq,
        info: Some(InstanceInfo {
            host: host.into(),
            pid: 1,
            state,
            since_ms: T0,
            error: error.map(str::to_string),
            retrying: None,
        }),
    }
}

/// `i` with a streak of `attempts` transient failures since `since_ms`.
fn failing(mut i: InstanceSnapshot, error: &str, since_ms: i64, attempts: u32) -> InstanceSnapshot {
    if let Some(info) = i.info.as_mut() {
        info.retrying = Some(Retrying {
            error: error.into(),
            since_ms,
            attempts,
        });
    }
    i
}

fn config(name: &str, redundancy: u32) -> ConfigState {
    let json = serde_json::json!({"name": name, "redundancy": redundancy,
        "source": {"host": "127.0.0.1", "user": "repl", "password": "pw", "server_id": 7},
        "sink": {"brokers": "127.0.0.1:9092"}});
    ConfigState::Valid(Box::new(
        TaskConfig::parse(json.to_string().as_bytes()).unwrap(),
    ))
}

fn progress(file: &str, pos: u64, gtid: Option<&str>, event_ts_ms: i64) -> ContextState {
    ContextState::Valid(Box::new(Progress {
        position: BinlogPos::new(file, pos),
        gtid: gtid.map(|g| g.parse().expect("a GTID set")),
        event_ts_ms,
        events: 10,
        updated_ms: event_ts_ms,
        epoch: 1,
        clean: false,
        server: None,
        accepted_gap: 0,
        snapshot: None,
    }))
}

fn task(name: &str, instances: Vec<InstanceSnapshot>) -> TaskSnapshot {
    TaskSnapshot {
        task: TaskRef::hot(name).unwrap(),
        config: config(name, 2),
        desired: Desired::Running,
        instances,
        context: ContextState::Missing,
        source: None,
    }
}

fn healthy(name: &str) -> TaskSnapshot {
    task(
        name,
        vec![
            inst("h1", 1, InstanceState::Running, None),
            inst("h2", 2, InstanceState::Standby, None),
        ],
    )
}

fn snap(tasks: Vec<TaskSnapshot>, cores: &[&str]) -> Snapshot {
    Snapshot {
        tasks,
        cores: cores.iter().map(|c| (c.to_string(), None)).collect(),
        alerts: Vec::new(),
    }
}

/// Runs evaluations at the given times over the same snapshot.
fn run(s: &Snapshot, state: &mut RuleState, now: i64) -> Vec<(Rule, Status)> {
    let e = evaluate(s, state, now, &th());
    *state = e.state;
    e.conditions
        .iter()
        .map(|c| (c.key.rule, c.status))
        .collect()
}

#[test]
fn a_healthy_cluster_raises_nothing() {
    let mut t = healthy("orders");
    t.context = progress("mysql-bin.000001", 100, None, T0);
    let s = snap(vec![t], &["h1", "h2"]);
    let mut st = RuleState::default();
    assert!(run(&s, &mut st, T0).is_empty());
    assert!(run(&s, &mut st, T0 + 1000).is_empty());
}

#[test]
fn task_not_running_waits_for_its_grace_and_spares_paused_tasks() {
    let down = snap(vec![task("t", vec![])], &[]);
    let mut st = RuleState::default();
    assert_eq!(
        run(&down, &mut st, T0),
        vec![(Rule::TaskNotRunning, Status::Pending)]
    );
    assert_eq!(
        run(&down, &mut st, T0 + 999),
        vec![(Rule::TaskNotRunning, Status::Pending)]
    );
    assert_eq!(
        run(&down, &mut st, T0 + 1000),
        vec![(Rule::TaskNotRunning, Status::Firing)]
    );
    // standbys alone do not count as running
    let standby_only = snap(
        vec![task("t", vec![inst("h1", 3, InstanceState::Standby, None)])],
        &[],
    );
    assert!(
        run(&standby_only, &mut st, T0 + 1100).contains(&(Rule::TaskNotRunning, Status::Firing))
    );
    let mut paused = task("t", vec![]);
    paused.desired = Desired::Paused;
    assert!(run(&snap(vec![paused], &[]), &mut st, T0 + 5000).is_empty());
    // cold tasks too
    let mut cold = task("c", vec![]);
    cold.task = TaskRef::cold("g", "c").unwrap();
    let mut st = RuleState::default();
    run(&snap(vec![cold.clone()], &[]), &mut st, T0);
    assert_eq!(
        run(&snap(vec![cold], &[]), &mut st, T0 + 1000),
        vec![(Rule::TaskNotRunning, Status::Firing)]
    );
}

#[test]
fn no_standby_follows_the_configured_redundancy() {
    let one = task("t", vec![inst("h1", 1, InstanceState::Running, None)]);
    let mut st = RuleState::default();
    assert_eq!(
        run(&snap(vec![one.clone()], &[]), &mut st, T0),
        vec![(Rule::NoStandby, Status::Pending)]
    );
    assert_eq!(
        run(&snap(vec![one.clone()], &[]), &mut st, T0 + 1000),
        vec![(Rule::NoStandby, Status::Firing)]
    );
    let mut solo = one.clone();
    solo.config = config("t", 1);
    assert!(run(&snap(vec![solo], &[]), &mut st, T0 + 2000).is_empty());
    let mut three = healthy("t");
    three.config = config("t", 3);
    run(&snap(vec![three.clone()], &[]), &mut st, T0);
    assert_eq!(
        run(&snap(vec![three], &[]), &mut st, T0 + 5000),
        vec![(Rule::NoStandby, Status::Firing)]
    );
    // cold tasks have no standbys
    let mut cold = one;
    cold.task = TaskRef::cold("g", "t").unwrap();
    assert!(run(&snap(vec![cold], &[]), &mut RuleState::default(), T0).is_empty());
}

#[test]
fn lag_counts_only_while_running_and_not_paused() {
    let mut t = healthy("t");
    t.context = progress("f.000001", 4, None, T0);
    let s = snap(vec![t.clone()], &[]);
    let mut st = RuleState::default();
    assert!(run(&s, &mut st, T0 + 5000).is_empty());
    assert_eq!(
        run(&s, &mut st, T0 + 5001),
        vec![(Rule::ReplicationLag, Status::Firing)]
    );
    let mut paused = t.clone();
    paused.desired = Desired::Paused;
    assert!(run(&snap(vec![paused], &[]), &mut st, T0 + 60_000).is_empty());
    let mut standby = t;
    standby.instances = vec![
        inst("h1", 1, InstanceState::Standby, None),
        inst("h2", 2, InstanceState::Standby, None),
    ];
    let rules: Vec<Rule> = run(&snap(vec![standby], &[]), &mut st, T0 + 60_000)
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert!(!rules.contains(&Rule::ReplicationLag), "{rules:?}");
}

fn source(file: &str, pos: u64, gtid: Option<&str>) -> Option<SourceStatus> {
    Some(SourceStatus {
        file: file.into(),
        pos,
        gtid: gtid.map(str::to_string),
        observed_ms: T0,
    })
}

#[test]
fn stalled_needs_a_still_context_and_a_source_ahead() {
    let mut t = healthy("t");
    let now = |d: i64| T0 + d;
    t.context = progress("b.000001", 100, None, now(0));
    t.source = source("b.000001", 500, None);
    let mut st = RuleState::default();
    let stalled = |st: &mut RuleState, t: &TaskSnapshot, at: i64| {
        run(&snap(vec![t.clone()], &[]), st, at)
            .into_iter()
            .filter(|(r, _)| *r == Rule::Stalled)
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
    };
    assert_eq!(stalled(&mut st, &t, now(0)), vec![Status::Pending]);
    assert_eq!(stalled(&mut st, &t, now(2999)), vec![Status::Pending]);
    assert_eq!(stalled(&mut st, &t, now(3000)), vec![Status::Firing]);
    // the context moves: clear, and the clock starts again
    t.context = progress("b.000001", 200, None, now(3100));
    assert!(stalled(&mut st, &t, now(3100)).is_empty());
    assert_eq!(stalled(&mut st, &t, now(3200)), vec![Status::Pending]);
    // caught up: clear
    t.source = source("b.000001", 200, None);
    assert!(stalled(&mut st, &t, now(9000)).is_empty());
    // a rotation with no transaction after it: GTIDs say caught up
    t.context = progress("b.000001", 200, Some("0-1-42"), now(9000));
    t.source = source("b.000002", 385, Some("0-1-42"));
    assert!(stalled(&mut st, &t, now(9000)).is_empty());
    assert!(stalled(&mut st, &t, now(20_000)).is_empty());
    t.source = source("b.000002", 900, Some("0-1-43"));
    stalled(&mut st, &t, now(20_000));
    assert_eq!(stalled(&mut st, &t, now(23_000)), vec![Status::Firing]);
    // source sample missing for a while: stays pending, does not resolve
    t.source = None;
    assert_eq!(stalled(&mut st, &t, now(24_000)), vec![Status::Pending]);
}

#[test]
fn caught_up_compares_gtids_then_positions() {
    // a context's GTID is a real GTID set (the node codec checks it)
    const UUID: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    let p = |file: &str, pos, gtid: Option<&str>| Progress {
        position: BinlogPos::new(file, pos),
        gtid: gtid.map(|g| g.parse().expect("a GTID set")),
        event_ts_ms: 0,
        events: 0,
        updated_ms: 0,
        epoch: 0,
        clean: false,
        server: None,
        accepted_gap: 0,
        snapshot: None,
    };
    let s = |file: &str, pos, gtid: Option<&str>| source(file, pos, gtid).unwrap();
    assert_eq!(
        caught_up(&p("a.000001", 5, None), &s("a.000001", 5, None)),
        Some(true)
    );
    assert_eq!(
        caught_up(&p("a.000001", 4, None), &s("a.000001", 5, None)),
        Some(false)
    );
    assert_eq!(
        caught_up(&p("a.000001", 9, None), &s("a.000002", 5, None)),
        Some(false)
    );
    assert_eq!(
        caught_up(&p("a.000001", 9, None), &s("other.000002", 5, None)),
        None
    );
    assert_eq!(
        caught_up(
            &p("a.000001", 9, Some("0-1-5,1-1-3")),
            &s("a.000002", 5, Some("0-1-5"))
        ),
        Some(true)
    );
    assert_eq!(
        caught_up(
            &p("a.000001", 9, Some(&format!("{UUID}:1-5"))),
            &s("a.000002", 5, Some(&format!("{UUID}:1-5")))
        ),
        Some(true)
    );
}

#[test]
fn task_error_reports_the_first_instance_error() {
    let t = task(
        "t",
        vec![
            inst(
                "h1",
                1,
                InstanceState::Running,
                Some("access denied on the source"),
            ),
            inst("h2", 2, InstanceState::Standby, Some("access denied")),
        ],
    );
    let e = evaluate(&snap(vec![t], &[]), &RuleState::default(), T0, &th());
    assert_eq!(e.conditions.len(), 1);
    let c = &e.conditions[0];
    assert_eq!(c.key.rule, Rule::TaskError);
    assert_eq!(c.status, Status::Firing);
    assert!(c.message.contains("h1-0000000001"), "{}", c.message);
    assert!(c.message.contains("1 more"), "{}", c.message);
}

/// A task whose RUNNING instance has failed `attempts` runs since `since_ms`.
fn retrying_task(since_ms: i64, attempts: u32) -> TaskSnapshot {
    task(
        "t",
        vec![
            failing(
                inst("h1", 1, InstanceState::Running, None),
                "no reachable broker in `127.0.0.1:9`",
                since_ms,
                attempts,
            ),
            inst("h2", 2, InstanceState::Standby, None),
        ],
    )
}

fn retrying_conditions(t: &TaskSnapshot, st: &mut RuleState, now: i64) -> Vec<Condition> {
    let e = evaluate(&snap(vec![t.clone()], &[]), st, now, &th());
    *st = e.state;
    e.conditions
        .into_iter()
        .filter(|c| c.key.rule == Rule::TaskRetrying)
        .collect()
}

#[test]
fn task_retrying_fires_after_its_threshold_and_resolves_when_the_streak_ends() {
    let mut st = RuleState::default();
    // a streak that started now is pending until it is 2 s old
    let c = retrying_conditions(&retrying_task(T0, 1), &mut st, T0);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].status, Status::Pending);
    let c = retrying_conditions(&retrying_task(T0, 3), &mut st, T0 + 1999);
    assert_eq!(c[0].status, Status::Pending);
    let c = retrying_conditions(&retrying_task(T0, 7), &mut st, T0 + 45_000);
    assert_eq!(c[0].status, Status::Firing);
    assert_eq!(c[0].key.rule.severity(), Severity::Warning);
    assert_eq!(
        c[0].message,
        "task t keeps failing: 7 failed runs in 45 s, last error: no reachable broker in `127.0.0.1:9`"
    );
    // the streak ends (a run delivered rows): nothing holds, the alert resolves
    assert!(retrying_conditions(&healthy("t"), &mut st, T0 + 46_000).is_empty());
    // a new streak counts from its own start
    let c = retrying_conditions(&retrying_task(T0 + 50_000, 1), &mut st, T0 + 50_500);
    assert_eq!(c[0].status, Status::Pending);
    assert!(
        c[0].message.contains("1 failed run in 0 s"),
        "{}",
        c[0].message
    );
}

#[test]
fn task_retrying_times_the_streak_from_the_instance_node() {
    // a monitor that just started (or a new leader) sees the streak's true age
    let c = retrying_conditions(&retrying_task(T0, 4), &mut RuleState::default(), T0 + 2000);
    assert_eq!(c[0].status, Status::Firing);
    // a streak on a standby, a definite error, a paused task: no task_retrying
    let mut t = healthy("t");
    t.instances[1] = failing(t.instances[1].clone(), "timeout", T0, 9);
    assert!(retrying_conditions(&t, &mut RuleState::default(), T0 + 9000).is_empty());
    let mut t = retrying_task(T0, 4);
    if let Some(info) = t.instances[0].info.as_mut() {
        info.error = Some("binlog gone".into());
    }
    let e = evaluate(&snap(vec![t], &[]), &RuleState::default(), T0 + 9000, &th());
    let rules: Vec<Rule> = e.conditions.iter().map(|c| c.key.rule).collect();
    assert_eq!(rules, vec![Rule::TaskError]);
    let mut t = retrying_task(T0, 4);
    t.desired = Desired::Paused;
    assert!(retrying_conditions(&t, &mut RuleState::default(), T0 + 9000).is_empty());
}

#[test]
fn stalled_carries_the_last_error_of_a_task_that_keeps_failing() {
    let mut t = retrying_task(T0, 3);
    t.context = progress("b.000001", 100, None, T0);
    t.source = source("b.000001", 500, None);
    let mut st = RuleState::default();
    run(&snap(vec![t.clone()], &[]), &mut st, T0);
    let e = evaluate(&snap(vec![t.clone()], &[]), &st, T0 + 3000, &th());
    let stalled = e
        .conditions
        .iter()
        .find(|c| c.key.rule == Rule::Stalled)
        .expect("stalled");
    assert_eq!(stalled.status, Status::Firing);
    assert!(
        stalled
            .message
            .ends_with("; last error: no reachable broker in `127.0.0.1:9`"),
        "{}",
        stalled.message
    );
    // without a streak, no error to tell
    t.instances = healthy("t").instances;
    let e = evaluate(&snap(vec![t], &[]), &st, T0 + 3000, &th());
    let stalled = e
        .conditions
        .iter()
        .find(|c| c.key.rule == Rule::Stalled)
        .expect("stalled");
    assert!(
        !stalled.message.contains("last error"),
        "{}",
        stalled.message
    );
}

#[test]
fn config_invalid_fires_at_once_and_empty_nodes_do_not() {
    let mut t = healthy("t");
    t.config = ConfigState::Invalid("sink.brokers: is required".into());
    let e = evaluate(
        &snap(vec![t.clone()], &[]),
        &RuleState::default(),
        T0,
        &th(),
    );
    assert_eq!(e.conditions[0].key.rule, Rule::ConfigInvalid);
    assert_eq!(e.conditions[0].status, Status::Firing);
    t.config = ConfigState::Empty;
    assert!(
        evaluate(&snap(vec![t], &[]), &RuleState::default(), T0, &th())
            .conditions
            .is_empty()
    );
}

#[test]
fn failover_is_an_event_held_for_a_while() {
    let mut st = RuleState::default();
    let a = healthy("t");
    assert!(run(&snap(vec![a.clone()], &[]), &mut st, T0).is_empty());
    // the leader goes; for a moment nothing runs (within grace)
    let gap = task("t", vec![inst("h2", 2, InstanceState::Standby, None)]);
    run(&snap(vec![gap], &[]), &mut st, T0 + 100);
    let b = task(
        "t",
        vec![
            inst("h2", 2, InstanceState::Running, None),
            inst("h1", 5, InstanceState::Standby, None),
        ],
    );
    let e = evaluate(&snap(vec![b.clone()], &[]), &st, T0 + 200, &th());
    st = e.state;
    assert_eq!(e.conditions.len(), 1);
    assert_eq!(e.conditions[0].key.rule, Rule::Failover);
    assert_eq!(e.conditions[0].occurrence.as_deref(), Some("h2-0000000002"));
    assert!(e.conditions[0].message.contains("h1-0000000001"));
    assert_eq!(
        run(&snap(vec![b.clone()], &[]), &mut st, T0 + 2199).len(),
        1
    );
    assert!(run(&snap(vec![b], &[]), &mut st, T0 + 2200).is_empty());
}

#[test]
fn core_lost_fires_after_grace_resolves_on_return_and_expires() {
    let mut st = RuleState::default();
    run(&snap(vec![], &["h1", "h2"]), &mut st, T0);
    let gone = snap(vec![], &["h2"]);
    assert_eq!(
        run(&gone, &mut st, T0 + 100),
        vec![(Rule::CoreLost, Status::Pending)]
    );
    assert_eq!(
        run(&gone, &mut st, T0 + 600),
        vec![(Rule::CoreLost, Status::Firing)]
    );
    assert!(run(&snap(vec![], &["h1", "h2"]), &mut st, T0 + 700).is_empty());
    run(&gone, &mut st, T0 + 1000);
    assert_eq!(run(&gone, &mut st, T0 + 60_999).len(), 1);
    assert!(run(&gone, &mut st, T0 + 61_000).is_empty());
    assert!(run(&gone, &mut st, T0 + 61_500).is_empty());
}

fn stored(key: &AlertKey, since_ms: i64) -> Alert {
    Alert {
        id: key.id(),
        rule: key.rule.name().into(),
        task: key.subject.task(),
        core: key.subject.core(),
        severity: Severity::Warning,
        state: AlertState::Firing,
        since_ms,
        message: "m".into(),
    }
}

#[test]
fn adopted_alerts_stay_active_with_a_cold_state() {
    let t = TaskRef::hot("t").unwrap();
    let alerts = vec![
        stored(
            &AlertKey::new(Rule::TaskNotRunning, Subject::Task(t.clone())),
            T0,
        ),
        stored(
            &AlertKey::new(Rule::CoreLost, Subject::Core("h9".into())),
            T0,
        ),
        stored(&AlertKey::new(Rule::Failover, Subject::Task(t.clone())), T0),
    ];
    let mut st = RuleState::default();
    st.adopt(&alerts, &th());
    let e = evaluate(&snap(vec![task("t", vec![])], &[]), &st, T0 + 10, &th());
    let mut got: Vec<(Rule, Status, Option<String>)> = e
        .conditions
        .iter()
        .map(|c| (c.key.rule, c.status, c.occurrence.clone()))
        .collect();
    got.sort_by_key(|g| g.0);
    assert_eq!(
        got,
        vec![
            (Rule::TaskNotRunning, Status::Firing, None),
            (Rule::CoreLost, Status::Firing, None),
            (Rule::Failover, Status::Firing, None),
        ]
    );
    assert_eq!(parse_task("g/t"), Some(TaskRef::cold("g", "t").unwrap()));
}
