//! The HTTP API of docs/design.md §9 under `/api/v1`, plus `/metrics` and `/healthz`.
//!
//! In: HTTP requests. Out: JSON answers; errors are `{"error": "...",
//! "problems": [...]}` with the status of their [`ApiError`]. Each handler
//! checks the whole request with [`crate::validate`] before it calls
//! [`Store`], so a rejected request writes nothing. With a token configured,
//! every route but `/healthz` needs `Authorization: Bearer <token>`; the
//! check runs before the body is read. Bodies over
//! [`MAX_BODY_BYTES`] get 413. `/` and `GET /api/v1/cores` are the web
//! console's ([`crate::console`]).
//!
//! Logs name tasks and versions only: never a body, never a config.

use crate::alerts;
use crate::error::ApiError;
use crate::metrics::{self, RequestCounter};
use crate::status::{assemble, RawTask, TaskStatus};
use crate::store::{ControlChange, Store};
use crate::validate::{self, MAX_BODY_BYTES};
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{OriginalUri, Path, Query, Request, State};
use axum::http::header::{
    CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_MATCH, LOCATION, WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use replicator_common::now_ms;
use replicator_common::paths::TaskRef;
use replicator_common::secret::Secret;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// A body is drained up to this many bytes before a 413, so that clients
/// that send everything before reading get the answer instead of a reset.
const DRAIN_BYTES: usize = 8 * MAX_BODY_BYTES;

/// What every handler shares.
pub struct AppState {
    pub store: Store,
    /// Bearer token required on every route but `/healthz`, when set.
    pub token: Option<Secret>,
    pub requests: RequestCounter,
}

type Shared = Arc<AppState>;

/// The routes of the API (`/api/v1/...`), `/metrics`, `/healthz` and the console.
pub fn router(state: Shared) -> Router {
    let api = Router::new()
        .route("/tasks", get(list_tasks).post(create_task))
        .route(
            "/tasks/{name}",
            get(show_task).put(update_task).delete(delete_task),
        )
        .route("/tasks/{name}/{action}", post(control_task))
        .route("/alerts", get(list_alerts))
        .route("/cores", get(crate::console::list_cores))
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    let metrics = Router::new()
        .route("/metrics", get(metrics))
        .method_not_allowed_fallback(no_method)
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .nest("/api/v1", api)
        .merge(metrics)
        .route("/healthz", get(healthz))
        .merge(crate::console::router())
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %self, "request failed");
        }
        let mut resp = (status, Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

async fn require_token(State(s): State<Shared>, req: Request, next: Next) -> Response {
    if let Some(token) = &s.token {
        let header = req
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or(""));
        if let Err(e) = validate::bearer(token.expose(), header) {
            return e.into_response();
        }
    }
    next.run(req).await
}

async fn count(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    s.requests.count(resp.status().as_u16());
    tracing::debug!(method = %method, path = %path, status = resp.status().as_u16(), "request");
    resp
}

async fn no_route(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::NotFound(format!("no route {method} {}", uri.path()))
}

async fn no_method(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}

/// `?group=GROUP` to name a cold task's group.
#[derive(Debug, Deserialize)]
struct GroupQuery {
    group: Option<String>,
}

type PathName = Result<Path<String>, PathRejection>;
type GroupParam = Result<Query<GroupQuery>, QueryRejection>;

/// The task named by the URL, found in ZooKeeper.
async fn locate(s: &AppState, name: PathName, q: GroupParam) -> Result<TaskRef, ApiError> {
    let Path(name) = name.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    validate::url_name(&name)?;
    let group = validate::group_query(q.group.as_deref())?;
    Ok(s.store.locate(&name, group.as_deref()).await?)
}

/// Reads a body of at most [`MAX_BODY_BYTES`].
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_BYTES as u64) {
        return Err(ApiError::TooLarge(MAX_BODY_BYTES));
    }
    let mut out = Vec::new();
    let mut seen = 0usize;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::BadRequest(format!("cannot read the request body: {e}")))?;
        seen += chunk.len();
        if seen > DRAIN_BYTES {
            break;
        }
        if seen <= MAX_BODY_BYTES {
            out.extend_from_slice(&chunk);
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(ApiError::TooLarge(MAX_BODY_BYTES));
    }
    Ok(out)
}

/// A task status with its `ETag`.
fn with_etag(status: StatusCode, body: &TaskStatus) -> Response {
    let mut resp = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&validate::etag(body.version)) {
        resp.headers_mut().insert(ETAG, v);
    }
    resp
}

/// The status of every task, as of now.
async fn statuses(s: &Shared) -> Result<Vec<TaskStatus>, ApiError> {
    let now = now_ms();
    Ok(s.store
        .list()
        .await?
        .iter()
        .map(|r| assemble(r, now))
        .collect())
}

async fn list_tasks(State(s): State<Shared>) -> Result<Json<serde_json::Value>, ApiError> {
    let tasks = statuses(&s).await?;
    Ok(Json(json!({ "tasks": tasks })))
}

async fn create_task(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(&headers, body).await?;
    let cfg = validate::create_body(&bytes)?;
    let task = validate::task_ref(&cfg);
    let stored = validate::stored_bytes(&cfg);
    let version = s.store.create(&task, &stored).await?;
    tracing::info!(task = %task, version, "task created");
    let status = assemble(
        &RawTask {
            task: task.clone(),
            config: stored,
            version,
            instances: Vec::new(),
            context: None,
            control: None,
        },
        now_ms(),
    );
    let mut resp = with_etag(StatusCode::CREATED, &status);
    let location = match task.group() {
        None => format!("/api/v1/tasks/{}", task.name()),
        Some(g) => format!("/api/v1/tasks/{}?group={g}", task.name()),
    };
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    Ok(resp)
}

