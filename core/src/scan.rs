//! Cold-standby scan decisions, pure (docs/design.md §5).
//!
//! In: what one scan of a group saw ([`ScanInput`]): the group's tasks, the
//! free ones (no instance node) with how many scans in a row each was seen
//! free, the tasks this core runs, and the other live cores of the group with
//! how many of the group's tasks each runs. Out: a [`ScanPlan`]: the tasks to
//! try to claim, in order, each with the load below which it may be claimed;
//! the tasks to hand over; the tasks to stop because they left the group.
//!
//! - **Exact quotas.** With T tasks and C cores, the first `T % C` cores (by
//!   host name) take `T / C + 1` and the others `T / C` (30 tasks on 4 cores:
//!   8/8/7/7). A task seen free for the first time is claimed only below the
//!   quota.
//! - **Dealing.** The free tasks, in name order, are dealt in blocks to the
//!   cores below their quota, in host order, each block as large as that
//!   core's shortfall. Each core tries its own block first, so cores that see
//!   the same state claim disjoint tasks and a whole fleet fills up in one
//!   scan without contention; the other free tasks follow as fallbacks.
//! - **Orphans.** A task free for [`ORPHAN_SCANS`] scans in a row (its core
//!   died, or a quota cannot be met) may be claimed up to the rounded-up
//!   share; free for [`LONG_ORPHAN_SCANS`], up to `--max-tasks`: nothing stays
//!   orphaned while any core has room.
//! - **Releases.** A core above its quota hands over its excess (by graceful
//!   switchover, done by the caller), but only as many tasks as the cores
//!   below their quota can take beyond the tasks already free, so it never
//!   makes orphans for nobody. A core cannot see another's `--max-tasks`;
//!   [`ReleaseBackoff`] stops the hand-back-and-forth that a capped core would
//!   otherwise cause.
//! - `--max-tasks` caps everything.

use std::collections::{BTreeMap, BTreeSet};

/// Scans in a row a task must be seen free before it counts as an orphan.
pub const ORPHAN_SCANS: u32 = 2;
/// Scans in a row after which an orphan may be claimed up to `--max-tasks`.
pub const LONG_ORPHAN_SCANS: u32 = 4;
/// Shortest and longest pause of releases after a release nobody took (scans).
pub const RELEASE_BACKOFF_MIN: u64 = 4;
pub const RELEASE_BACKOFF_MAX: u64 = 256;

/// What a scan saw.
#[derive(Debug, Clone, Default)]
pub struct ScanInput<'a> {
    pub host: &'a str,
    /// Every task of the group.
    pub tasks: BTreeSet<String>,
    /// Tasks with no instance node, each with how many scans in a row this
    /// core saw it free (1: this scan only).
    pub free: BTreeMap<String, u32>,
    /// Tasks this core runs (and is not handing over).
    pub mine: BTreeSet<String>,
    /// The other live cores of the group, each with the number of the
    /// group's tasks it runs.
    pub others: BTreeMap<String, usize>,
    /// Most tasks of this group this core may hold.
    pub max_tasks: usize,
    /// Releases are paused ([`ReleaseBackoff`]).
    pub hold_releases: bool,
}

/// Claim `task` if this core holds fewer than `below` tasks of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub task: String,
    pub below: usize,
}

/// What to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanPlan {
    /// Candidates in the order to try them.
    pub claim: Vec<Claim>,
    /// Tasks to hand over.
    pub release: Vec<String>,
    /// Tasks this core runs that are no longer in the group.
    pub stop: Vec<String>,
}

/// The exact quota of `host` among `cores` (which should include it).
pub fn quota(host: &str, cores: &BTreeSet<String>, tasks: usize) -> usize {
    let n = cores.len().max(1);
    let rank = cores.iter().position(|c| c == host).unwrap_or(n - 1);
    tasks / n + usize::from(rank < tasks % n)
}

