//! Reading a task node: the one parser the Core, the Server and the Monitor
//! share, so that all three agree on what a valid task node is.
//!
//! A task node is empty (a Core registered the task before the Server wrote
//! its config), or holds a [`TaskConfig`] that must name the task and group
//! of the node it is stored in.

use crate::config::{ConfigErrors, TaskConfig};
use crate::paths::TaskRef;

/// Why a task node does not hold a usable config for its task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskNodeError {
    /// Only whitespace: created by a Core ahead of the Server.
    #[error("task config is empty: waiting for the Server to write it")]
    Empty,
    #[error(transparent)]
    Invalid(#[from] ConfigErrors),
    #[error("task config names `{found}` but the node is `{node}`")]
    WrongName { found: String, node: String },
    #[error("task config group {found:?} does not match its location {node:?}")]
    WrongGroup {
        found: Option<String>,
        node: Option<String>,
    },
}

/// Parses the content of `task`'s node.
pub fn parse_task_node(data: &[u8], task: &TaskRef) -> Result<TaskConfig, TaskNodeError> {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err(TaskNodeError::Empty);
    }
    let cfg = TaskConfig::parse(data)?;
    if cfg.name != task.name() {
        return Err(TaskNodeError::WrongName {
            found: cfg.name,
            node: task.name().to_string(),
        });
    }
    if cfg.group.as_deref() != task.group() {
        return Err(TaskNodeError::WrongGroup {
            found: cfg.group,
            node: task.group().map(str::to_string),
        });
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good(name: &str, group: Option<&str>) -> Vec<u8> {
        json!({"name": name, "group": group,
               "source": {"host": "h", "port": 3306, "user": "u", "password": "p",
                          "server_id": 7, "start": "current"},
               "sink": {"brokers": "b:9092", "topic": "{database}.{table}"}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn empty_invalid_misplaced_and_good_nodes() {
        let hot = TaskRef::hot("orders").unwrap();
        let cold = TaskRef::cold("g", "orders").unwrap();
        assert_eq!(parse_task_node(b"  \n", &hot), Err(TaskNodeError::Empty));
        assert!(matches!(
            parse_task_node(b"{garbage", &hot),
            Err(TaskNodeError::Invalid(e)) if e.to_string().contains("not valid JSON")
        ));
        let other = TaskRef::hot("other").unwrap();
        let e = parse_task_node(&good("orders", None), &other).unwrap_err();
        assert_eq!(
            e.to_string(),
            "task config names `orders` but the node is `other`"
        );
        let e = parse_task_node(&good("orders", None), &cold).unwrap_err();
        assert!(matches!(e, TaskNodeError::WrongGroup { .. }), "{e}");
        assert_eq!(
            parse_task_node(&good("orders", None), &hot).unwrap().name,
            "orders"
        );
        assert_eq!(
            parse_task_node(&good("orders", Some("g")), &cold)
                .unwrap()
                .group
                .as_deref(),
            Some("g")
        );
    }
}
