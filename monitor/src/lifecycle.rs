//! Alert lifecycle, pure: which alerts fire, repeat and resolve.
//!
//! The [`Book`] holds the active alerts, one per (rule, subject). Given the
//! conditions of an evaluation, [`Book::plan`] says what changes: a firing
//! condition with no active alert *fires*; an active alert *repeats* every
//! repeat interval while its condition fires; an active alert whose condition
//! is gone *resolves* (a pending condition keeps it active). A new occurrence
//! of an event rule (another failover) fires again under the same id.
//!
//! The caller persists each change (`/alerts/<id>`), then [`Book::apply`]s it
//! and notifies; a change that could not be persisted is neither applied nor
//! notified, so the next evaluation plans it again. A new leader builds its
//! book with [`Book::adopt`] from `/alerts`: those alerts are active already
//! and are not fired again.

use crate::alert::{Condition, Status};
use replicator_common::nodes::{Alert, AlertState};
use std::collections::{BTreeMap, BTreeSet};

/// What happens to one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// First notification (or a new occurrence of an event).
    Fire,
    /// Still active after the repeat interval.
    Repeat,
    /// Condition gone.
    Resolve,
    /// Silent: an adopted alert learns the occurrence of its condition.
    Track,
}

/// One planned change, with the alert as it is to be stored and sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub alert: Alert,
    pub occurrence: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Active {
    alert: Alert,
    occurrence: Option<String>,
    last_sent_ms: i64,
}

/// The active alerts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Book {
    active: BTreeMap<String, Active>,
}

impl Book {
    /// A book holding alerts a previous leader stored: active, not to be
    /// fired again; their next repeat is one interval from `now`.
    pub fn adopt(alerts: Vec<Alert>, now: i64) -> Book {
        let active = alerts
            .into_iter()
            .filter(|a| a.state == AlertState::Firing)
            .map(|alert| {
                (
                    alert.id.clone(),
                    Active {
                        alert,
                        occurrence: None,
                        last_sent_ms: now,
                    },
                )
            })
            .collect();
        Book { active }
    }

    /// The active alerts, by id.
    pub fn alerts(&self) -> Vec<Alert> {
        self.active.values().map(|a| a.alert.clone()).collect()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.active.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.active.len()
    }

    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// The changes that `conditions` call for at `now`.
    pub fn plan(&self, conditions: &[Condition], now: i64, repeat_ms: i64) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut seen = BTreeSet::new();
        for c in conditions {
            let id = c.key.id();
            if !seen.insert(id.clone()) {
                continue;
            }
            let Some(a) = self.active.get(&id) else {
                if c.status == Status::Firing {
                    changes.push(Change {
                        kind: ChangeKind::Fire,
                        alert: new_alert(id, c, now),
                        occurrence: c.occurrence.clone(),
                    });
                }
                continue;
            };
            let new_occurrence = c.status == Status::Firing
                && c.occurrence.is_some()
                && a.occurrence.is_some()
                && c.occurrence != a.occurrence;
            if new_occurrence {
                changes.push(Change {
                    kind: ChangeKind::Fire,
                    alert: new_alert(id, c, now),
                    occurrence: c.occurrence.clone(),
                });
            } else if a.occurrence.is_none() && c.occurrence.is_some() {
                changes.push(Change {
                    kind: ChangeKind::Track,
                    alert: a.alert.clone(),
                    occurrence: c.occurrence.clone(),
                });
            } else if c.status == Status::Firing && now - a.last_sent_ms >= repeat_ms {
                let mut alert = a.alert.clone();
                alert.message = c.message.clone();
                changes.push(Change {
                    kind: ChangeKind::Repeat,
                    alert,
                    occurrence: a.occurrence.clone(),
                });
            }
        }
        for (id, a) in &self.active {
            if seen.contains(id) {
                continue;
            }
            let mut alert = a.alert.clone();
            alert.state = AlertState::Resolved;
            alert.message = format!(
                "resolved after {} s: {}",
                (now - a.alert.since_ms).max(0) / 1000,
                a.alert.message
            );
            alert.since_ms = now;
            changes.push(Change {
                kind: ChangeKind::Resolve,
                alert,
                occurrence: a.occurrence.clone(),
            });
        }
        changes
    }

    /// Records a change once it is persisted.
    pub fn apply(&mut self, change: &Change, now: i64) {
        let id = &change.alert.id;
        match change.kind {
            ChangeKind::Fire | ChangeKind::Repeat => {
                self.active.insert(
                    id.clone(),
                    Active {
                        alert: change.alert.clone(),
                        occurrence: change.occurrence.clone(),
                        last_sent_ms: now,
                    },
                );
            }
            ChangeKind::Resolve => {
                self.active.remove(id);
            }
            ChangeKind::Track => {
                if let Some(a) = self.active.get_mut(id) {
                    a.occurrence = change.occurrence.clone();
                }
            }
        }
    }
}

