//! The alert rules, pure: [`evaluate`] turns a [`Snapshot`], the state the
//! previous evaluation left, the time and the thresholds into the
//! [`Condition`]s that hold now and the next state. No I/O, no clock.
//!
//! The state only remembers what a single snapshot cannot tell: since when a
//! condition holds (grace periods), the RUNNING instance seen last (failover),
//! the cores seen before (core_lost), the context position seen last
//! (stalled). `task_retrying` needs none: the instance node says since when
//! its streak of failures lasts. Every monitor evaluates, leader or not, so a new leader starts
//! with warm state; [`RuleState::adopt`] also seeds it from the alerts a
//! previous leader left in `/alerts`, so that they stay active instead of
//! resolving and firing again.
//!
//! Rules (thresholds in [`Thresholds`]): `config_invalid`, `task_not_running`,
//! `no_standby`, `replication_lag`, `stalled`, `task_error`, `task_retrying`,
//! `failover`, `core_lost`; see docs/operations.md (The Monitor) for each
//! definition.

use crate::alert::{Condition, Rule, Status, Subject};
use crate::config::Thresholds;
use crate::snapshot::{ConfigState, Snapshot, SourceStatus, TaskSnapshot};
use replicator_common::config::DEFAULT_REDUNDANCY;
use replicator_common::nodes::{Alert, AlertState, Progress, Retrying};
use replicator_common::paths::TaskRef;
use replicator_common::position::{BinlogPos, MariaGtidState};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// What evaluations remember between snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleState {
    tasks: BTreeMap<TaskRef, TaskTrack>,
    cores: BTreeMap<String, CoreTrack>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TaskTrack {
    not_running_since: Option<i64>,
    short_since: Option<i64>,
    error_since: Option<i64>,
    /// Name of the RUNNING instance seen last (kept while none runs).
    last_running: Option<String>,
    failover: Option<FailoverEvent>,
    /// Context position seen last: (file, pos, gtid).
    marker: Option<(String, u64, Option<String>)>,
    /// Since when the context stood still with the source ahead of it.
    behind_since: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FailoverEvent {
    /// The new RUNNING instance; `None` for one adopted from `/alerts`.
    occurrence: Option<String>,
    at_ms: i64,
    message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CoreTrack {
    Present,
    Lost { since_ms: i64 },
}

/// The result of one evaluation.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub conditions: Vec<Condition>,
    pub state: RuleState,
}

/// Evaluates every rule on `snap` at `now` (ms since the epoch).
pub fn evaluate(snap: &Snapshot, prev: &RuleState, now: i64, th: &Thresholds) -> Evaluation {
    let mut conditions = Vec::new();
    let mut state = RuleState::default();
    for t in &snap.tasks {
        let before = prev.tasks.get(&t.task).cloned().unwrap_or_default();
        let track = evaluate_task(t, &before, now, th, &mut conditions);
        state.tasks.insert(t.task.clone(), track);
    }
    for host in snap.cores.keys() {
        state.cores.insert(host.clone(), CoreTrack::Present);
    }
    for (host, track) in &prev.cores {
        if snap.cores.contains_key(host) {
            continue;
        }
        let since_ms = match track {
            CoreTrack::Present => now,
            CoreTrack::Lost { since_ms } => *since_ms,
        };
        if now - since_ms >= ms(th.core_lost_expire_ms) {
            continue;
        }
        state
            .cores
            .insert(host.clone(), CoreTrack::Lost { since_ms });
        conditions.push(Condition::after(
            Rule::CoreLost,
            Subject::Core(host.clone()),
            format!("core {host} is gone: /cores/{host} disappeared (its ZooKeeper session ended)"),
            since_ms,
            now,
            ms(th.core_lost_grace_ms),
        ));
    }
    Evaluation { conditions, state }
}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn evaluate_task(
    t: &TaskSnapshot,
    before: &TaskTrack,
    now: i64,
    th: &Thresholds,
    out: &mut Vec<Condition>,
) -> TaskTrack {
    let mut track = TaskTrack::default();
    let e = TaskEval { t, before, now, th };
    e.config_invalid(out);
    e.not_running(&mut track, out);
    e.no_standby(&mut track, out);
    if t.running().is_some() && !t.paused() {
        if let Some(p) = t.context.progress() {
            e.lag(p, out);
            stalled(t, p, before, &mut track, now, th, out);
        }
        e.retrying(out);
    }
    e.task_error(&mut track, out);
    e.failover(&mut track, out);
    track
}

/// One task's evaluation: the rules about it, each a method.
struct TaskEval<'a> {
    t: &'a TaskSnapshot,
    before: &'a TaskTrack,
    now: i64,
    th: &'a Thresholds,
}