/// Decides claims, releases and stops.
pub fn plan(input: &ScanInput<'_>) -> ScanPlan {
    let mut cores: BTreeSet<String> = input.others.keys().cloned().collect();
    cores.insert(input.host.to_string());
    let total = input.tasks.len();
    let exact = quota(input.host, &cores, total).min(input.max_tasks);
    let ceil_share = total.div_ceil(cores.len()).min(input.max_tasks);
    let mine: Vec<&String> = input
        .mine
        .iter()
        .filter(|t| input.tasks.contains(*t))
        .collect();
    let held = mine.len();
    let mut plan = ScanPlan {
        stop: input
            .mine
            .iter()
            .filter(|t| !input.tasks.contains(*t))
            .cloned()
            .collect(),
        ..ScanPlan::default()
    };
    if held > exact && !input.hold_releases {
        let shortfall: usize = input
            .others
            .iter()
            .map(|(c, load)| quota(c, &cores, total).saturating_sub(*load))
            .sum();
        let n = (held - exact).min(shortfall.saturating_sub(input.free.len()));
        // the newest names go first
        plan.release = mine.iter().rev().take(n).map(|s| s.to_string()).collect();
        if n > 0 {
            return plan;
        }
    }
    for task in candidates(input, &cores, total, held, exact) {
        let age = input.free.get(task).copied().unwrap_or(1);
        let below = if age >= LONG_ORPHAN_SCANS {
            input.max_tasks
        } else if age >= ORPHAN_SCANS {
            ceil_share
        } else {
            exact
        };
        if below > held {
            plan.claim.push(Claim {
                task: task.clone(),
                below,
            });
        }
    }
    plan
}

/// The free tasks this core does not run: first the block dealt to it, then
/// the others from a host-dependent offset.
fn candidates<'a>(
    input: &'a ScanInput<'_>,
    cores: &BTreeSet<String>,
    total: usize,
    held: usize,
    exact: usize,
) -> Vec<&'a String> {
    let free: Vec<&String> = input
        .free
        .keys()
        .filter(|t| !input.mine.contains(*t))
        .collect();
    // cores before this one (in host order) take the first free tasks
    let offset: usize = cores
        .iter()
        .take_while(|c| *c != input.host)
        .map(|c| {
            let load = input.others.get(c).copied().unwrap_or(0);
            quota(c, cores, total).saturating_sub(load)
        })
        .sum();
    let block = offset.min(free.len())..(offset + exact.saturating_sub(held)).min(free.len());
    let mut order: Vec<&String> = free[block.clone()].to_vec();
    let rest: Vec<&String> = free[..block.start]
        .iter()
        .chain(&free[block.end..])
        .copied()
        .collect();
    order.extend(rotate(&rest, input.host));
    order
}

/// `v` starting at a host-dependent offset, so that cores trying the same
/// fallbacks at the same moment start at different ones.
fn rotate<'a>(v: &[&'a String], host: &str) -> Vec<&'a String> {
    if v.is_empty() {
        return Vec::new();
    }
    let h = host
        .bytes()
        .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize));
    let k = h % v.len();
    v[k..].iter().chain(v[..k].iter()).copied().collect()
}

/// Pauses releases while the fleet cannot absorb them. A task free for more
/// than [`ORPHAN_SCANS`] scans means some core below its quota could not
/// take it (it is at its `--max-tasks`, which other cores cannot see), so a
/// release would only make another orphan: releases stop for 4 scans, and
/// for twice as long at each new sighting after that, up to 256 scans; the
/// pause starts again at 4 once no orphan was seen for twice its length.
#[derive(Debug, Clone, Default)]
pub struct ReleaseBackoff {
    blocked_until: u64,
    pause: u64,
}

impl ReleaseBackoff {
    /// Call once per scan (`scan` counts up) with what the scan saw free;
    /// true when releases are paused for this scan.
    pub fn hold(&mut self, scan: u64, free: &BTreeMap<String, u32>) -> bool {
        let stuck = free.values().any(|age| *age >= ORPHAN_SCANS);
        if stuck && scan >= self.blocked_until {
            let quiet = scan >= self.blocked_until + 2 * self.pause.max(RELEASE_BACKOFF_MIN);
            self.pause = if quiet {
                RELEASE_BACKOFF_MIN
            } else {
                (self.pause * 2).clamp(RELEASE_BACKOFF_MIN, RELEASE_BACKOFF_MAX)
            };
            self.blocked_until = scan + self.pause;
        }
        scan < self.blocked_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks(n: usize) -> BTreeSet<String> {
        (0..n).map(|i| format!("t{i:04}")).collect()
    }
    fn hosts(xs: &[&str]) -> BTreeSet<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }
    fn fresh(ts: &BTreeSet<String>) -> BTreeMap<String, u32> {
        ts.iter().map(|t| (t.clone(), 1)).collect()
    }
    fn loads(xs: &[(&str, usize)]) -> BTreeMap<String, usize> {
        xs.iter().map(|(h, n)| (h.to_string(), *n)).collect()
    }
    fn names(p: &ScanPlan) -> Vec<String> {
        p.claim.iter().map(|c| c.task.clone()).collect()
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
        let input = ScanInput {
            host: "a",
            tasks: t.clone(),
            free: fresh(&t),
            max_tasks: 1000,
            ..Default::default()
        };
        let p = plan(&input);
        assert_eq!(p.claim.len(), 30);
        assert!(p.claim.iter().all(|c| c.below == 30));
        let p = plan(&ScanInput {
            max_tasks: 12,
            ..input
        });
        assert!(p.claim.iter().all(|c| c.below == 12));
    }

