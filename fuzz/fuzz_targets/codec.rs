//! The vendored kafka-protocol codec on its own, for every API and version it knows, request
//! and response bodies alike (Weir serves a subset, see the `request` target; the client
//! decodes responses).
//!
//! Input layout: bytes 0-1 API key, bytes 2-3 version (both big-endian, taken modulo the
//! codec's known keys and that key's version range, so nearly every input reaches a decoder),
//! byte 4 bit 0 selects response (1) or request (0), the rest is the body.
//!
//! Decoding must return, never panic or abort (`-malloc_limit_mb` catches allocation bombs).
//! A body that decodes must re-encode at the same version, decode to an equal message, and
//! re-encode to the same bytes.

#![no_main]

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [k0, k1, v0, v1, direction, body @ ..] = data else {
        return;
    };
    let keys: Vec<ApiKey> = ApiKey::iter().collect();
    let key = keys[usize::from(u16::from_be_bytes([*k0, *k1])) % keys.len()];
    let range = key.valid_versions();
    let span = u16::try_from(range.max - range.min + 1).expect("a non-empty version range");
    let version = range.min + (u16::from_be_bytes([*v0, *v1]) % span) as i16;

    if direction & 1 == 0 {
        let Ok(message) = RequestKind::decode(key, &mut Bytes::copy_from_slice(body), version)
        else {
            return;
        };
        let mut first = BytesMut::new();
        message
            .encode(&mut first, version)
            .unwrap_or_else(|err| panic!("{key:?} v{version} request does not re-encode: {err}"));
        let again = RequestKind::decode(key, &mut first.clone().freeze(), version)
            .unwrap_or_else(|err| panic!("{key:?} v{version} request re-encoding: {err}"));
        // Floats (AlterClientQuotas) may be NaN, which is never equal to itself: compare the
        // bytes below instead for those.
        if key != ApiKey::AlterClientQuotas {
            assert!(again == message, "{key:?} v{version} request changed");
        }
        let mut second = BytesMut::new();
        again.encode(&mut second, version).expect("encodes again");
        assert_eq!(
            first, second,
            "{key:?} v{version} request encoding is not stable"
        );
    } else {
        let Ok(message) = ResponseKind::decode(key, &mut Bytes::copy_from_slice(body), version)
        else {
            return;
        };
        let mut first = BytesMut::new();
        message
            .encode(&mut first, version)
            .unwrap_or_else(|err| panic!("{key:?} v{version} response does not re-encode: {err}"));
        let again = ResponseKind::decode(key, &mut first.clone().freeze(), version)
            .unwrap_or_else(|err| panic!("{key:?} v{version} response re-encoding: {err}"));
        if key != ApiKey::DescribeClientQuotas {
            assert!(again == message, "{key:?} v{version} response changed");
        }
        let mut second = BytesMut::new();
        again.encode(&mut second, version).expect("encodes again");
        assert_eq!(
            first, second,
            "{key:?} v{version} response encoding is not stable"
        );
    }
});
