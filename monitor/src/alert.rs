//! Alert vocabulary: rules, subjects, the stable alert id, and the
//! [`Condition`]s rule evaluation produces.
//!
//! An alert is deduplicated by (rule, subject): its id is derived from both,
//! readable (`task_not_running-orders-<hash>`) and always a valid znode name,
//! whatever the lengths of the names involved. The hash is FNV-1a, fixed
//! here, so ids stay the same across versions and monitors.

use replicator_common::nodes::Severity;
use replicator_common::paths::TaskRef;
use std::fmt;

/// The alert rules (docs/design.md §9; defaults in [`crate::config::Thresholds`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    TaskNotRunning,
    NoStandby,
    ReplicationLag,
    Stalled,
    TaskError,
    TaskRetrying,
    CoreLost,
    Failover,
    ConfigInvalid,
}

impl Rule {
    pub const ALL: [Rule; 9] = [
        Rule::TaskNotRunning,
        Rule::NoStandby,
        Rule::ReplicationLag,
        Rule::Stalled,
        Rule::TaskError,
        Rule::TaskRetrying,
        Rule::CoreLost,
        Rule::Failover,
        Rule::ConfigInvalid,
    ];

    /// The name used in alert JSON, logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Rule::TaskNotRunning => "task_not_running",
            Rule::NoStandby => "no_standby",
            Rule::ReplicationLag => "replication_lag",
            Rule::Stalled => "stalled",
            Rule::TaskError => "task_error",
            Rule::TaskRetrying => "task_retrying",
            Rule::CoreLost => "core_lost",
            Rule::Failover => "failover",
            Rule::ConfigInvalid => "config_invalid",
        }
    }

    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }

    pub fn severity(self) -> Severity {
        match self {
            Rule::TaskNotRunning | Rule::Stalled | Rule::TaskError | Rule::ConfigInvalid => {
                Severity::Critical
            }
            Rule::NoStandby | Rule::ReplicationLag | Rule::TaskRetrying | Rule::CoreLost => {
                Severity::Warning
            }
            Rule::Failover => Severity::Info,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What an alert is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    Task(TaskRef),
    Core(String),
}

impl Subject {
    /// Text for the id: `task:<task>` (`task:<group>/<task>` for cold tasks) or `core:<host>`.
    fn key(&self) -> String {
        match self {
            Subject::Task(t) => format!("task:{t}"),
            Subject::Core(h) => format!("core:{h}"),
        }
    }

    /// The alert JSON's `task` field.
    pub fn task(&self) -> Option<String> {
        match self {
            Subject::Task(t) => Some(t.to_string()),
            Subject::Core(_) => None,
        }
    }

    /// The alert JSON's `core` field.
    pub fn core(&self) -> Option<String> {
        match self {
            Subject::Core(h) => Some(h.clone()),
            Subject::Task(_) => None,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Task(t) => write!(f, "task {t}"),
            Subject::Core(h) => write!(f, "core {h}"),
        }
    }
}

/// (rule, subject): what alerts are deduplicated by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AlertKey {
    pub rule: Rule,
    pub subject: Subject,
}

impl AlertKey {
    pub fn new(rule: Rule, subject: Subject) -> Self {
        Self { rule, subject }
    }

    /// The alert id: `<rule>-<readable subject, at most 80 chars>-<16 hex digits>`.
    pub fn id(&self) -> String {
        let key = self.subject.key();
        let readable: String = match &self.subject {
            Subject::Task(t) => t.to_string(),
            Subject::Core(h) => h.clone(),
        }
        .chars()
        .map(|c| if c == '/' { '.' } else { c })
        .take(80)
        .collect();
        let hash = fnv1a(format!("{}\n{key}", self.rule.name()).as_bytes());
        format!("{}-{readable}-{hash:016x}", self.rule.name())
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Whether a condition has lasted long enough to alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Past its threshold: an alert fires (or stays active).
    Firing,
    /// True but not yet for long enough: an active alert stays, none fires.
    Pending,
}

/// One rule's verdict on one subject. Subjects with no condition are clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub key: AlertKey,
    pub status: Status,
    pub message: String,
    /// Distinguishes separate events under one key (the new RUNNING instance
    /// for `failover`): a new occurrence fires again even while the alert is active.
    pub occurrence: Option<String>,
}

impl Condition {
    pub fn firing(rule: Rule, subject: Subject, message: impl Into<String>) -> Self {
        Self {
            key: AlertKey::new(rule, subject),
            status: Status::Firing,
            message: message.into(),
            occurrence: None,
        }
    }

    pub fn pending(rule: Rule, subject: Subject, message: impl Into<String>) -> Self {
        Self {
            status: Status::Pending,
            ..Self::firing(rule, subject, message)
        }
    }

    /// Firing when `since` is at least `after` ms before `now`, pending otherwise.
    pub fn after(
        rule: Rule,
        subject: Subject,
        message: impl Into<String>,
        since: i64,
        now: i64,
        after: i64,
    ) -> Self {
        if now - since >= after {
            Self::firing(rule, subject, message)
        } else {
            Self::pending(rule, subject, message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use replicator_common::names::validate_name;

    #[test]
    fn ids_are_stable_valid_and_distinct() {
        let hot = AlertKey::new(
            Rule::TaskNotRunning,
            Subject::Task(TaskRef::hot("g.t").unwrap()),
        );
        let cold = AlertKey::new(
            Rule::TaskNotRunning,
            Subject::Task(TaskRef::cold("g", "t").unwrap()),
        );
        assert_ne!(hot.id(), cold.id());
        assert_eq!(hot.id(), hot.clone().id());
        assert!(
            hot.id().starts_with("task_not_running-g.t-"),
            "{}",
            hot.id()
        );
        let long = "x".repeat(128);
        for key in [
            hot,
            cold,
            AlertKey::new(
                Rule::ConfigInvalid,
                Subject::Task(TaskRef::cold(&long, &long).unwrap()),
            ),
            AlertKey::new(Rule::CoreLost, Subject::Core(long.clone())),
        ] {
            validate_name(&key.id()).unwrap();
        }
        // a core and a task of the same name are different subjects
        assert_ne!(
            AlertKey::new(Rule::TaskError, Subject::Core("a".into())).id(),
            AlertKey::new(Rule::TaskError, Subject::Task(TaskRef::hot("a").unwrap())).id()
        );
        // fixed: a change here would orphan every stored alert
        assert_eq!(
            AlertKey::new(Rule::CoreLost, Subject::Core("h1".into())).id(),
            format!("core_lost-h1-{:016x}", fnv1a(b"core_lost\ncore:h1"))
        );
    }

    #[test]
    fn rule_names_round_trip() {
        for r in Rule::ALL {
            assert_eq!(Rule::from_name(r.name()), Some(r));
        }
        assert_eq!(Rule::from_name("nope"), None);
    }
}