impl TaskEval<'_> {
    fn subject(&self) -> Subject {
        Subject::Task(self.t.task.clone())
    }

    /// `config_invalid`: the task node does not validate.
    fn config_invalid(&self, out: &mut Vec<Condition>) {
        if let ConfigState::Invalid(reason) = &self.t.config {
            out.push(Condition::firing(
                Rule::ConfigInvalid,
                self.subject(),
                format!("task config of {} does not validate: {reason}", self.t.task),
            ));
        }
    }

    /// `task_not_running`: no RUNNING instance of a task that is not paused.
    fn not_running(&self, track: &mut TaskTrack, out: &mut Vec<Condition>) {
        let (t, now) = (self.t, self.now);
        if t.running().is_none() && !t.paused() {
            let since = self.before.not_running_since.unwrap_or(now);
            track.not_running_since = Some(since);
            out.push(Condition::after(
                Rule::TaskNotRunning,
                self.subject(),
                format!(
                    "task {} has no RUNNING instance ({} instance(s) registered)",
                    t.task,
                    t.instances.len()
                ),
                since,
                now,
                ms(self.th.not_running_grace_ms),
            ));
        }
    }

    /// `no_standby`: a hot task with fewer instances than its redundancy.
    fn no_standby(&self, track: &mut TaskTrack, out: &mut Vec<Condition>) {
        let (t, now) = (self.t, self.now);
        if t.task.group().is_some() {
            return;
        }
        let n = t.instances.len();
        let wanted = t
            .config
            .config()
            .map_or(DEFAULT_REDUNDANCY, |c| c.redundancy) as usize;
        if n > 0 && n < wanted {
            let since = self.before.short_since.unwrap_or(now);
            track.short_since = Some(since);
            out.push(Condition::after(
                Rule::NoStandby,
                self.subject(),
                format!(
                    "task {} has {n} instance(s), its redundancy is {wanted}",
                    t.task
                ),
                since,
                now,
                ms(self.th.no_standby_grace_ms),
            ));
        }
    }

    /// `replication_lag`: the context's event time is too far behind.
    fn lag(&self, p: &Progress, out: &mut Vec<Condition>) {
        let lag = self.now - p.event_ts_ms;
        if p.event_ts_ms > 0 && lag > ms(self.th.lag_ms) {
            out.push(Condition::firing(
                Rule::ReplicationLag,
                self.subject(),
                format!(
                    "task {} lags {} s behind its source (limit {} s); context at {}:{}",
                    self.t.task,
                    lag / 1000,
                    self.th.lag_ms / 1000,
                    p.position.file,
                    p.position.pos
                ),
            ));
        }
    }

    /// `task_retrying`: the RUNNING instance keeps failing with transient errors.
    fn retrying(&self, out: &mut Vec<Condition>) {
        let Some(streak) = retrying(self.t) else {
            return;
        };
        out.push(Condition::after(
            Rule::TaskRetrying,
            self.subject(),
            format!(
                "task {} keeps failing: {} in {} s, last error: {}",
                self.t.task,
                match streak.attempts {
                    1 => "1 failed run".to_string(),
                    n => format!("{n} failed runs"),
                },
                (self.now - streak.since_ms).max(0) / 1000,
                streak.error
            ),
            streak.since_ms,
            self.now,
            ms(self.th.retrying_ms),
        ));
    }

    /// `task_error`: an instance reports a definite error.
    fn task_error(&self, track: &mut TaskTrack, out: &mut Vec<Condition>) {
        let errors: Vec<_> = self
            .t
            .instances
            .iter()
            .filter_map(|i| {
                let info = i.info.as_ref()?;
                Some((i, info, info.error.as_deref()?))
            })
            .collect();
        let Some((inst, info, error)) = errors.first() else {
            return;
        };
        let since = self.before.error_since.unwrap_or(self.now);
        track.error_since = Some(since);
        let more = match errors.len() {
            1 => String::new(),
            k => format!(" (and {} more instance(s))", k - 1),
        };
        out.push(Condition::after(
            Rule::TaskError,
            self.subject(),
            format!(
                "task {}: instance {} on {} ({}) reports: {error}{more}",
                self.t.task, inst.name, info.host, info.state
            ),
            since,
            self.now,
            ms(self.th.task_error_grace_ms),
        ));
    }

    /// `failover`: the RUNNING instance changed; fires for the hold time.
    fn failover(&self, track: &mut TaskTrack, out: &mut Vec<Condition>) {
        let (before, now) = (self.before, self.now);
        let running = self.t.running();
        track.last_running = running
            .map(|r| r.name.clone())
            .or_else(|| before.last_running.clone());
        track.failover = before.failover.clone();
        if let (Some(old), Some(new)) = (&before.last_running, running) {
            if *old != new.name {
                let host = new.info.as_ref().map_or("?", |i| i.host.as_str());
                track.failover = Some(FailoverEvent {
                    occurrence: Some(new.name.clone()),
                    at_ms: now,
                    message: format!(
                        "task {}: RUNNING instance changed from {old} to {} on {host}",
                        self.t.task, new.name
                    ),
                });
            }
        }
        if let Some(ev) = &track.failover {
            if now - ev.at_ms < ms(self.th.failover_hold_ms) {
                let mut c = Condition::firing(Rule::Failover, self.subject(), ev.message.clone());
                c.occurrence = ev.occurrence.clone();
                out.push(c);
            } else {
                track.failover = None;
            }
        }
    }
}

