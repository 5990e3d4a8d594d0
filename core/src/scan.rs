//! Cold-standby scan decisions, pure (DESIGN §5).
//!
//! Given the group's tasks, which of them have no instance, which this core
//! runs, and the live cores of the group, decide what to claim and what to
//! hand over. Quotas are exact: with T tasks and C cores, the first `T % C`
//! cores (by host name) take `T / C + 1` and the others `T / C`, so a fleet
//! converges to an even spread (30 tasks on 4 cores: 8/8/7/7). A task left
//! without an instance for a whole scan (a core that died, a quota that
//! cannot be met) may be claimed up to the rounded-up share, so nothing stays
//! orphaned. `--max-tasks` caps everything.

use std::collections::BTreeSet;

/// What a scan saw.
#[derive(Debug, Clone, Default)]
pub struct ScanInput<'a> {
    pub host: &'a str,
    pub tasks: BTreeSet<String>,
    /// Tasks with no instance node.
    pub free: BTreeSet<String>,
    /// Free tasks that were already free at the previous scan.
    pub orphans: BTreeSet<String>,
    /// Tasks this core runs.
    pub mine: BTreeSet<String>,
    /// Live cores serving the group (this one included).
    pub cores: BTreeSet<String>,
    pub max_tasks: usize,
}

/// What to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanPlan {
    pub claim: Vec<String>,
    pub release: Vec<String>,
}

/// This core's exact quota.
pub fn quota(host: &str, cores: &BTreeSet<String>, tasks: usize) -> usize {
    let n = cores.len().max(1);
    let rank = cores.iter().position(|c| c == host).unwrap_or(n - 1);
    tasks / n + usize::from(rank < tasks % n)
}

/// Decides claims and releases.
pub fn plan(input: &ScanInput<'_>) -> ScanPlan {
    let mut cores = input.cores.clone();
    cores.insert(input.host.to_string());
    let total = input.tasks.len();
    let exact = quota(input.host, &cores, total).min(input.max_tasks);
    let ceil_share = total.div_ceil(cores.len().max(1)).min(input.max_tasks);
    let mine: Vec<&String> = input
        .mine
        .iter()
        .filter(|t| input.tasks.contains(*t))
        .collect();
    let mut plan = ScanPlan::default();
    if mine.len() > exact && input.free.is_empty() {
        // hand over the excess, newest names first; only when nothing is
        // waiting to be claimed, so that releases do not pile up orphans
        plan.release = mine
            .iter()
            .rev()
            .take(mine.len() - exact)
            .map(|s| s.to_string())
            .collect();
        return plan;
    }
    let candidates = rotate(&input.free, input.host);
    let mut held = mine.len();
    for t in &candidates {
        if input.mine.contains(*t) {
            continue;
        }
        let limit = if input.orphans.contains(*t) {
            ceil_share
        } else {
            exact
        };
        if held >= limit {
            continue;
        }
        plan.claim.push((*t).clone());
        held += 1;
    }
    plan
}

/// The free tasks starting at a host-dependent offset, so cores scanning at
/// the same moment try different tasks first.
fn rotate<'a>(free: &'a BTreeSet<String>, host: &str) -> Vec<&'a String> {
    let v: Vec<&String> = free.iter().collect();
    if v.is_empty() {
        return v;
    }
    let h = host
        .bytes()
        .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize));
    let k = h % v.len();
    v[k..].iter().chain(v[..k].iter()).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(xs: impl IntoIterator<Item = String>) -> BTreeSet<String> {
        xs.into_iter().collect()
    }
    fn tasks(n: usize) -> BTreeSet<String> {
        set((0..n).map(|i| format!("t{i:02}")))
    }
    fn hosts(xs: &[&str]) -> BTreeSet<String> {
        set(xs.iter().map(|s| s.to_string()))
    }

    #[test]
    fn exact_quotas_spread_evenly() {
        let c = hosts(&["a", "b", "c", "d"]);
        let q: Vec<usize> = ["a", "b", "c", "d"]
            .iter()
            .map(|h| quota(h, &c, 30))
            .collect();
        assert_eq!(q, [8, 8, 7, 7]);
        assert_eq!(quota("a", &hosts(&["a", "b", "c"]), 30), 10);
        assert_eq!(quota("x", &BTreeSet::new(), 5), 5);
    }

    #[test]
    fn a_lone_core_claims_everything_up_to_max() {
        let t = tasks(30);
        let p = plan(&ScanInput {
            host: "a",
            tasks: t.clone(),
            free: t.clone(),
            cores: hosts(&["a"]),
            max_tasks: 1000,
            ..Default::default()
        });
        assert_eq!(p.claim.len(), 30);
        let p = plan(&ScanInput {
            host: "a",
            tasks: t.clone(),
            free: t,
            cores: hosts(&["a"]),
            max_tasks: 12,
            ..Default::default()
        });
        assert_eq!(p.claim.len(), 12);
    }

    #[test]
    fn loaded_core_releases_excess_when_a_core_joins() {
        let t = tasks(30);
        let mine = set(t.iter().take(10).cloned());
        let p = plan(&ScanInput {
            host: "a",
            tasks: t.clone(),
            free: BTreeSet::new(),
            mine,
            cores: hosts(&["a", "b", "c", "d"]),
            max_tasks: 1000,
            ..Default::default()
        });
        assert_eq!(p.release.len(), 2);
        assert!(p.claim.is_empty());
        let mine = set(t.iter().skip(20).cloned());
        let p = plan(&ScanInput {
            host: "c",
            tasks: t,
            free: BTreeSet::new(),
            mine,
            cores: hosts(&["a", "b", "c", "d"]),
            max_tasks: 1000,
            ..Default::default()
        });
        assert_eq!(p.release.len(), 3);
    }

    #[test]
    fn claims_up_to_quota_then_orphans_up_to_ceil() {
        let t = tasks(30);
        let free = set(t.iter().skip(20).cloned());
        let mine = set(t.iter().take(7).cloned());
        let input = ScanInput {
            host: "d",
            tasks: t.clone(),
            free: free.clone(),
            mine: mine.clone(),
            cores: hosts(&["a", "b", "c", "d"]),
            max_tasks: 1000,
            ..Default::default()
        };
        assert_eq!(plan(&input).claim.len(), 0, "d is at its quota of 7");
        let input = ScanInput {
            orphans: free,
            ..input
        };
        assert_eq!(
            plan(&input).claim.len(),
            1,
            "orphans may go up to ceil(30/4) = 8"
        );
    }

    #[test]
    fn does_not_claim_what_it_runs_and_ignores_deleted() {
        let t = tasks(3);
        let mine = set(["t00".to_string(), "gone".to_string()]);
        let p = plan(&ScanInput {
            host: "a",
            tasks: t.clone(),
            free: set(["t00".to_string(), "t01".to_string()]),
            mine,
            cores: hosts(&["a"]),
            max_tasks: 10,
            ..Default::default()
        });
        assert_eq!(p.claim, vec!["t01".to_string()]);
    }

    #[test]
    fn different_hosts_start_at_different_tasks() {
        let t = tasks(100);
        let a = rotate(&t, "host-a");
        let b = rotate(&t, "host-b");
        assert_ne!(a[0], b[0]);
        assert_eq!(a.len(), 100);
    }
}
