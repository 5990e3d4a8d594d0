//! The monitor's HTTP listener: `GET /alerts`, `GET /metrics`, `GET /healthz`.
//!
//! Handlers only read the [`View`] the monitor loop publishes after each
//! pass, so a slow scraper never delays evaluation. `/alerts` is the JSON
//! array of active alerts (the leader's own book; a follower shows what the
//! leader stored in `/alerts`). `/healthz` answers 200 while passes succeed
//! and 503 when the last successful pass is older than three poll intervals
//! (plus 5 s), with `{"status", "leader", "last_pass_ms"}`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use replicator_common::nodes::Alert;
use std::sync::{Arc, RwLock};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What the loop publishes for the handlers.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub alerts: Vec<Alert>,
    pub metrics: String,
    pub leader: bool,
    /// When the last pass succeeded (ms since the epoch; 0: never).
    pub last_pass_ms: i64,
    pub poll_interval_ms: u64,
}

/// The shared view.
pub type SharedView = Arc<RwLock<View>>;

/// Serves until `stop`.
pub async fn serve(listener: TcpListener, view: SharedView, stop: CancellationToken) {
    let app = Router::new()
        .route("/alerts", get(alerts))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(view);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    {
        tracing::error!(error = %e, "HTTP listener failed");
    }
}

fn read(view: &SharedView) -> View {
    view.read().expect("view lock").clone()
}

async fn alerts(State(view): State<SharedView>) -> Json<Vec<Alert>> {
    Json(read(&view).alerts)
}

async fn metrics(State(view): State<SharedView>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        read(&view).metrics,
    )
}

async fn healthz(State(view): State<SharedView>) -> impl IntoResponse {
    let v = read(&view);
    let max_age = 3 * v.poll_interval_ms as i64 + 5000;
    let ok = v.last_pass_ms > 0 && replicator_common::now_ms() - v.last_pass_ms <= max_age;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({
            "status": if ok { "ok" } else { "stale" },
            "leader": v.leader,
            "last_pass_ms": v.last_pass_ms,
        })),
    )
}