    #[test]
    fn cores_with_the_same_view_are_dealt_disjoint_blocks() {
        let t = tasks(30);
        let mut seen = BTreeSet::new();
        for h in ["a", "b", "c"] {
            let others = loads(
                &[("a", 0), ("b", 0), ("c", 0)]
                    .into_iter()
                    .filter(|(o, _)| *o != h)
                    .collect::<Vec<_>>(),
            );
            let p = plan(&ScanInput {
                host: h,
                tasks: t.clone(),
                free: fresh(&t),
                others,
                max_tasks: 1000,
                ..Default::default()
            });
            // every fresh candidate is claimable below the quota of 10
            assert!(p.claim.iter().all(|c| c.below == 10));
            let first: Vec<String> = names(&p).into_iter().take(10).collect();
            for f in first {
                assert!(seen.insert(f), "{h} was dealt a task of another core");
            }
        }
        assert_eq!(seen.len(), 30);
    }

    #[test]
    fn the_tasks_of_a_dead_core_are_dealt_by_shortfall() {
        // c died holding 8; a holds 8 (quota 10), b 7 (10), d 7 (10)
        let t = tasks(30);
        let free: BTreeMap<String, u32> = t.iter().take(8).map(|s| (s.clone(), 1)).collect();
        let mine_a: BTreeSet<String> = t.iter().skip(8).take(8).cloned().collect();
        let p = plan(&ScanInput {
            host: "a",
            tasks: t.clone(),
            free: free.clone(),
            mine: mine_a,
            others: loads(&[("b", 7), ("d", 7)]),
            max_tasks: 1000,
            ..Default::default()
        });
        assert_eq!(&names(&p)[..2], ["t0000", "t0001"]);
        let mine_b: BTreeSet<String> = t.iter().skip(16).take(7).cloned().collect();
        let p = plan(&ScanInput {
            host: "b",
            tasks: t,
            free,
            mine: mine_b,
            others: loads(&[("a", 8), ("d", 7)]),
            max_tasks: 1000,
            ..Default::default()
        });
        assert_eq!(&names(&p)[..3], ["t0002", "t0003", "t0004"]);
    }

    #[test]
    fn loaded_core_releases_only_what_the_newcomer_can_take() {
        let t = tasks(30);
        let mine: BTreeSet<String> = t.iter().take(10).cloned().collect();
        let input = ScanInput {
            host: "a",
            tasks: t.clone(),
            mine,
            others: loads(&[("b", 10), ("c", 10), ("d", 0)]),
            max_tasks: 1000,
            ..Default::default()
        };
        let p = plan(&input);
        assert_eq!(p.release, ["t0009", "t0008"]);
        assert!(p.claim.is_empty());
        // when enough tasks already wait for the newcomer, nothing more goes
        let waiting: BTreeMap<String, u32> = t.iter().skip(23).map(|s| (s.clone(), 1)).collect();
        let p = plan(&ScanInput {
            free: waiting,
            ..input.clone()
        });
        assert!(p.release.is_empty());
        // no core below its quota: keep everything
        let p = plan(&ScanInput {
            others: loads(&[("b", 10), ("c", 10)]),
            ..input.clone()
        });
        assert!(p.release.is_empty() && p.claim.is_empty());
        // paused releases
        let p = plan(&ScanInput {
            hold_releases: true,
            ..input
        });
        assert!(p.release.is_empty());
    }