/// The streak of transient failures of the RUNNING instance, unless a
/// definite error (`task_error`) says more.
fn retrying(t: &TaskSnapshot) -> Option<&Retrying> {
    let info = t.running()?.info.as_ref()?;
    match info.error {
        Some(_) => None,
        None => info.retrying.as_ref(),
    }
}

/// `stalled`: the context stands still while the source's binlog is ahead.
/// The message carries the last error when the task keeps failing.
fn stalled(
    t: &TaskSnapshot,
    p: &Progress,
    before: &TaskTrack,
    track: &mut TaskTrack,
    now: i64,
    th: &Thresholds,
    out: &mut Vec<Condition>,
) {
    let marker = (
        p.position.file.clone(),
        p.position.pos,
        p.gtid.as_ref().map(ToString::to_string),
    );
    let moved = before.marker.as_ref().is_some_and(|m| *m != marker);
    track.marker = Some(marker);
    if moved {
        return;
    }
    let behind = match &t.source {
        Some(src) => caught_up(p, src).map(|c| !c),
        // no fresh sample: keep what we knew
        None => before.behind_since.map(|_| true),
    };
    if behind != Some(true) {
        return;
    }
    let since = before.behind_since.unwrap_or(now);
    track.behind_since = Some(since);
    let at = t.source.as_ref().map_or_else(
        || "unknown".to_string(),
        |s| format!("{}:{}", s.file, s.pos),
    );
    let cause = retrying(t).map_or_else(String::new, |r| format!("; last error: {}", r.error));
    let mut c = Condition::after(
        Rule::Stalled,
        Subject::Task(t.task.clone()),
        format!(
            "task {}: context stands at {}:{} while the source binlog is at {at}{cause}",
            t.task, p.position.file, p.position.pos
        ),
        since,
        now,
        ms(th.stalled_ms),
    );
    if t.source.is_none() {
        c.status = Status::Pending;
    }
    out.push(c);
}

