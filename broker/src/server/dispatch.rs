//! From a request frame to a response frame: header, version check, decode, handler, encode.
//!
//! Bad input never panics and never reaches a handler: a frame too short for a header, an
//! unknown API key, a version outside the advertised range or an undecodable body closes the
//! connection (as Kafka does), except an unsupported ApiVersions version, which gets Kafka's
//! answer: a v0-encoded UNSUPPORTED_VERSION listing the supported range, so clients retry
//! lower.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey as WireApiKey, ApiVersionsResponse, RequestHeader, RequestKind, ResponseHeader,
    ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use weir_protocol::api::{ApiKey, request_header_version, response_header_version};
use weir_protocol::error_code::ErrorCode;

use super::Context;
use super::handlers;

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

/// Whether a frame is a Produce request (which counts against the produce-bytes budget).
pub(crate) fn is_produce(frame: &[u8]) -> bool {
    frame.len() >= 2 && i16::from_be_bytes([frame[0], frame[1]]) == ApiKey::Produce.code()
}

/// Handles one request frame (without its size prefix).
pub(crate) async fn handle(ctx: &Arc<Context>, mut frame: Bytes) -> Outcome {
    if frame.len() < 8 {
        return Outcome::Close(format!(
            "request of {} bytes is shorter than a request header",
            frame.len()
        ));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Ok(key) = ApiKey::try_from(raw_key) else {
        return Outcome::Close(format!("unknown API key {raw_key}"));
    };
    let Some(range) = handlers::advertised(key) else {
        return Outcome::Close(format!("API {} is not supported", key.name()));
    };
    if !range.contains(version) {
        if key == ApiKey::ApiVersions {
            return unsupported_api_versions(correlation_id);
        }
        return Outcome::Close(format!(
            "{} v{version} is not supported (supported: {}-{})",
            key.name(),
            range.min,
            range.max
        ));
    }
    let header = match RequestHeader::decode(&mut frame, request_header_version(key, version)) {
        Ok(header) => header,
        Err(err) => return Outcome::Close(format!("bad {} request header: {err}", key.name())),
    };
    let Ok(wire_key) = WireApiKey::try_from(raw_key) else {
        return Outcome::Close(format!("unknown API key {raw_key}"));
    };
    let request = match RequestKind::decode(wire_key, &mut frame, version) {
        Ok(request) => request,
        Err(err) => return Outcome::Close(format!("bad {} v{version} request: {err}", key.name())),
    };
    match handlers::handle(ctx, &header, request, version).await {
        Ok(Some(response)) => encode(key, version, correlation_id, &response),
        Ok(None) => Outcome::NoResponse,
        Err(reason) => Outcome::Close(reason),
    }
}

fn encode(key: ApiKey, version: i16, correlation_id: i32, response: &ResponseKind) -> Outcome {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let encoded = header
        .encode(&mut buf, response_header_version(key, version))
        .and_then(|()| response.encode(&mut buf, version));
    if let Err(err) = encoded {
        // Our bug, not the client's: a handler set a field this version does not have.
        tracing::error!(api = key.name(), version, error = %err, "cannot encode response");
        return Outcome::Close(format!(
            "cannot encode {} v{version} response: {err}",
            key.name()
        ));
    }
    let Ok(size) = i32::try_from(buf.len() - 4) else {
        return Outcome::Close(format!("{} response larger than 2 GiB", key.name()));
    };
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Outcome::Respond(buf)
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