async fn show_task(
    State(s): State<Shared>,
    name: PathName,
    q: GroupParam,
) -> Result<Response, ApiError> {
    let task = locate(&s, name, q).await?;
    let raw = s.store.read(&task).await?;
    Ok(with_etag(StatusCode::OK, &assemble(&raw, now_ms())))
}

async fn update_task(
    State(s): State<Shared>,
    name: PathName,
    q: GroupParam,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let url_name = match &name {
        Ok(Path(n)) => n.clone(),
        Err(e) => return Err(ApiError::BadRequest(e.body_text())),
    };
    validate::url_name(&url_name)?;
    let if_match = headers
        .get(IF_MATCH)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::BadRequest("If-Match is not ASCII".into()))
        })
        .transpose()?;
    let version = validate::if_match(if_match)?;
    let bytes = read_body(&headers, body).await?;
    let cfg = validate::update_body(&url_name, &bytes)?;
    let task = locate(&s, name, q).await?;
    validate::same_location(&cfg, &task)?;
    let new_version = s
        .store
        .update(&task, &validate::stored_bytes(&cfg), version)
        .await?;
    tracing::info!(task = %task, version = new_version, "task config updated");
    let raw = s.store.read(&task).await?;
    Ok(with_etag(StatusCode::OK, &assemble(&raw, now_ms())))
}

async fn delete_task(
    State(s): State<Shared>,
    name: PathName,
    q: GroupParam,
) -> Result<Json<serde_json::Value>, ApiError> {
    let task = locate(&s, name, q).await?;
    let znodes = s.store.delete(&task).await?;
    tracing::info!(task = %task, znodes, "task deleted");
    Ok(Json(
        json!({"deleted": task.name(), "group": task.group(), "znodes": znodes}),
    ))
}

/// Body of `POST /tasks/{name}/snapshot`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotBody {
    tables: Vec<String>,
}

async fn control_task(
    State(s): State<Shared>,
    names: Result<Path<(String, String)>, PathRejection>,
    q: GroupParam,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Path((name, action)) = names.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let change = match action.as_str() {
        "pause" => ControlChange::Pause,
        "resume" => ControlChange::Resume,
        "switchover" => ControlChange::Switchover,
        "accept-gap" => ControlChange::AcceptGap,
        "snapshot" => {
            let bytes = read_body(&headers, body).await?;
            let req: SnapshotBody = serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::BadRequest(format!(
                    "body must be {{\"tables\": [\"db.table\", ...]}}: {e}"
                ))
            })?;
            let task = locate(&s, Ok(Path(name)), q).await?;
            let written = s.store.request_snapshot(&task, &req.tables).await?;
            let req = written.map_err(|e| match e.is_conflict() {
                true => ApiError::Conflict(e.to_string()),
                false => ApiError::BadRequest(e.to_string()),
            })?;
            tracing::info!(task = %task, request = req.seq, tables = ?req.tables, "snapshot requested");
            return Ok(Json(json!({
                "name": task.name(), "group": task.group(),
                "snapshot": {"request": req.seq, "tables": req.tables},
            })));
        }
        other => {
            return Err(ApiError::NotFound(format!(
                "no action `{}` on a task; use pause, resume, switchover, accept-gap or snapshot",
                other.chars().take(40).collect::<String>()
            )))
        }
    };
    let task = locate(&s, Ok(Path(name)), q).await?;
    let control = s.store.control(&task, change).await?;
    tracing::info!(task = %task, action = %action, desired = ?control.desired, switchover = control.switchover, "task control written");
    Ok(Json(json!({
        "name": task.name(), "group": task.group(),
        "desired": control.desired, "switchover": control.switchover,
        "accept_gap": control.accept_gap,
    })))
}

/// `?state=firing|resolved` filters the alerts.
#[derive(Debug, Deserialize)]
struct AlertQuery {
    state: Option<String>,
}

async fn list_alerts(
    State(s): State<Shared>,
    q: Result<Query<AlertQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let want = match q.state.as_deref() {
        None => None,
        Some(s @ ("firing" | "resolved")) => Some(s.to_string()),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "?state= must be firing or resolved".into(),
            ))
        }
    };
    let (mut list, unreadable) = alerts::parse(s.store.alerts().await?);
    if let Some(w) = want {
        list.retain(|a| serde_json::to_value(a.state).is_ok_and(|v| v == w.as_str()));
    }
    if !unreadable.is_empty() {
        tracing::warn!(
            count = unreadable.len(),
            "alert nodes that are not Alert JSON"
        );
    }
    Ok(Json(json!({"alerts": list, "unreadable": unreadable})))
}

async fn metrics(State(s): State<Shared>) -> Result<Response, ApiError> {
    let tasks = statuses(&s).await?;
    let (alerts, _) = alerts::parse(s.store.alerts().await?);
    let text = metrics::render(&tasks, &alerts, &s.requests.snapshot());
    Ok((
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response())
}

async fn healthz(State(s): State<Shared>) -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "zookeeper": s.store.session_state().await}))
}