fn new_alert(id: String, c: &Condition, now: i64) -> Alert {
    Alert {
        id,
        rule: c.key.rule.name().to_string(),
        task: c.key.subject.task(),
        core: c.key.subject.core(),
        severity: c.key.rule.severity(),
        state: AlertState::Firing,
        since_ms: now,
        message: c.message.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Rule, Subject};
    use replicator_common::paths::TaskRef;

    const REPEAT: i64 = 10_000;

    fn cond(status: Status) -> Condition {
        let s = Subject::Task(TaskRef::hot("t").unwrap());
        match status {
            Status::Firing => Condition::firing(Rule::TaskNotRunning, s, "down"),
            Status::Pending => Condition::pending(Rule::TaskNotRunning, s, "down"),
        }
    }

    fn failover(to: &str) -> Condition {
        let mut c = Condition::firing(
            Rule::Failover,
            Subject::Task(TaskRef::hot("t").unwrap()),
            format!("moved to {to}"),
        );
        c.occurrence = Some(to.to_string());
        c
    }

    /// Plans and applies everything; returns the kinds.
    fn step(book: &mut Book, conds: &[Condition], now: i64) -> Vec<ChangeKind> {
        let changes = book.plan(conds, now, REPEAT);
        for c in &changes {
            book.apply(c, now);
        }
        changes.iter().map(|c| c.kind).collect()
    }

    #[test]
    fn fires_once_repeats_and_resolves_once() {
        let mut b = Book::default();
        assert!(step(&mut b, &[cond(Status::Pending)], 0).is_empty());
        let changes = b.plan(&[cond(Status::Firing)], 100, REPEAT);
        assert_eq!(changes.len(), 1);
        let fired = &changes[0].alert;
        assert_eq!(fired.state, AlertState::Firing);
        assert_eq!(fired.rule, "task_not_running");
        assert_eq!(fired.task.as_deref(), Some("t"));
        assert_eq!(fired.since_ms, 100);
        b.apply(&changes[0], 100);
        assert!(step(&mut b, &[cond(Status::Firing)], 200).is_empty());
        // pending keeps it, without notification
        assert!(step(&mut b, &[cond(Status::Pending)], 300).is_empty());
        assert_eq!(
            step(&mut b, &[cond(Status::Firing)], 100 + REPEAT),
            vec![ChangeKind::Repeat]
        );
        assert!(step(&mut b, &[cond(Status::Firing)], 200 + REPEAT).is_empty());
        let changes = b.plan(&[], 20_100, REPEAT);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].kind, ChangeKind::Resolve);
        assert_eq!(changes[0].alert.state, AlertState::Resolved);
        assert!(changes[0].alert.message.starts_with("resolved after 20 s"));
        b.apply(&changes[0], 20_100);
        assert!(b.is_empty());
        assert!(step(&mut b, &[], 20_200).is_empty());
    }

    #[test]
    fn duplicate_conditions_fire_one_alert() {
        let mut b = Book::default();
        assert_eq!(
            step(&mut b, &[cond(Status::Firing), cond(Status::Firing)], 0),
            vec![ChangeKind::Fire]
        );
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn a_new_occurrence_fires_again() {
        let mut b = Book::default();
        assert_eq!(step(&mut b, &[failover("a")], 0), vec![ChangeKind::Fire]);
        assert!(step(&mut b, &[failover("a")], 10).is_empty());
        assert_eq!(step(&mut b, &[failover("b")], 20), vec![ChangeKind::Fire]);
        assert_eq!(b.alerts()[0].since_ms, 20);
        assert_eq!(step(&mut b, &[], 30), vec![ChangeKind::Resolve]);
    }

    #[test]
    fn adopted_alerts_are_not_fired_again() {
        let mut first = Book::default();
        step(&mut first, &[cond(Status::Firing), failover("a")], 0);
        let mut b = Book::adopt(first.alerts(), 5000);
        assert_eq!(b.len(), 2);
        // same conditions: nothing to send; the failover learns its occurrence silently
        assert_eq!(
            step(&mut b, &[cond(Status::Pending), failover("a")], 5100),
            vec![ChangeKind::Track]
        );
        assert!(step(&mut b, &[cond(Status::Firing), failover("a")], 5200).is_empty());
        assert_eq!(
            step(&mut b, &[cond(Status::Firing), failover("b")], 5300),
            vec![ChangeKind::Fire]
        );
        // the repeat clock starts at adoption
        assert_eq!(
            step(
                &mut b,
                &[cond(Status::Firing), failover("b")],
                5000 + REPEAT
            ),
            vec![ChangeKind::Repeat]
        );
        assert_eq!(
            step(&mut b, &[], 20_000),
            vec![ChangeKind::Resolve, ChangeKind::Resolve]
        );
    }
}
