//! Request validation, pure: everything the API checks before it touches
//! ZooKeeper.
//!
//! In: raw bytes, header values and URL segments of a request. Out: a typed
//! [`TaskConfig`] ready to store, or an [`ApiError`] naming every problem
//! found (a config body is checked by [`TaskConfig::parse`], which collects
//! all problems at once; this module adds the request-level ones, such as a
//! body naming another task than the URL). Nothing here does I/O, so a
//! rejected request leaves ZooKeeper as it was.

use crate::error::ApiError;
use replicator_common::config::{ConfigErrors, ConfigProblem, TaskConfig};
use replicator_common::names::validate_name;
use replicator_common::paths::TaskRef;

/// Largest accepted request body (1 MiB).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Checks a task name taken from the URL.
pub fn url_name(name: &str) -> Result<(), ApiError> {
    validate_name(name).map_err(|e| ApiError::BadRequest(format!("bad task name in the URL: {e}")))
}

/// Checks the optional `?group=` of a request.
pub fn group_query(group: Option<&str>) -> Result<Option<String>, ApiError> {
    match group {
        None => Ok(None),
        Some(g) => validate_name(g)
            .map(|_| Some(g.to_string()))
            .map_err(|e| ApiError::BadRequest(format!("bad group in ?group=: {e}"))),
    }
}

/// Parses the body of `POST /tasks`.
pub fn create_body(body: &[u8]) -> Result<TaskConfig, ApiError> {
    TaskConfig::parse(body)
        .map(normalize)
        .map_err(ApiError::InvalidConfig)
}

/// Parses the body of `PUT /tasks/{name}`: a full config whose name must be
/// the URL's. Every problem is reported at once.
pub fn update_body(url_name: &str, body: &[u8]) -> Result<TaskConfig, ApiError> {
    let mismatch = |body_name: &str| ConfigProblem {
        field: "name".into(),
        message: format!("`{body_name}` does not match the task `{url_name}` of the URL"),
    };
    match TaskConfig::parse(body) {
        Ok(cfg) if cfg.name != url_name => {
            Err(ApiError::InvalidConfig(ConfigErrors(vec![mismatch(
                &cfg.name,
            )])))
        }
        Ok(cfg) => Ok(normalize(cfg)),
        Err(mut e) => {
            // a readable name that differs is one more problem to report
            let body_name = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_string));
            if let Some(n) = body_name {
                if n != url_name && !e.0.iter().any(|p| p.field == "name") {
                    e.0.insert(0, mismatch(&n));
                }
            }
            Err(ApiError::InvalidConfig(e))
        }
    }
}

/// Checks that an update keeps the task where it is: moving a task between
/// hot and cold, or between groups, is a delete and a create.
pub fn same_location(cfg: &TaskConfig, task: &TaskRef) -> Result<(), ApiError> {
    if cfg.group.as_deref() == task.group() {
        return Ok(());
    }
    let here = match task.group() {
        None => "a hot task (group null)".to_string(),
        Some(g) => format!("in group `{g}`"),
    };
    Err(ApiError::InvalidConfig(ConfigErrors(vec![ConfigProblem {
        field: "group".into(),
        message: format!(
            "task `{}` is {here}; the group cannot change (delete the task and create it again)",
            task.name()
        ),
    }])))
}

/// The task a valid config describes.
pub fn task_ref(cfg: &TaskConfig) -> TaskRef {
    match &cfg.group {
        None => TaskRef::hot(&cfg.name),
        Some(g) => TaskRef::cold(g, &cfg.name),
    }
    .expect("a validated config has valid names")
}

/// The config as stored in the task node (defaults written out).
pub fn stored_bytes(cfg: &TaskConfig) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(cfg).expect("a task config serializes");
    bytes.push(b'\n');
    bytes
}

fn normalize(mut cfg: TaskConfig) -> TaskConfig {
    cfg.source.start = cfg.source.start.normalized();
    cfg
}

/// Parses `If-Match`: `"3"`, `3` or `W/"3"` is version 3; `*` or no header
/// means "whatever the version" (an unconditional update).
pub fn if_match(value: Option<&str>) -> Result<Option<i32>, ApiError> {
    let Some(raw) = value.map(str::trim) else {
        return Ok(None);
    };
    if raw == "*" {
        return Ok(None);
    }
    let bare = raw.strip_prefix("W/").unwrap_or(raw).trim_matches('"');
    bare.parse::<i32>()
        .ok()
        .filter(|v| *v >= 0)
        .map(Some)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "If-Match must be a task version such as \"3\" (the ETag of GET), got `{}`",
                raw.chars().take(40).collect::<String>()
            ))
        })
}

/// The `ETag` of a task at `version`.
pub fn etag(version: i32) -> String {
    format!("\"{version}\"")
}

