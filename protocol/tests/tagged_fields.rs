//! Unknown tagged fields survive a decode/encode round trip, including tags of 2^31 and above,
//! which the codec stores as negative `i32` keys. Before the vendored kafka-protocol patch
//! (vendor/kafka-protocol/WEIR-PATCH.md) those were counted but never written, so the encoding
//! announced more fields than it held and did not decode again. Found by the `request` fuzz
//! target (docs/fuzzing.md).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey as WireApiKey, RequestKind};
use weir_protocol::api::{ApiKey, supported_range};
use weir_protocol::message::{decode_request, encode_request};

/// ApiVersions v3 body: client software name "a", version "1", then two unknown tagged
/// fields: tag 5 = [0x2a] and tag 0xffff_ffff = [0x2b].
const BODY: &[u8] = &[
    0x02, b'a', 0x02, b'1', // compact strings
    0x02, // two tagged fields
    0x05, 0x01, 0x2a, // tag 5, one byte
    0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x2b, // tag u32::MAX, one byte
];

#[test]
fn tags_above_i32_max_are_written_back() {
    let decoded = RequestKind::decode(WireApiKey::ApiVersions, &mut Bytes::from_static(BODY), 3)
        .expect("decodes");
    let RequestKind::ApiVersions(request) = &decoded else {
        panic!("not ApiVersions: {decoded:?}");
    };
    assert_eq!(request.unknown_tagged_fields.len(), 2);
    assert_eq!(
        request.unknown_tagged_fields.get(&-1),
        Some(&Bytes::from_static(&[0x2b]))
    );

    let mut encoded = BytesMut::new();
    decoded.encode(&mut encoded, 3).expect("encodes");
    assert_eq!(&encoded[..], BODY, "same bytes, the high tag last");
}

#[test]
fn a_request_with_a_high_tag_round_trips_through_weir_protocol() {
    // Header v2: api key 18, version 3, correlation id 7, client id "c", no tagged fields.
    let mut frame = vec![0, 18, 0, 3, 0, 0, 0, 7, 0, 1, b'c', 0];
    frame.extend_from_slice(BODY);
    let request = decode_request(Bytes::from(frame), supported_range).expect("decodes");
    let encoded = encode_request(
        ApiKey::ApiVersions,
        3,
        7,
        request.header.client_id.as_deref(),
        &request.body,
    )
    .expect("encodes");
    let again = decode_request(Bytes::copy_from_slice(&encoded[4..]), supported_range)
        .expect("the re-encoded request decodes");
    assert_eq!(again.body, request.body);
}
