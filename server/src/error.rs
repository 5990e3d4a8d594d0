//! Typed errors of the server and of `replicatorctl`.
//!
//! [`StoreError`] is what the ZooKeeper side of the server can say about a
//! request (unknown task, existing task, stale version, ZooKeeper down);
//! [`ApiError`] is what the HTTP API answers, each variant with one status
//! code, rendered as `{"error": "...", "problems": [...]}`. No variant ever
//! carries a request body or a config value, so no password can reach a
//! response or a log line through them.

use replicator_common::config::ConfigErrors;
use replicator_common::paths::TaskRef;
use replicator_common::zk::{ZkClientError, ZkError};

/// Where a task lives, for messages: `/tasks/orders` or `/task-groups/g1/orders`.
pub fn describe(task: &TaskRef) -> String {
    match task.group() {
        None => format!("hot task `{}`", task.name()),
        Some(g) => format!("cold task `{}` of group `{g}`", task.name()),
    }
}

/// Errors of the task store (ZooKeeper side).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no task `{0}`")]
    NotFound(String),
    #[error("no task `{name}` in group `{group}`")]
    NotFoundInGroup { name: String, group: String },
    #[error("{} already exists", describe(.0))]
    Exists(TaskRef),
    #[error("task `{name}` exists in several places ({places}); add ?group=GROUP")]
    Ambiguous { name: String, places: String },
    #[error("version {given} is stale: {} is at version {current}; read it again and retry", describe(.task))]
    StaleVersion {
        task: TaskRef,
        given: i32,
        current: i32,
    },
    #[error("{} changed too often during the request; try again", describe(.0))]
    Contended(TaskRef),
    #[error(transparent)]
    Zk(#[from] ZkError),
}

impl StoreError {
    /// Wraps a raw client error of operation `op` on `path`.
    pub fn zk(op: &'static str, path: &str, source: ZkClientError) -> Self {
        StoreError::Zk(ZkError::op(op, path, source))
    }
}

/// An API answer that is not a success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request itself is wrong (bad name, header, query).
    #[error("{0}")]
    BadRequest(String),
    /// 400: the task config has problems, every one of them listed.
    #[error("{0}")]
    InvalidConfig(ConfigErrors),
    /// 401: bearer token missing or wrong.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 404: unknown task or route.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, the method does not.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409: exists, stale version, ambiguous name.
    #[error("{0}")]
    Conflict(String),
    /// 413: body over the limit.
    #[error("request body is over the limit of {0} bytes")]
    TooLarge(usize),
    /// 503: ZooKeeper cannot be reached right now.
    #[error("ZooKeeper is unavailable, try again: {0}")]
    Unavailable(String),
    /// 500: anything else.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidConfig(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::Conflict(_) => 409,
            ApiError::TooLarge(_) => 413,
            ApiError::Unavailable(_) => 503,
            ApiError::Internal(_) => 500,
        }
    }

    /// The JSON body: `{"error": "...", "problems": [{"field", "message"}]}`.
    pub fn body(&self) -> serde_json::Value {
        let problems: Vec<serde_json::Value> = match self {
            ApiError::InvalidConfig(e) => {
                e.0.iter()
                    .map(|p| serde_json::json!({"field": p.field, "message": p.message}))
                    .collect()
            }
            _ => Vec::new(),
        };
        serde_json::json!({"error": self.to_string(), "problems": problems})
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::NotFound(_) | StoreError::NotFoundInGroup { .. } => {
                ApiError::NotFound(e.to_string())
            }
            StoreError::Exists(_)
            | StoreError::Ambiguous { .. }
            | StoreError::StaleVersion { .. }
            | StoreError::Contended(_) => ApiError::Conflict(e.to_string()),
            StoreError::Zk(z) => match z.client_error() {
                Some(
                    ZkClientError::ConnectionLoss
                    | ZkClientError::SessionExpired
                    | ZkClientError::Timeout
                    | ZkClientError::ClientClosed
                    | ZkClientError::NoHosts
                    | ZkClientError::Throttled,
                ) => ApiError::Unavailable(e.to_string()),
                Some(ZkClientError::NoAuth | ZkClientError::AuthFailed) => ApiError::Internal(
                    format!("{e}: ZooKeeper refused this server's identity; check --zk-auth"),
                ),
                _ if matches!(z, ZkError::Unreachable { .. }) => {
                    ApiError::Unavailable(e.to_string())
                }
                _ => ApiError::Internal(e.to_string()),
            },
        }
    }
}

/// Errors of starting or running the server process.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP server: {0}")]
    Serve(#[source] std::io::Error),
    #[error("token file {path}: {reason}")]
    TokenFile { path: String, reason: String },
    #[error(transparent)]
    Zk(#[from] ZkError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_statuses() {
        let t = TaskRef::hot("orders").unwrap();
        let cases: Vec<(StoreError, u16)> = vec![
            (StoreError::NotFound("x".into()), 404),
            (StoreError::Exists(t.clone()), 409),
            (
                StoreError::StaleVersion {
                    task: t.clone(),
                    given: 1,
                    current: 3,
                },
                409,
            ),
            (
                StoreError::zk("get", "/a", ZkClientError::ConnectionLoss),
                503,
            ),
            (StoreError::zk("get", "/a", ZkClientError::NoAuth), 500),
            (
                StoreError::zk("get", "/a", ZkClientError::MarshallingError),
                500,
            ),
        ];
        for (e, status) in cases {
            let msg = e.to_string();
            assert_eq!(ApiError::from(e).status(), status, "{msg}");
        }
    }

    #[test]
    fn messages_name_the_problem() {
        let t = TaskRef::cold("g1", "orders").unwrap();
        let e = StoreError::StaleVersion {
            task: t.clone(),
            given: 1,
            current: 4,
        };
        assert_eq!(
            e.to_string(),
            "version 1 is stale: cold task `orders` of group `g1` is at version 4; read it again and retry"
        );
        assert_eq!(
            StoreError::Exists(TaskRef::hot("a").unwrap()).to_string(),
            "hot task `a` already exists"
        );
        let body = ApiError::TooLarge(1 << 20).body();
        assert_eq!(
            body["error"],
            "request body is over the limit of 1048576 bytes"
        );
        assert_eq!(body["problems"], serde_json::json!([]));
    }
}
