//! The read-only JSON admin API under `/v1/`, for the web console and for operators' scripts:
//! the cluster ([`cluster`]), topics with their partitions ([`topics`]), consumer groups with
//! members, assignments, committed offsets and lag ([`groups`]), and the records of a
//! partition from an offset or a time ([`records`]).
//!
//! Owns no state: every answer is read at request time from the server's [`Context`] (the
//! catalog, the group coordinator, the offsets store) through the same read paths the metrics
//! use, so nothing here takes a log's writer lock or delays an append. Writes nothing.
//!
//! Invariants: every answer is bounded (list lengths, records per page, bytes of record
//! data); every failure is a JSON object `{"error": {"code", "message"}}` with a 4xx status
//! for bad input and unknown names, 503 while the stores are still opening, 500 only for a
//! log that cannot be read; the work runs on a blocking thread, off the async workers.

mod cluster;
mod data;
mod groups;
mod records;
mod topics;

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use super::HttpState;
use crate::log::LogError;
use crate::server::Context;

/// Topics or groups listed in one answer; more are cut off and the answer says so.
pub(crate) const MAX_LISTED: usize = 10_000;

/// What the API handlers read.
#[derive(Debug, Clone)]
pub(crate) struct ApiState {
    http: HttpState,
    /// When the HTTP listener started, for the uptime (it starts with the process).
    started: Instant,
}

impl ApiState {
    /// The server's shared state, or 503 while the logs are still being recovered.
    fn context(&self) -> Result<Arc<Context>, ApiError> {
        self.http.context().ok_or(ApiError::NotReady)
    }

    /// Runs `read` over the context on a blocking thread: reads walk every partition or map
    /// segment pages, which must not hold up the async workers serving the Kafka port.
    async fn read<T, F>(&self, read: F) -> Result<Json<T>, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Context) -> Result<T, ApiError> + Send + 'static,
    {
        let ctx = self.context()?;
        let answer = tokio::task::spawn_blocking(move || read(&ctx)).await??;
        Ok(Json(answer))
    }
}

/// The `/v1` routes, with a JSON 404 for any other path under it.
pub(super) fn router(http: HttpState) -> Router {
    let state = ApiState {
        http,
        started: Instant::now(),
    };
    Router::new()
        .route("/cluster", get(cluster::cluster))
        .route("/brokers", get(cluster::brokers))
        .route("/cluster/raft", get(cluster::raft))
        .route("/topics", get(topics::list))
        .route("/topics/{topic}", get(topics::one))
        .route(
            "/topics/{topic}/partitions/{partition}/records",
            get(records::records),
        )
        .route("/groups", get(groups::list))
        .route("/groups/{group}", get(groups::one))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NoRoute
}

/// Why a request was not answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ApiError {
    /// The stores are still opening (recovery), or the broker has stopped.
    #[error("the broker is not serving yet: its logs are still being opened")]
    NotReady,
    /// No such path under `/v1`.
    #[error("no such API path")]
    NoRoute,
    /// The topic does not exist.
    #[error("no topic named {0:?}")]
    NoTopic(String),
    /// The topic exists without this partition.
    #[error("topic {topic:?} has no partition {partition}")]
    NoPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: String,
    },
    /// Neither a live group nor committed offsets under this name.
    #[error("no consumer group named {0:?}")]
    NoGroup(String),
    /// A query parameter is malformed or out of its range.
    #[error("bad query: {0}")]
    BadQuery(String),
    /// The offset asked for is outside the log.
    #[error(transparent)]
    OutOfRange(LogError),
    /// The log could not be read (damage, a closed log).
    #[error("reading the log failed: {0}")]
    Log(#[source] LogError),
    /// The blocking read panicked or was cancelled.
    #[error("the read did not finish: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl From<LogError> for ApiError {
    fn from(err: LogError) -> Self {
        match err {
            LogError::OffsetOutOfRange { .. } => Self::OutOfRange(err),
            other => Self::Log(other),
        }
    }
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::NotReady => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            Self::NoRoute => (StatusCode::NOT_FOUND, "no_route"),
            Self::NoTopic(_) => (StatusCode::NOT_FOUND, "unknown_topic"),
            Self::NoPartition { .. } => (StatusCode::NOT_FOUND, "unknown_partition"),
            Self::NoGroup(_) => (StatusCode::NOT_FOUND, "unknown_group"),
            Self::BadQuery(_) => (StatusCode::BAD_REQUEST, "bad_query"),
            Self::OutOfRange(_) => (StatusCode::RANGE_NOT_SATISFIABLE, "offset_out_of_range"),
            Self::Log(_) | Self::Join(_) => (StatusCode::INTERNAL_SERVER_ERROR, "read_failed"),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::warn!(error = %self, "admin API request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
            },
        };
        (status, Json(body)).into_response()
    }
}

/// `n` as an `i64` for JSON, saturating (sizes and counters are far below it).
fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
