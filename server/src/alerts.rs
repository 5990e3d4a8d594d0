//! Alerts as the API lists them and as `replicatorctl alerts --watch`
//! follows them, pure.
//!
//! In: the children of `/alerts` (written by the Monitor leader, docs/design.md §9)
//! or successive `GET /alerts` answers. Out: sorted [`Alert`]s, and the
//! [`AlertEvent`]s between two polls: an alert that appears firing or goes
//! back to firing *fires*, one whose state turns resolved *resolves*, one
//! that disappears is *cleared*. A poll that fails changes nothing, so the
//! watch carries on from the last answer it had.

use replicator_common::nodes::{Alert, AlertState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Parses alert znodes; returns the alerts (firing first, newest first) and
/// the ids of nodes that are not Alert JSON.
pub fn parse(raw: Vec<(String, Vec<u8>)>) -> (Vec<Alert>, Vec<String>) {
    let mut alerts = Vec::new();
    let mut unreadable = Vec::new();
    for (id, data) in raw {
        match serde_json::from_slice::<Alert>(&data) {
            Ok(a) => alerts.push(a),
            Err(_) => unreadable.push(id),
        }
    }
    sort(&mut alerts);
    (alerts, unreadable)
}

/// Firing before resolved, then newest first, then by id.
pub fn sort(alerts: &mut [Alert]) {
    alerts.sort_by(|a, b| {
        (a.state != AlertState::Firing, -a.since_ms, &a.id).cmp(&(
            b.state != AlertState::Firing,
            -b.since_ms,
            &b.id,
        ))
    });
}

/// What happened to an alert between two polls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum AlertEvent {
    Fired { alert: Alert },
    Resolved { alert: Alert },
    Cleared { id: String },
}

/// Follows the alert list across polls.
#[derive(Debug, Default)]
pub struct AlertWatch {
    known: Option<BTreeMap<String, Alert>>,
}

impl AlertWatch {
    /// Events since the previous poll. On the first poll, every firing
    /// alert is reported as fired (resolved ones are history).
    pub fn update(&mut self, now: Vec<Alert>) -> Vec<AlertEvent> {
        let now: BTreeMap<String, Alert> = now.into_iter().map(|a| (a.id.clone(), a)).collect();
        let mut events = Vec::new();
        match &self.known {
            None => {
                for a in now.values() {
                    if a.state == AlertState::Firing {
                        events.push(AlertEvent::Fired { alert: a.clone() });
                    }
                }
            }
            Some(before) => {
                for (id, a) in &now {
                    let was = before.get(id).map(|b| b.state);
                    match (was, a.state) {
                        (Some(s), n) if s == n => {}
                        (_, AlertState::Firing) => {
                            events.push(AlertEvent::Fired { alert: a.clone() })
                        }
                        (_, AlertState::Resolved) => {
                            events.push(AlertEvent::Resolved { alert: a.clone() })
                        }
                    }
                }
                for id in before.keys() {
                    if !now.contains_key(id) {
                        events.push(AlertEvent::Cleared { id: id.clone() });
                    }
                }
            }
        }
        self.known = Some(now);
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use replicator_common::nodes::Severity;

    fn alert(id: &str, state: AlertState, since_ms: i64) -> Alert {
        Alert {
            id: id.into(),
            rule: "lag".into(),
            task: Some("orders".into()),
            core: None,
            severity: Severity::Warning,
            state,
            since_ms,
            message: "lag is 90 s".into(),
        }
    }

    #[test]
    fn parses_and_sorts() {
        let raw = vec![
            (
                "a".to_string(),
                serde_json::to_vec(&alert("a", AlertState::Resolved, 5)).unwrap(),
            ),
            ("junk".to_string(), b"{".to_vec()),
            (
                "b".to_string(),
                serde_json::to_vec(&alert("b", AlertState::Firing, 1)).unwrap(),
            ),
            (
                "c".to_string(),
                serde_json::to_vec(&alert("c", AlertState::Firing, 3)).unwrap(),
            ),
        ];
        let (alerts, bad) = parse(raw);
        let ids: Vec<&str> = alerts.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, vec!["c", "b", "a"]);
        assert_eq!(bad, vec!["junk"]);
    }

    #[test]
    fn watch_reports_fire_resolve_and_clear() {
        let mut w = AlertWatch::default();
        let first = w.update(vec![
            alert("a", AlertState::Firing, 1),
            alert("old", AlertState::Resolved, 0),
        ]);
        assert_eq!(
            first,
            vec![AlertEvent::Fired {
                alert: alert("a", AlertState::Firing, 1)
            }]
        );
        assert!(w
            .update(vec![
                alert("a", AlertState::Firing, 1),
                alert("old", AlertState::Resolved, 0)
            ])
            .is_empty());
        let next = w.update(vec![
            alert("a", AlertState::Resolved, 1),
            alert("b", AlertState::Firing, 2),
        ]);
        assert_eq!(
            next,
            vec![
                AlertEvent::Resolved {
                    alert: alert("a", AlertState::Resolved, 1)
                },
                AlertEvent::Fired {
                    alert: alert("b", AlertState::Firing, 2)
                },
                AlertEvent::Cleared { id: "old".into() },
            ]
        );
        let again = w.update(vec![alert("a", AlertState::Firing, 9)]);
        assert_eq!(again.len(), 2, "a fires again, b cleared: {again:?}");
        let json = serde_json::to_value(&again[0]).unwrap();
        assert_eq!(json["event"], "fired");
        assert_eq!(json["alert"]["id"], "a");
    }
}