/// Checks an `Authorization` header against the expected bearer token, in
/// time independent of where the two differ.
pub fn bearer(expected: &str, header: Option<&str>) -> Result<(), ApiError> {
    let Some(h) = header else {
        return Err(ApiError::Unauthorized(
            "missing bearer token: send Authorization: Bearer <token>",
        ));
    };
    let given = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))
        .ok_or(ApiError::Unauthorized(
            "the Authorization header must be `Bearer <token>`",
        ))?
        .trim();
    let same = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(ApiError::Unauthorized("wrong bearer token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good(name: &str) -> serde_json::Value {
        json!({"name": name,
               "source": {"host": "db", "user": "repl", "password": "hunter2", "server_id": 7},
               "sink": {"brokers": "k:9092"}})
    }

    fn fields(e: ApiError) -> Vec<String> {
        match e {
            ApiError::InvalidConfig(c) => c.0.into_iter().map(|p| p.field).collect(),
            other => panic!("not a config error: {other}"),
        }
    }

    #[test]
    fn create_fills_defaults_and_stores_them() {
        let cfg = create_body(good("orders").to_string().as_bytes()).unwrap();
        let stored: serde_json::Value = serde_json::from_slice(&stored_bytes(&cfg)).unwrap();
        assert_eq!(stored["source"]["start"], "current");
        assert_eq!(stored["source"]["port"], 3306);
        assert_eq!(stored["sink"]["format"], "json");
        assert_eq!(TaskConfig::parse(&stored_bytes(&cfg)).unwrap(), cfg);
        assert_eq!(task_ref(&cfg), TaskRef::hot("orders").unwrap());
    }

    #[test]
    fn update_reports_name_mismatch_with_the_other_problems() {
        let e = update_body("orders", good("other").to_string().as_bytes()).unwrap_err();
        assert!(
            e.to_string().contains("does not match the task `orders`"),
            "{e}"
        );
        let mut bad = good("other");
        bad["source"]["port"] = json!(0);
        bad["colour"] = json!(1);
        let mut got = fields(update_body("orders", bad.to_string().as_bytes()).unwrap_err());
        got.sort();
        assert_eq!(got, vec!["colour", "name", "source.port"]);
        assert!(update_body("orders", good("orders").to_string().as_bytes()).is_ok());
    }

    #[test]
    fn group_cannot_change() {
        let mut v = good("orders");
        v["group"] = json!("g1");
        let cfg = create_body(v.to_string().as_bytes()).unwrap();
        assert!(same_location(&cfg, &TaskRef::cold("g1", "orders").unwrap()).is_ok());
        let e = same_location(&cfg, &TaskRef::hot("orders").unwrap()).unwrap_err();
        assert!(e.to_string().contains("cannot change"), "{e}");
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn if_match_forms() {
        assert_eq!(if_match(None).unwrap(), None);
        assert_eq!(if_match(Some("*")).unwrap(), None);
        assert_eq!(if_match(Some("\"3\"")).unwrap(), Some(3));
        assert_eq!(if_match(Some("3")).unwrap(), Some(3));
        assert_eq!(if_match(Some("W/\"12\"")).unwrap(), Some(12));
        for bad in ["abc", "\"-1\"", "", "1.5"] {
            assert_eq!(if_match(Some(bad)).unwrap_err().status(), 400, "{bad}");
        }
        assert_eq!(etag(4), "\"4\"");
    }

    #[test]
    fn bearer_tokens() {
        assert!(bearer("s3cret", Some("Bearer s3cret")).is_ok());
        let missing = bearer("s3cret", None).unwrap_err();
        assert!(missing.to_string().contains("missing bearer token"));
        assert_eq!(missing.status(), 401);
        let wrong = bearer("s3cret", Some("Bearer s3creT")).unwrap_err();
        assert_eq!(wrong.to_string(), "wrong bearer token");
        assert!(bearer("s3cret", Some("Bearer s3cre")).is_err());
        assert!(bearer("s3cret", Some("Basic czNjcmV0")).is_err());
    }

    #[test]
    fn names_and_groups_from_the_url() {
        assert!(url_name("orders").is_ok());
        for bad in ["../x", "a/b", "..", &"x".repeat(129)] {
            assert_eq!(url_name(bad).unwrap_err().status(), 400, "{bad}");
        }
        assert_eq!(group_query(Some("g1")).unwrap(), Some("g1".into()));
        assert!(group_query(Some("a b")).is_err());
        assert_eq!(group_query(None).unwrap(), None);
    }

    #[test]
    fn errors_never_echo_the_password() {
        let mut v = good("../x");
        v["source"]["port"] = json!(70000);
        let e = create_body(v.to_string().as_bytes()).unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
        assert!(!e.body().to_string().contains("hunter2"));
    }
}