    #[test]
    fn orphans_go_up_to_the_rounded_up_share_then_to_max() {
        let t = tasks(30);
        let mine: BTreeSet<String> = t.iter().take(7).cloned().collect();
        let spare = |age| -> BTreeMap<String, u32> { [("t0029".to_string(), age)].into() };
        let input = ScanInput {
            host: "d",
            tasks: t.clone(),
            free: spare(1),
            mine,
            others: loads(&[("a", 8), ("b", 8), ("c", 6)]),
            max_tasks: 1000,
            ..Default::default()
        };
        assert!(plan(&input).claim.is_empty(), "d is at its quota of 7");
        let p = plan(&ScanInput {
            free: spare(ORPHAN_SCANS),
            ..input.clone()
        });
        assert_eq!(p.claim[0].below, 8, "orphans up to ceil(30/4)");
        let p = plan(&ScanInput {
            free: spare(LONG_ORPHAN_SCANS),
            ..input
        });
        assert_eq!(p.claim[0].below, 1000);
    }

    #[test]
    fn tasks_that_left_the_group_are_stopped_and_not_counted() {
        let t = tasks(3);
        let mine: BTreeSet<String> = ["t0000".to_string(), "gone".to_string()].into();
        let p = plan(&ScanInput {
            host: "a",
            tasks: t,
            free: [("t0001".to_string(), 1)].into(),
            mine,
            max_tasks: 10,
            ..Default::default()
        });
        assert_eq!(p.stop, ["gone"]);
        assert_eq!(names(&p), ["t0001"]);
        assert_eq!(p.claim[0].below, 3);
    }

    #[test]
    fn backoff_doubles_while_orphans_keep_appearing_and_resets_after_quiet() {
        let mut b = ReleaseBackoff::default();
        let free = |age| -> BTreeMap<String, u32> { [("x".to_string(), age)].into() };
        let none = BTreeMap::new();
        assert!(!b.hold(1, &free(1)), "free for one scan is no orphan");
        assert!(b.hold(2, &free(ORPHAN_SCANS)), "an orphan nobody takes");
        assert!(b.hold(5, &free(ORPHAN_SCANS + 3)), "the same episode");
        assert!(!b.hold(6, &none), "4 scans");
        assert!(b.hold(9, &free(ORPHAN_SCANS)));
        assert!(b.hold(16, &none), "8 scans this time");
        assert!(!b.hold(17, &none));
        for _ in 0..10 {
            let s = b.blocked_until;
            assert!(b.hold(s, &free(ORPHAN_SCANS)));
        }
        assert_eq!(b.pause, RELEASE_BACKOFF_MAX);
        let s = b.blocked_until + 2 * RELEASE_BACKOFF_MAX;
        assert!(b.hold(s, &free(ORPHAN_SCANS)));
        assert_eq!(b.pause, RELEASE_BACKOFF_MIN, "quiet long enough");
    }

    /// A fleet of cores scanning in turn, claims and releases taking effect at once.
    struct Fleet {
        tasks: BTreeSet<String>,
        owner: BTreeMap<String, String>,
        cores: BTreeMap<String, SimCore>,
        scan: u64,
        moves: usize,
    }

    #[derive(Default)]
    struct SimCore {
        max: usize,
        ages: BTreeMap<String, u32>,
        backoff: ReleaseBackoff,
    }

    impl Fleet {
        fn new(n: usize, hosts: &[&str]) -> Fleet {
            let mut f = Fleet {
                tasks: tasks(n),
                owner: BTreeMap::new(),
                cores: BTreeMap::new(),
                scan: 0,
                moves: 0,
            };
            for h in hosts {
                f.add(h, 1000);
            }
            f
        }
        fn add(&mut self, h: &str, max: usize) {
            self.cores.insert(
                h.to_string(),
                SimCore {
                    max,
                    ..Default::default()
                },
            );
        }
        fn kill(&mut self, h: &str) {
            self.cores.remove(h);
            self.owner.retain(|_, o| o != h);
        }
        fn load(&self, h: &str) -> usize {
            self.owner.values().filter(|o| *o == h).count()
        }
        fn spread(&self) -> Vec<usize> {
            let mut v: Vec<usize> = self.cores.keys().map(|h| self.load(h)).collect();
            v.sort_unstable_by(|a, b| b.cmp(a));
            v
        }
        /// One scan interval: every core scans once; returns claims + releases.
        fn round(&mut self) -> usize {
            self.scan += 1;
            let mut changes = 0;
            let hosts: Vec<String> = self.cores.keys().cloned().collect();
            for h in hosts {
                let free: BTreeMap<String, u32> = self
                    .tasks
                    .iter()
                    .filter(|t| !self.owner.contains_key(*t))
                    .map(|t| {
                        let prev = self.cores[&h].ages.get(t).copied().unwrap_or(0);
                        (t.clone(), prev + 1)
                    })
                    .collect();
                let others: BTreeMap<String, usize> = self
                    .cores
                    .keys()
                    .filter(|o| **o != h)
                    .map(|o| (o.clone(), self.load(o)))
                    .collect();
                let mine: BTreeSet<String> = self
                    .owner
                    .iter()
                    .filter(|(_, o)| **o == h)
                    .map(|(t, _)| t.clone())
                    .collect();
                let scan = self.scan;
                let core = self.cores.get_mut(&h).unwrap();
                core.ages = free.clone();
                let hold = core.backoff.hold(scan, &free);
                let p = plan(&ScanInput {
                    host: &h,
                    tasks: self.tasks.clone(),
                    free,
                    mine: mine.clone(),
                    others,
                    max_tasks: core.max,
                    hold_releases: hold,
                });
                for t in &p.release {
                    self.owner.remove(t);
                    changes += 1;
                }
                let mut held = mine.len() - p.release.len();
                for c in &p.claim {
                    if held < c.below && !self.owner.contains_key(&c.task) {
                        self.owner.insert(c.task.clone(), h.clone());
                        held += 1;
                        changes += 1;
                    }
                }
            }
            self.moves += changes;
            changes
        }
        fn settle(&mut self, max_rounds: usize) -> usize {
            for r in 1..=max_rounds {
                if self.round() == 0 {
                    return r;
                }
            }
            panic!("no convergence in {max_rounds} rounds: {:?}", self.spread());
        }
    }

