//! The web console: one page served at `/`, and `GET /api/v1/cores`.
//!
//! In: browser requests for the page and its two assets; API requests for
//! the cores. Out: the page (`server/assets/console/`, embedded at build
//! time with `include_str!`, so the binary is all there is to deploy) and
//! [`CoresView`], the live Cores under `/cores` with the groups under
//! `/task-groups`.
//!
//! The page is plain HTML and JavaScript, no build step. It polls the API
//! every second (`/api/v1/tasks`, `/api/v1/alerts`, `/api/v1/cores`,
//! `/healthz`), computes rows/s from successive `events` readings, and
//! calls `POST /api/v1/tasks/{name}/pause|resume|switchover` for its
//! buttons. The assets need no token (they hold no data); the API calls
//! send `Authorization: Bearer` with the token the person typed into the
//! page, kept in the browser's `localStorage`. The console keeps no state
//! on the server: reload the page and it is back.
//!
//! Malformed `/cores` nodes never fail the request: they are listed by name
//! under `unreadable`.

use crate::api::AppState;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderName;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use replicator_common::nodes::CoreInfo;
use replicator_common::now_ms;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

const INDEX_HTML: &str = include_str!("../assets/console/index.html");
const CONSOLE_JS: &str = include_str!("../assets/console/console.js");
const CONSOLE_CSS: &str = include_str!("../assets/console/console.css");

/// Scripts and styles come from this server only (no inline code), and the
/// page may not be framed (its buttons act on tasks).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The page and its assets; no token needed.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/console.js",
            get(|| async { asset("text/javascript; charset=utf-8", CONSOLE_JS) }),
        )
        .route(
            "/console.css",
            get(|| async { asset("text/css; charset=utf-8", CONSOLE_CSS) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "no-cache"),
            (HeaderName::from_static("content-security-policy"), CSP),
            (HeaderName::from_static("x-content-type-options"), "nosniff"),
            (HeaderName::from_static("x-frame-options"), "DENY"),
            (HeaderName::from_static("referrer-policy"), "no-referrer"),
        ],
        body,
    )
}

/// One live Core.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoreView {
    #[serde(flatten)]
    pub info: CoreInfo,
    /// Now minus its last heartbeat (never negative).
    pub heartbeat_age_ms: i64,
}

/// One cold-standby group: its tasks and the live Cores scanning it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupView {
    pub name: String,
    pub tasks: Vec<String>,
    /// Hosts of the Cores started with `--group <name>`.
    pub cores: Vec<String>,
}

/// What `GET /api/v1/cores` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoresView {
    /// Sorted by host.
    pub cores: Vec<CoreView>,
    /// Every group that has tasks or Cores, sorted by name.
    pub groups: Vec<GroupView>,
    /// Children of `/cores` whose data is not CoreInfo JSON.
    pub unreadable: Vec<String>,
}

/// Builds the view from the children of `/cores` and the groups with their
/// task names, at time `now_ms`; pure.
pub fn cores_view(
    cores: Vec<(String, Vec<u8>)>,
    groups: Vec<(String, Vec<String>)>,
    now_ms: i64,
) -> CoresView {
    let mut live = Vec::new();
    let mut unreadable = Vec::new();
    for (host, data) in cores {
        match serde_json::from_slice::<CoreInfo>(&data) {
            Ok(info) => live.push(CoreView {
                heartbeat_age_ms: (now_ms - info.heartbeat_ms).max(0),
                info,
            }),
            Err(_) => unreadable.push(host),
        }
    }
    live.sort_by(|a, b| a.info.host.cmp(&b.info.host));
    let mut by_group: BTreeMap<String, GroupView> = groups
        .into_iter()
        .map(|(name, tasks)| {
            let view = GroupView {
                name: name.clone(),
                tasks,
                cores: Vec::new(),
            };
            (name, view)
        })
        .collect();
    for core in &live {
        for g in &core.info.groups {
            by_group
                .entry(g.clone())
                .or_insert_with(|| GroupView {
                    name: g.clone(),
                    tasks: Vec::new(),
                    cores: Vec::new(),
                })
                .cores
                .push(core.info.host.clone());
        }
    }
    CoresView {
        cores: live,
        groups: by_group.into_values().collect(),
        unreadable,
    }
}

/// `GET /api/v1/cores`.
pub async fn list_cores(State(s): State<Arc<AppState>>) -> Result<Json<CoresView>, ApiError> {
    let cores = s.store.cores().await?;
    let groups = s.store.groups().await?;
    Ok(Json(cores_view(cores, groups, now_ms())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn core(host: &str, groups: &[&str], tasks: &[&str], hb: i64) -> (String, Vec<u8>) {
        let info = json!({"host": host, "pid": 7, "version": "0.1.0", "groups": groups,
                          "tasks": tasks, "load": tasks.len(), "heartbeat_ms": hb});
        (host.to_string(), info.to_string().into_bytes())
    }

    #[test]
    fn cores_and_their_groups() {
        let view = cores_view(
            vec![
                core("c2", &["batch"], &["batch/a", "batch/b"], 900),
                core("c1", &["batch", "idle"], &["batch/c"], 1000),
                core("h1", &[], &["orders"], 1200),
                ("broken".into(), b"{".to_vec()),
            ],
            vec![
                ("batch".into(), vec!["a".into(), "b".into(), "c".into()]),
                ("empty".into(), vec![]),
            ],
            1100,
        );
        let hosts: Vec<&str> = view.cores.iter().map(|c| c.info.host.as_str()).collect();
        assert_eq!(hosts, ["c1", "c2", "h1"]);
        assert_eq!(view.cores[1].heartbeat_age_ms, 200);
        assert_eq!(
            view.cores[2].heartbeat_age_ms, 0,
            "clock skew is not negative"
        );
        assert_eq!(view.unreadable, ["broken"]);
        let groups: Vec<(&str, usize, Vec<&str>)> = view
            .groups
            .iter()
            .map(|g| {
                (
                    g.name.as_str(),
                    g.tasks.len(),
                    g.cores.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            groups,
            [
                ("batch", 3, vec!["c1", "c2"]),
                ("empty", 0, vec![]),
                ("idle", 0, vec!["c1"]),
            ]
        );
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["cores"][0]["load"], 1, "CoreInfo fields are flattened");
        assert_eq!(json["cores"][0]["heartbeat_age_ms"], 100);
    }

    #[test]
    fn assets_are_embedded_and_reference_each_other() {
        assert!(INDEX_HTML.contains("console.js") && INDEX_HTML.contains("console.css"));
        assert!(
            !INDEX_HTML.contains("<script>") && !INDEX_HTML.contains("style="),
            "no inline code: the CSP forbids it"
        );
        for path in [
            "api/v1/tasks",
            "api/v1/alerts",
            "api/v1/cores",
            "healthz",
            "localStorage",
        ] {
            assert!(CONSOLE_JS.contains(path), "console.js uses {path}");
        }
    }
}
