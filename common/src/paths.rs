//! The ZooKeeper layout of docs/design.md §3.
//!
//! Every path the system touches is built here, from validated names only.

use crate::names::{validate_name, NameError};

/// Default root of every znode the system creates.
pub const DEFAULT_ROOT: &str = "/mysql_replicator";

/// Name of the instances child of a task node.
pub const INSTANCES: &str = "instances";
/// Name of the context child of a task node.
pub const CONTEXT: &str = "context";
/// Name of the control child of a task node.
pub const CONTROL: &str = "control";

/// Paths under one root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: String,
}

impl Layout {
    /// A layout under `root` (e.g. `/mysql_replicator`). A trailing `/` is dropped.
    pub fn new(root: &str) -> Result<Self, PathError> {
        let root = root.trim_end_matches('/');
        if !root.starts_with('/') || root.len() < 2 {
            return Err(PathError::BadRoot(root.to_string()));
        }
        for seg in root[1..].split('/') {
            validate_name(seg).map_err(|_| PathError::BadRoot(root.to_string()))?;
        }
        Ok(Self {
            root: root.to_string(),
        })
    }

    pub fn root(&self) -> &str {
        &self.root
    }
    pub fn tasks(&self) -> String {
        format!("{}/tasks", self.root)
    }
    pub fn groups(&self) -> String {
        format!("{}/task-groups", self.root)
    }
    pub fn group(&self, group: &str) -> Result<String, PathError> {
        check("group", group)?;
        Ok(format!("{}/task-groups/{group}", self.root))
    }
    pub fn cores(&self) -> String {
        format!("{}/cores", self.root)
    }
    pub fn core(&self, host: &str) -> Result<String, PathError> {
        check("host", host)?;
        Ok(format!("{}/cores/{host}", self.root))
    }
    pub fn monitor_leader(&self) -> String {
        format!("{}/monitor/leader", self.root)
    }
    pub fn alerts(&self) -> String {
        format!("{}/alerts", self.root)
    }
    pub fn alert(&self, id: &str) -> Result<String, PathError> {
        check("alert id", id)?;
        Ok(format!("{}/alerts/{id}", self.root))
    }

    /// Where the task lives: `/tasks/<task>` or `/task-groups/<group>/<task>`.
    pub fn task(&self, task: &TaskRef) -> String {
        match &task.group {
            None => format!("{}/tasks/{}", self.root, task.name),
            Some(g) => format!("{}/task-groups/{g}/{}", self.root, task.name),
        }
    }
    pub fn instances(&self, task: &TaskRef) -> String {
        format!("{}/{INSTANCES}", self.task(task))
    }
    /// Prefix for an EPHEMERAL_SEQUENTIAL instance node of `host`.
    pub fn instance_prefix(&self, task: &TaskRef, host: &str) -> Result<String, PathError> {
        check("host", host)?;
        Ok(format!("{}/{host}-", self.instances(task)))
    }
    pub fn context(&self, task: &TaskRef) -> String {
        format!("{}/{CONTEXT}", self.task(task))
    }
    pub fn control(&self, task: &TaskRef) -> String {
        format!("{}/{CONTROL}", self.task(task))
    }
}

/// A validated task name and its group (`None` for a hot-standby task).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskRef {
    name: String,
    group: Option<String>,
}

impl TaskRef {
    pub fn hot(name: &str) -> Result<Self, PathError> {
        check("task", name)?;
        Ok(Self {
            name: name.to_string(),
            group: None,
        })
    }
    pub fn cold(group: &str, name: &str) -> Result<Self, PathError> {
        check("group", group)?;
        check("task", name)?;
        Ok(Self {
            name: name.to_string(),
            group: Some(group.to_string()),
        })
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn group(&self) -> Option<&str> {
        self.group.as_deref()
    }
}

impl std::fmt::Display for TaskRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.group {
            None => f.write_str(&self.name),
            Some(g) => write!(f, "{g}/{}", self.name),
        }
    }
}

/// A child of an instances node: `<host>-<seq>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceName {
    pub host: String,
    pub seq: i64,
}

impl InstanceName {
    /// Parses `<host>-<10 digit seq>`; `None` for anything else (hand-made nodes are ignored).
    pub fn parse(child: &str) -> Option<Self> {
        let (host, seq) = child.rsplit_once('-')?;
        if seq.len() < 10 || !seq.bytes().all(|b| b.is_ascii_digit()) || host.is_empty() {
            return None;
        }
        Some(Self {
            host: host.to_string(),
            seq: seq.parse().ok()?,
        })
    }
}

/// A path could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("bad {kind} name: {source}")]
    BadName {
        kind: &'static str,
        #[source]
        source: NameError,
    },
    #[error(
        "bad root `{0}`: it must be an absolute path of valid names, such as /mysql_replicator"
    )]
    BadRoot(String),
}

fn check(kind: &'static str, name: &str) -> Result<(), PathError> {
    validate_name(name).map_err(|source| PathError::BadName { kind, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_design_layout() {
        let l = Layout::new("/mysql_replicator/").unwrap();
        let hot = TaskRef::hot("orders").unwrap();
        let cold = TaskRef::cold("g1", "small").unwrap();
        assert_eq!(l.task(&hot), "/mysql_replicator/tasks/orders");
        assert_eq!(
            l.instances(&hot),
            "/mysql_replicator/tasks/orders/instances"
        );
        assert_eq!(
            l.instance_prefix(&hot, "h1").unwrap(),
            "/mysql_replicator/tasks/orders/instances/h1-"
        );
        assert_eq!(l.context(&hot), "/mysql_replicator/tasks/orders/context");
        assert_eq!(l.control(&hot), "/mysql_replicator/tasks/orders/control");
        assert_eq!(l.task(&cold), "/mysql_replicator/task-groups/g1/small");
        assert_eq!(
            l.context(&cold),
            "/mysql_replicator/task-groups/g1/small/context"
        );
        assert_eq!(l.core("h1").unwrap(), "/mysql_replicator/cores/h1");
        assert_eq!(l.monitor_leader(), "/mysql_replicator/monitor/leader");
        assert_eq!(l.alert("a1").unwrap(), "/mysql_replicator/alerts/a1");
        assert_eq!(l.group("g1").unwrap(), "/mysql_replicator/task-groups/g1");
    }

    #[test]
    fn refuses_bad_names_before_building() {
        assert!(TaskRef::hot("../x").is_err());
        assert!(TaskRef::cold("a/b", "t").is_err());
        let l = Layout::new("/r").unwrap();
        assert!(l.core("..").is_err());
        assert!(Layout::new("relative").is_err());
        assert!(Layout::new("/").is_err());
        assert!(Layout::new("/a/../b").is_err());
    }

    #[test]
    fn parses_instance_children() {
        assert_eq!(
            InstanceName::parse("host-a-0000000012"),
            Some(InstanceName {
                host: "host-a".into(),
                seq: 12
            })
        );
        assert_eq!(InstanceName::parse("junk"), None);
        assert_eq!(InstanceName::parse("-0000000001"), None);
        assert_eq!(InstanceName::parse("h-12"), None);
    }
}
