//! From a request frame to a response frame: decode, handler, encode.
//!
//! Bad input never panics and never reaches a handler: a frame too short for a header, an
//! unknown API key, a version outside the advertised range or an undecodable body closes the
//! connection (as Kafka does), except an unsupported ApiVersions version, which gets Kafka's
//! answer: a v0-encoded UNSUPPORTED_VERSION listing the supported range, so clients retry
//! lower.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiVersionsResponse, ResponseKind};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_protocol::message::{MessageError, decode_request, encode_response};

use super::Context;
use super::handlers;
use super::turn::Turn;

/// What the connection does with a request.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Write these bytes (size prefix included).
    Respond(BytesMut),
    /// Write nothing (a produce with acks=0).
    NoResponse,
    /// Close the connection; the reason is logged.
    Close(String),
}

/// Whether a frame is a Produce request (which holds its request bytes until handled).
pub(crate) fn is_produce(frame: &[u8]) -> bool {
    frame.len() >= 2 && i16::from_be_bytes([frame[0], frame[1]]) == ApiKey::Produce.code()
}

/// Handles one request frame (without its size prefix). `budget` is the frame's share of
/// the broker-wide request-bytes budget: given back once the request is decoded, except for a
/// produce, which holds it until handled (its payload stays in memory until appended).
pub(crate) async fn handle(
    ctx: &Arc<Context>,
    frame: Bytes,
    mut turn: Turn,
    peer: SocketAddr,
    budget: Option<OwnedSemaphorePermit>,
    cancel: &CancellationToken,
) -> Outcome {
    let arrived = std::time::Instant::now();
    let frame_bytes = frame.len();
    let correlation_id =
        weir_protocol::message::request_prefix(&frame).map_or(0, |p| p.correlation_id);
    let request = match decode_request(frame, handlers::advertised) {
        Ok(request) => request,
        Err(MessageError::UnsupportedVersion {
            key: ApiKey::ApiVersions,
            ..
        }) => {
            return unsupported_api_versions(correlation_id);
        }
        Err(err) => {
            ctx.metrics.requests.refused();
            return Outcome::Close(err.to_string());
        }
    };
    let (key, version) = (request.key, request.version);
    let _in_flight = ctx.metrics.requests.started(key, frame_bytes);
    let _budget = if key == ApiKey::Produce {
        budget
    } else {
        // Decoded: the frame's bytes are gone (Kafka releases all but produce buffers here).
        drop(budget);
        None
    };
    turn.wait().await;
    match handlers::handle(
        ctx,
        &request.header,
        peer,
        request.body,
        version,
        &mut turn,
        cancel,
    )
    .await
    {
        Ok(Some(response)) => {
            ctx.metrics.requests.errors(key, &response);
            let outcome = encode(key, version, correlation_id, &response);
            let bytes = match &outcome {
                Outcome::Respond(frame) => frame.len(),
                _ => 0,
            };
            ctx.metrics.requests.finished(key, bytes, arrived.elapsed());
            outcome
        }
        Ok(None) => {
            ctx.metrics.requests.finished(key, 0, arrived.elapsed());
            Outcome::NoResponse
        }
        Err(reason) => {
            ctx.metrics.requests.refused();
            Outcome::Close(reason)
        }
    }
}

fn encode(key: ApiKey, version: i16, correlation_id: i32, response: &ResponseKind) -> Outcome {
    match encode_response(key, version, correlation_id, response) {
        Ok(frame) => Outcome::Respond(frame),
        Err(err) => {
            // Our bug, not the client's: a handler set a field this version does not have.
            tracing::error!(error = %err, "cannot encode response");
            Outcome::Close(err.to_string())
        }
    }
}

/// Kafka's answer to an ApiVersions version it does not know: v0 encoding, error 35, the
/// supported ranges (clients read the ApiVersions range from it and retry).
fn unsupported_api_versions(correlation_id: i32) -> Outcome {
    let response = ApiVersionsResponse::default()
        .with_error_code(ErrorCode::UnsupportedVersion.code())
        .with_api_keys(handlers::api_versions::advertised_keys());
    encode(
        ApiKey::ApiVersions,
        0,
        correlation_id,
        &ResponseKind::ApiVersions(response),
    )
}
