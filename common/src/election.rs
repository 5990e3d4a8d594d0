//! Lowest-sequence election over a list of EPHEMERAL_SEQUENTIAL children
//! (`<host>-<seq>`), pure: task instances (docs/design.md §4) and monitor leaders.
//!
//! The instance with the smallest sequence is RUNNING; every other watches
//! only the instance just before its own, so one node going away wakes one
//! watcher, whatever the number of standbys.

use crate::paths::InstanceName;

/// What an instance should do after listing the instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Own node has the smallest sequence.
    Leader,
    /// Watch this child (the predecessor) and wait.
    Follower { watch: String },
    /// Own node is not in the list (session expired or node deleted).
    Gone,
}

/// Decides the role of `own` (a child name such as `h1-0000000003`) among `children`.
/// Children that are not `<host>-<seq>` are ignored.
pub fn decide(children: &[String], own: &str) -> Role {
    let Some(me) = InstanceName::parse(own) else {
        return Role::Gone;
    };
    if !children.iter().any(|c| c == own) {
        return Role::Gone;
    }
    let predecessor = children
        .iter()
        .filter_map(|c| InstanceName::parse(c).map(|n| (n.seq, c)))
        .filter(|(seq, _)| *seq < me.seq)
        .max_by_key(|(seq, _)| *seq);
    match predecessor {
        None => Role::Leader,
        Some((_, c)) => Role::Follower { watch: c.clone() },
    }
}

/// The child with the smallest sequence, if any.
pub fn leader(children: &[String]) -> Option<&String> {
    children
        .iter()
        .filter_map(|c| InstanceName::parse(c).map(|n| (n.seq, c)))
        .min_by_key(|(seq, _)| *seq)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn smallest_sequence_leads() {
        let c = v(&["b-0000000007", "a-0000000003", "c-0000000012"]);
        assert_eq!(decide(&c, "a-0000000003"), Role::Leader);
        assert_eq!(leader(&c), Some(&"a-0000000003".to_string()));
    }

    #[test]
    fn follower_watches_only_its_predecessor() {
        let c = v(&[
            "b-0000000007",
            "a-0000000003",
            "c-0000000012",
            "d-0000000009",
        ]);
        assert_eq!(
            decide(&c, "c-0000000012"),
            Role::Follower {
                watch: "d-0000000009".into()
            }
        );
        assert_eq!(
            decide(&c, "d-0000000009"),
            Role::Follower {
                watch: "b-0000000007".into()
            }
        );
        assert_eq!(
            decide(&c, "b-0000000007"),
            Role::Follower {
                watch: "a-0000000003".into()
            }
        );
    }

    #[test]
    fn each_predecessor_is_watched_once() {
        let c: Vec<String> = (0..10).map(|i| format!("h{i}-{:010}", i * 3 + 1)).collect();
        let mut watched: Vec<String> = c
            .iter()
            .filter_map(|own| match decide(&c, own) {
                Role::Follower { watch } => Some(watch),
                _ => None,
            })
            .collect();
        watched.sort();
        watched.dedup();
        assert_eq!(watched.len(), 9, "no node is watched twice");
    }

    #[test]
    fn host_names_with_dashes_and_junk_children() {
        let c = v(&["my-host-0000000002", "junk", "other-0000000001"]);
        assert_eq!(
            decide(&c, "my-host-0000000002"),
            Role::Follower {
                watch: "other-0000000001".into()
            }
        );
        assert_eq!(decide(&c, "gone-0000000005"), Role::Gone);
        assert_eq!(decide(&c, "junk"), Role::Gone);
    }
}
