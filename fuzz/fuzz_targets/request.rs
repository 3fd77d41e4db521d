//! `message::decode_request` on arbitrary frame payloads (the bytes after the size prefix),
//! with the broker's own table of supported versions.
//!
//! Decoding must return, never panic or abort; allocation bombs (a count or length far larger
//! than the input) show up as a libFuzzer `-malloc_limit_mb` or `-rss_limit_mb` failure.
//!
//! When decoding succeeds, the request goes round the codec: `encode_request` must accept it
//! at the version it was read at, the result must decode again (same API, version,
//! correlation id and client id), and encoding that second decode must give the same bytes
//! (the encoding is a fixed point even when the input used non-canonical forms).

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use weir_protocol::api::supported_range;
use weir_protocol::message::{Request, decode_request, encode_request, request_prefix};

fn encode(request: &Request) -> BytesMut {
    let client_id = request.header.client_id.as_deref();
    encode_request(
        request.key,
        request.version,
        request.header.correlation_id,
        client_id,
        &request.body,
    )
    .unwrap_or_else(|err| {
        panic!(
            "{} v{} decoded but does not re-encode: {err}",
            request.key, request.version
        )
    })
}

/// The payload of a frame `encode_request` produced, checking its size prefix.
fn payload(frame: &BytesMut) -> Bytes {
    let (prefix, rest) = frame.split_first_chunk::<4>().expect("a size prefix");
    assert_eq!(
        i32::from_be_bytes(*prefix) as usize,
        rest.len(),
        "size prefix"
    );
    Bytes::copy_from_slice(rest)
}

fuzz_target!(|data: &[u8]| {
    let prefix = request_prefix(data);
    let Ok(request) = decode_request(Bytes::copy_from_slice(data), supported_range) else {
        return;
    };
    let prefix = prefix.expect("a decoded request has a prefix");
    assert_eq!(request.key.code(), prefix.api_key);
    assert_eq!(request.version, prefix.api_version);
    assert_eq!(request.header.correlation_id, prefix.correlation_id);
    assert_eq!(request.header.request_api_key, prefix.api_key);
    assert_eq!(request.header.request_api_version, prefix.api_version);

    let first = encode(&request);
    let again = decode_request(payload(&first), supported_range).unwrap_or_else(|err| {
        panic!(
            "{} v{} re-encoded to bytes that do not decode: {err}",
            request.key, request.version
        )
    });
    assert_eq!(again.key, request.key);
    assert_eq!(again.version, request.version);
    assert_eq!(again.header.correlation_id, request.header.correlation_id);
    assert_eq!(again.header.client_id, request.header.client_id);
    assert!(
        again.body == request.body,
        "{} v{}: body changed",
        request.key,
        request.version
    );
    let second = encode(&again);
    assert_eq!(
        first, second,
        "{} v{}: encoding is not stable",
        request.key, request.version
    );
});
