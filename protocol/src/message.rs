//! Whole request and response messages: header plus body, by (API key, version).
//!
//! Owns the step between a frame (the bytes after the size prefix) and a typed message from
//! the `kafka-protocol` crate, in both directions, so the broker (decode requests, encode
//! responses), the client (the reverse) and the fuzz targets share one implementation.
//!
//! Bodies are decoded from `Bytes`, so record payloads inside a Produce request or a Fetch
//! response are slices of the frame, not copies. Every failure is a typed [`MessageError`];
//! nothing here panics on any input (see the `request` fuzz target).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey as WireApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use thiserror::Error;

use crate::api::{ApiKey, VersionRange, request_header_version, response_header_version};

/// The fixed start of every request header (all header versions share it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPrefix {
    /// The raw API key.
    pub api_key: i16,
    /// The request's API version.
    pub api_version: i16,
    /// Echoed in the response.
    pub correlation_id: i32,
}

/// A decoded request.
#[derive(Debug)]
pub struct Request {
    /// The API.
    pub key: ApiKey,
    /// Its version (inside the supported range).
    pub version: i16,
    /// The request header (client id, correlation id).
    pub header: RequestHeader,
    /// The body.
    pub body: RequestKind,
}

/// Why a message could not be decoded or encoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MessageError {
    /// The frame is shorter than the fixed header prefix.
    #[error("message of {0} bytes is shorter than a header")]
    TooShort(usize),
    /// The API key is not one Weir knows.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// Weir does not serve this API at all.
    #[error("API {} is not supported", .0.name())]
    UnsupportedApi(ApiKey),
    /// The version is outside the supported range.
    #[error("{} v{version} is not supported (supported: {}-{})", key.name(), range.min, range.max)]
    UnsupportedVersion {
        /// The API.
        key: ApiKey,
        /// The version asked for.
        version: i16,
        /// What is supported.
        range: VersionRange,
    },
    /// The header did not decode.
    #[error("bad {} v{version} header: {reason}", key.name())]
    BadHeader {
        /// The API.
        key: ApiKey,
        /// Its version.
        version: i16,
        /// The decoder's complaint.
        reason: String,
    },
    /// The body did not decode, or bytes were left over after it.
    #[error("bad {} v{version} body: {reason}", key.name())]
    BadBody {
        /// The API.
        key: ApiKey,
        /// Its version.
        version: i16,
        /// The decoder's complaint.
        reason: String,
    },
    /// A message could not be encoded at this version (a field set that the version lacks).
    #[error("cannot encode {} v{version}: {reason}", key.name())]
    Encode {
        /// The API.
        key: ApiKey,
        /// Its version.
        version: i16,
        /// The encoder's complaint.
        reason: String,
    },
    /// The encoded message exceeds the 2 GiB a size prefix can describe.
    #[error("encoded message of {0} bytes is too large for a frame")]
    TooLarge(usize),
}

/// Reads the fixed prefix of a request header without decoding anything else.
///
/// # Errors
/// [`MessageError::TooShort`] when fewer than 8 bytes are given.
pub fn request_prefix(frame: &[u8]) -> Result<RequestPrefix, MessageError> {
    let Some(prefix) = frame.get(..8) else {
        return Err(MessageError::TooShort(frame.len()));
    };
    Ok(RequestPrefix {
        api_key: i16::from_be_bytes([prefix[0], prefix[1]]),
        api_version: i16::from_be_bytes([prefix[2], prefix[3]]),
        correlation_id: i32::from_be_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]),
    })
}

/// Decodes a request frame (without its size prefix). `supported` gives the version range
/// served for each API (`None`: not served); the version is checked before the body is read.
///
/// # Errors
/// Any [`MessageError`] but `Encode` and `TooLarge`.
pub fn decode_request(
    mut frame: Bytes,
    supported: impl Fn(ApiKey) -> Option<VersionRange>,
) -> Result<Request, MessageError> {
    let prefix = request_prefix(&frame)?;
    let version = prefix.api_version;
    let key = ApiKey::try_from(prefix.api_key)
        .map_err(|_unknown| MessageError::UnknownApiKey(prefix.api_key))?;
    let range = supported(key).ok_or(MessageError::UnsupportedApi(key))?;
    if !range.contains(version) {
        return Err(MessageError::UnsupportedVersion {
            key,
            version,
            range,
        });
    }
    let header =
        RequestHeader::decode(&mut frame, request_header_version(key, version)).map_err(|err| {
            MessageError::BadHeader {
                key,
                version,
                reason: err.to_string(),
            }
        })?;
    let bad_body = |reason: String| MessageError::BadBody {
        key,
        version,
        reason,
    };
    let wire_key = WireApiKey::try_from(prefix.api_key)
        .map_err(|()| bad_body("unknown to the codec".into()))?;
    let body = RequestKind::decode(wire_key, &mut frame, version)
        .map_err(|err| bad_body(err.to_string()))?;
    if !frame.is_empty() {
        return Err(bad_body(format!("{} bytes left over", frame.len())));
    }
    Ok(Request {
        key,
        version,
        header,
        body,
    })
}

/// Encodes a request as a whole frame, size prefix included.
///
/// # Errors
/// [`MessageError::Encode`] when `body` cannot be expressed at `version`.
pub fn encode_request(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: Option<&str>,
    body: &RequestKind,
) -> Result<BytesMut, MessageError> {
    let header = RequestHeader::default()
        .with_request_api_key(key.code())
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(
            client_id.map(|id| kafka_protocol::protocol::StrBytes::from_string(id.to_owned())),
        );
    framed(key, version, |buf| {
        header.encode(buf, request_header_version(key, version))?;
        body.encode(buf, version)
    })
}

/// Encodes a response as a whole frame, size prefix included.
///
/// # Errors
/// [`MessageError::Encode`] when `body` cannot be expressed at `version` (a handler bug).
pub fn encode_response(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<BytesMut, MessageError> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    framed(key, version, |buf| {
        header.encode(buf, response_header_version(key, version))?;
        body.encode(buf, version)
    })
}

/// Decodes a response frame (without its size prefix) to an API whose version is known.
/// Returns the correlation id and the body.
///
/// # Errors
/// [`MessageError::BadHeader`] or [`MessageError::BadBody`].
pub fn decode_response(
    key: ApiKey,
    version: i16,
    mut frame: Bytes,
) -> Result<(i32, ResponseKind), MessageError> {
    let header = ResponseHeader::decode(&mut frame, response_header_version(key, version))
        .map_err(|err| MessageError::BadHeader {
            key,
            version,
            reason: err.to_string(),
        })?;
    let bad_body = |reason: String| MessageError::BadBody {
        key,
        version,
        reason,
    };
    let wire_key =
        WireApiKey::try_from(key.code()).map_err(|()| bad_body("unknown to the codec".into()))?;
    let body = ResponseKind::decode(wire_key, &mut frame, version)
        .map_err(|err| bad_body(err.to_string()))?;
    Ok((header.correlation_id, body))
}

fn framed<E: std::fmt::Display>(
    key: ApiKey,
    version: i16,
    write: impl FnOnce(&mut BytesMut) -> Result<(), E>,
) -> Result<BytesMut, MessageError> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    write(&mut buf).map_err(|err| MessageError::Encode {
        key,
        version,
        reason: err.to_string(),
    })?;
    let len = buf.len() - 4;
    let size = i32::try_from(len).map_err(|_overflow| MessageError::TooLarge(len))?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf)
}
