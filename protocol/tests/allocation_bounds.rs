//! Requests that claim more elements than they carry must be refused before anything is
//! allocated (the vendored kafka-protocol patch, vendor/kafka-protocol/WEIR-PATCH.md). Without
//! it, these few bytes make the process attempt a multi-gigabyte allocation and abort.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind};

#[test]
fn a_metadata_request_claiming_millions_of_topics_is_an_error() {
    // Metadata v0 body: topic array length 0x033c0c00 (54 million), then 2 bytes.
    let mut body = Bytes::from_static(&[0x03, 0x3c, 0x0c, 0x00, 0xb6]);
    assert!(RequestKind::decode(ApiKey::Metadata, &mut body, 0).is_err());
}

#[test]
fn arrays_claiming_i32_max_elements_are_errors_for_every_api_and_version() {
    // A body that is only an array length of i32::MAX (regular) or a huge compact length,
    // tried against every request type: whatever field comes first, nothing may abort.
    let regular = [0x7f, 0xff, 0xff, 0xff];
    let compact = [0xff, 0xff, 0xff, 0xff, 0x07];
    for key in ApiKey::iter() {
        let range = key.valid_versions();
        for version in range.min..=range.max {
            for bytes in [&regular[..], &compact[..]] {
                let mut body = Bytes::copy_from_slice(bytes);
                // Ok or Err are both acceptable; returning at all is the point.
                let _decoded = RequestKind::decode(key, &mut body, version);
            }
        }
    }
}