    #[test]
    fn fleet_fills_in_one_scan_and_rebalances_with_the_fewest_moves() {
        let mut f = Fleet::new(30, &["c1", "c2", "c3"]);
        f.round();
        assert_eq!(f.spread(), [10, 10, 10], "one scan fills the fleet");
        assert_eq!(f.moves, 30, "no claim is handed back");
        assert_eq!(f.round(), 0);

        f.add("c4", 1000);
        f.settle(5);
        assert_eq!(f.spread(), [8, 8, 7, 7]);
        assert_eq!(f.moves, 30 + 14, "7 releases and 7 claims");
        for _ in 0..20 {
            assert_eq!(f.round(), 0, "stable");
        }

        f.kill("c2");
        let moves = f.moves;
        f.round();
        assert_eq!(f.owner.len(), 30, "reclaimed in one scan");
        assert_eq!(f.spread(), [10, 10, 10]);
        assert_eq!(f.moves - moves, 8);
    }

    #[test]
    fn cores_joining_one_by_one_converge_without_orphans() {
        let mut f = Fleet::new(30, &["c1"]);
        f.round();
        assert_eq!(f.spread(), [30]);
        f.add("c2", 1000);
        f.add("c3", 1000);
        let mut orphaned = 0;
        for _ in 0..10 {
            f.round();
            orphaned += usize::from(f.owner.len() < 30);
        }
        assert_eq!(f.spread(), [10, 10, 10]);
        assert_eq!(
            f.moves,
            30 + 2 * 20,
            "each moved task is released once and claimed once"
        );
        assert!(orphaned <= 1, "released tasks are claimed at the next scan");
    }

    #[test]
    fn a_thousand_tasks_on_three_cores() {
        let mut f = Fleet::new(1000, &["a", "b", "c"]);
        f.round();
        assert_eq!(f.spread(), [334, 333, 333]);
        assert_eq!(f.moves, 1000);
        f.kill("b");
        f.round();
        assert_eq!(f.spread(), [500, 500]);
    }

    #[test]
    fn a_capped_core_leaves_no_orphan_for_long_and_churn_dies_down() {
        // c4 cannot reach its quota of 7 (--max-tasks 5), which the others
        // cannot see: they hand it tasks it cannot take, less and less often
        let mut f = Fleet::new(30, &["c1", "c2", "c3"]);
        f.add("c4", 5);
        let (mut streak, mut longest) = (0, 0);
        let mut moves = Vec::new();
        for _ in 0..600 {
            f.round();
            streak = if f.owner.len() < 30 { streak + 1 } else { 0 };
            longest = longest.max(streak);
            moves.push(f.moves);
        }
        assert_eq!(f.load("c4"), 5);
        assert!(
            longest <= LONG_ORPHAN_SCANS as usize + 2,
            "an orphan for {longest} scans"
        );
        let late = moves[599] - moves[299];
        assert!(late <= 8, "{late} moves in the last 300 scans");
    }
}
