//! The HTTP client of `replicatorctl`, and its exit codes.
//!
//! In: a method, a path under `/api/v1` and an optional body. Out: the
//! JSON answer, or a [`ClientError`] that knows its [`exit`] code: the API's
//! 4xx/5xx answers keep the server's message and problem list; a server
//! that cannot be reached (refused, timed out) is [`exit::UNREACHABLE`].
//! Plain HTTP: put a TLS-terminating proxy in front of the server when the
//! network is not trusted.

use replicator_common::secret::Secret;
use serde_json::Value;
use std::time::Duration;

/// Exit codes of `replicatorctl`, stable for scripts.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Bad command line, or a file that cannot be read.
    pub const USAGE: u8 = 1;
    /// The task does not exist (404).
    pub const NOT_FOUND: u8 = 2;
    /// The task exists already, the version is stale, or the name is ambiguous (409).
    pub const CONFLICT: u8 = 3;
    /// The request or config was rejected (400, 413).
    pub const INVALID: u8 = 4;
    /// Missing or wrong token (401).
    pub const UNAUTHORIZED: u8 = 5;
    /// The server cannot be reached, or ZooKeeper is unavailable (503).
    pub const UNREACHABLE: u8 = 6;
    /// Any other server error (5xx) or an answer that is not the API's.
    pub const SERVER: u8 = 7;
}

/// Why a request did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the server at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{message}")]
    Api {
        status: u16,
        message: String,
        /// `field: message` of each config problem.
        problems: Vec<String>,
        /// The answer as the server sent it.
        body: Value,
    },
    #[error("unexpected answer from {url}: {reason}")]
    BadResponse { url: String, reason: String },
}

impl ClientError {
    /// The exit code `replicatorctl` ends with.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Unreachable { .. } => exit::UNREACHABLE,
            ClientError::BadResponse { .. } => exit::SERVER,
            ClientError::Api { status, .. } => status_exit_code(*status),
        }
    }
}

/// The exit code for an HTTP error status.
pub fn status_exit_code(status: u16) -> u8 {
    match status {
        404 => exit::NOT_FOUND,
        409 | 412 => exit::CONFLICT,
        401 | 403 => exit::UNAUTHORIZED,
        503 => exit::UNREACHABLE,
        400..=499 => exit::INVALID,
        _ => exit::SERVER,
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

/// Talks to one server.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    token: Option<Secret>,
}

impl Client {
    /// A client of the server at `base` (`http://HOST:PORT`).
    pub fn new(base: &str, token: Option<Secret>, timeout: Duration) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Client {
            agent,
            base: base.trim_end_matches('/').to_string(),
            token,
        }
    }

    /// Sends `method path` (path relative to `/api/v1`, query included).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        if_match: Option<i32>,
    ) -> Result<Reply, ClientError> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {}", t.expose()));
        }
        if let Some(v) = if_match {
            req = req.header("If-Match", format!("\"{v}\""));
        }
        let bad = |reason: String| ClientError::BadResponse {
            url: url.clone(),
            reason,
        };
        let result = match body {
            Some(b) => req
                .header("Content-Type", "application/json")
                .body(b.to_vec())
                .map_err(|e| bad(e.to_string()))
                .map(|r| self.agent.run(r))?,
            None => req
                .body(())
                .map_err(|e| bad(e.to_string()))
                .map(|r| self.agent.run(r))?,
        };
        let mut resp = result.map_err(|e| ClientError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| bad(e.to_string()))?;
        let body: Value = serde_json::from_str(&text).map_err(|_| {
            bad(format!(
                "status {status}, not JSON: {}",
                text.chars().take(200).collect::<String>()
            ))
        })?;
        if (200..300).contains(&status) {
            return Ok(Reply { status, body });
        }
        let message = body["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("status {status}"));
        let problems = body["problems"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        let field = p["field"].as_str().unwrap_or("");
                        let msg = p["message"].as_str().unwrap_or("");
                        if field.is_empty() {
                            msg.to_string()
                        } else {
                            format!("{field}: {msg}")
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        Err(ClientError::Api {
            status,
            message,
            problems,
            body,
        })
    }
}

/// `/tasks/NAME` with `?group=` when given.
pub fn task_path(name: &str, group: Option<&str>, suffix: &str) -> String {
    let mut p = format!("/tasks/{}{suffix}", encode(name));
    if let Some(g) = group {
        p.push_str(&format!("?group={}", encode(g)));
    }
    p
}

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_by_status() {
        assert_eq!(status_exit_code(404), exit::NOT_FOUND);
        assert_eq!(status_exit_code(409), exit::CONFLICT);
        assert_eq!(status_exit_code(400), exit::INVALID);
        assert_eq!(status_exit_code(413), exit::INVALID);
        assert_eq!(status_exit_code(401), exit::UNAUTHORIZED);
        assert_eq!(status_exit_code(503), exit::UNREACHABLE);
        assert_eq!(status_exit_code(500), exit::SERVER);
        let e = ClientError::Unreachable {
            url: "u".into(),
            reason: "refused".into(),
        };
        assert_eq!(e.exit_code(), exit::UNREACHABLE);
    }

    #[test]
    fn paths_are_encoded() {
        assert_eq!(task_path("orders", None, ""), "/tasks/orders");
        assert_eq!(
            task_path("a/b", Some("g 1"), "/pause"),
            "/tasks/a%2Fb/pause?group=g%201"
        );
    }

    #[test]
    fn unreachable_server() {
        // a port nobody listens on: bind one, then drop it
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = Client::new(
            &format!("http://127.0.0.1:{port}"),
            None,
            Duration::from_secs(2),
        );
        let e = c.send("GET", "/tasks", None, None).unwrap_err();
        assert_eq!(e.exit_code(), exit::UNREACHABLE, "{e}");
    }
}