/// Whether the context has everything the source had when sampled; `None`
/// when they cannot be compared (different binlog base names).
pub fn caught_up(p: &Progress, src: &SourceStatus) -> Option<bool> {
    if let (Some(ctx), Some(s)) = (&p.gtid, &src.gtid) {
        let ctx = &ctx.to_string();
        if let (Ok(ctx), Ok(s)) = (ctx.parse::<MariaGtidState>(), s.parse::<MariaGtidState>()) {
            if !s.is_empty()
                && s.gtids().iter().all(|g| {
                    ctx.gtids()
                        .iter()
                        .any(|c| c.domain == g.domain && c.seq >= g.seq)
                })
            {
                return Some(true);
            }
        } else if normalize(ctx) == normalize(s) {
            return Some(true);
        }
    }
    let ctx = &p.position;
    let src = BinlogPos::new(src.file.clone(), src.pos);
    ctx.compare(&src).ok().map(|o| o != Ordering::Less)
}

fn normalize(gtid_set: &str) -> String {
    gtid_set.chars().filter(|c| !c.is_whitespace()).collect()
}

impl RuleState {
    /// Seeds the state from alerts a previous leader left active, so that
    /// they stay active while their cause lasts (and are not fired again).
    pub fn adopt(&mut self, alerts: &[Alert], th: &Thresholds) {
        for a in alerts.iter().filter(|a| a.state == AlertState::Firing) {
            let Some(rule) = Rule::from_name(&a.rule) else {
                continue;
            };
            if let (Rule::CoreLost, Some(host)) = (rule, &a.core) {
                let since_ms = a.since_ms - ms(th.core_lost_grace_ms);
                self.cores
                    .entry(host.clone())
                    .and_modify(|c| {
                        if *c == CoreTrack::Present {
                            *c = CoreTrack::Lost { since_ms }
                        }
                    })
                    .or_insert(CoreTrack::Lost { since_ms });
                continue;
            }
            let Some(task) = a.task.as_deref().and_then(parse_task) else {
                continue;
            };
            let track = self.tasks.entry(task).or_default();
            match rule {
                Rule::TaskNotRunning => {
                    let s = a.since_ms - ms(th.not_running_grace_ms);
                    track.not_running_since.get_or_insert(s);
                }
                Rule::NoStandby => {
                    let s = a.since_ms - ms(th.no_standby_grace_ms);
                    track.short_since.get_or_insert(s);
                }
                Rule::Stalled => {
                    let s = a.since_ms - ms(th.stalled_ms);
                    track.behind_since.get_or_insert(s);
                }
                Rule::TaskError => {
                    let s = a.since_ms - ms(th.task_error_grace_ms);
                    track.error_since.get_or_insert(s);
                }
                Rule::Failover => {
                    track.failover.get_or_insert(FailoverEvent {
                        occurrence: None,
                        at_ms: a.since_ms,
                        message: a.message.clone(),
                    });
                }
                // these need no memory: each evaluation sees their cause
                // (task_retrying: the streak's start is in the instance node)
                Rule::ReplicationLag
                | Rule::TaskRetrying
                | Rule::ConfigInvalid
                | Rule::CoreLost => {}
            }
        }
    }
}

/// `task` or `group/task`, as alerts name tasks.
pub fn parse_task(s: &str) -> Option<TaskRef> {
    match s.split_once('/') {
        Some((g, t)) => TaskRef::cold(g, t).ok(),
        None => TaskRef::hot(s).ok(),
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
