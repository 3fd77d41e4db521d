//! The HTTP routes: what each path answers. Every route is a GET and reads no body; anything
//! else is 404 (unknown path) or 405 (other method), from axum. Beside the probes and
//! `/metrics`: the JSON admin API under `/v1` ([`super::api`]) and the web console at `/`
//! ([`super::console`]).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::HttpState;

/// Content type of the Prometheus text exposition format 0.0.4.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(state.clone())
        .nest("/v1", super::api::router(state))
        .merge(super::console::router())
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    // Rendering reads every partition: off the async workers with many topics.
    let metrics = std::sync::Arc::clone(&state.metrics);
    match tokio::task::spawn_blocking(move || metrics.render()).await {
        Ok(text) => ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], text).into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

async fn health() -> &'static str {
    "ok\n"
}

async fn ready(State(state): State<HttpState>) -> impl IntoResponse {
    if state.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: opening the logs, or shutting down\n",
        )
    }
}
