//! ApiVersions (key 18), v0-3: the advertised API ranges.

use kafka_protocol::messages::ApiVersionsResponse;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use weir_protocol::api::SUPPORTED_APIS;

use super::advertised;

/// Every API the broker serves, with its version range.
pub(crate) fn advertised_keys() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .filter_map(|(key, _)| advertised(*key).map(|range| (key, range)))
        .map(|(key, range)| {
            ApiVersion::default()
                .with_api_key(key.code())
                .with_min_version(range.min)
                .with_max_version(range.max)
        })
        .collect()
}

pub(crate) fn handle() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(advertised_keys())
}
