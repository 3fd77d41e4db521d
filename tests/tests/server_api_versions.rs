//! ApiVersions (key 18) against an in-process broker: every version lists exactly the served
//! APIs with their ranges, and an unknown version gets Kafka's v0-encoded UNSUPPORTED_VERSION
//! answer with the same list.

use kafka_protocol::messages::ApiVersionsRequest;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::protocol::StrBytes;
use weir_protocol::api::{ApiKey, SUPPORTED_APIS, supported_range};
use weir_protocol::error_code::ErrorCode;
use weir_protocol::message::decode_response;
use weir_tests::{TestBroker, raw_request, versions};

/// The APIs the broker serves: all of the shared table, each over its whole range.
fn served() -> Vec<ApiKey> {
    SUPPORTED_APIS.iter().map(|(key, _)| *key).collect()
}

fn check_api_list(api_keys: &[ApiVersion], context: &str) {
    let listed: Vec<(i16, i16, i16)> = api_keys
        .iter()
        .map(|a| (a.api_key, a.min_version, a.max_version))
        .collect();
    for key in served() {
        let range = supported_range(key).unwrap();
        assert!(
            listed.contains(&(key.code(), range.min, range.max)),
            "{context}: {key} {range} missing from {listed:?}"
        );
    }
    for &(code, min, max) in &listed {
        let key = ApiKey::try_from(code)
            .unwrap_or_else(|_| panic!("{context}: unknown key {code} advertised"));
        assert!(
            served().contains(&key),
            "{context}: {key} is advertised but not served"
        );
        let range = supported_range(key).unwrap();
        assert_eq!((min, max), (range.min, range.max), "{context}: {key}");
    }
    let mut codes: Vec<i16> = listed.iter().map(|l| l.0).collect();
    codes.dedup();
    assert_eq!(
        codes.len(),
        listed.len(),
        "{context}: a key is listed twice"
    );
}

#[tokio::test]
async fn every_version_lists_exactly_the_served_apis() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    for v in versions(ApiKey::ApiVersions) {
        let mut request = ApiVersionsRequest::default();
        if v >= 3 {
            request = request
                .with_client_software_name(StrBytes::from_static_str("weir-tests"))
                .with_client_software_version(StrBytes::from_static_str("0.1.0"));
        }
        let response = client.call(v, request).await;
        assert_eq!(response.error_code, 0, "v{v}");
        assert_eq!(response.throttle_time_ms, 0, "v{v}");
        check_api_list(&response.api_keys, &format!("v{v}"));
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn unsupported_version_gets_a_v0_error_with_the_ranges() {
    let broker = TestBroker::start().await;
    let max = *versions(ApiKey::ApiVersions).end();
    let mut client = broker.client().await;
    for (i, version) in [max + 1, 127, i16::MAX].into_iter().enumerate() {
        let correlation_id = 1000 + i32::try_from(i).unwrap();
        // A newer client's request: header v2 (tagged fields) and a body we cannot parse.
        let mut body = vec![0u8]; // empty tagged fields of the header
        body.extend_from_slice(b"\x0bweir-tests\x061.0.0\x00");
        client
            .send_raw(&raw_request(
                ApiKey::ApiVersions.code(),
                version,
                correlation_id,
                &body,
            ))
            .await;
        let frame = client.recv_frame().await.expect("an answer, not a close");
        let (id, kind) = decode_response(ApiKey::ApiVersions, 0, frame.clone()).unwrap();
        assert_eq!(id, correlation_id, "v{version}");
        let kafka_protocol::messages::ResponseKind::ApiVersions(response) = kind else {
            panic!("not an ApiVersions response");
        };
        assert_eq!(
            response.error_code,
            ErrorCode::UnsupportedVersion.code(),
            "v{version}"
        );
        check_api_list(&response.api_keys, &format!("v{version} error"));
        // v0 body: error code, then the array; nothing else may follow (no throttle time).
        let expected_len = 4 + 2 + 4 + response.api_keys.len() * 6;
        assert_eq!(frame.len(), expected_len, "v0 encoding, v{version}");
    }
    // The connection stays usable: the client retries lower.
    let response = client.call(0, ApiVersionsRequest::default()).await;
    assert_eq!(response.error_code, 0);
    broker.shutdown().await;
}
