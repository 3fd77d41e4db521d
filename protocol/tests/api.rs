//! The supported-API table, negotiation and header versions.

use weir_protocol::api::{
    ApiKey, SUPPORTED_APIS, UnknownApiKey, VersionRange, first_flexible_version, negotiate,
    request_header_version, response_header_version, supported_range,
};

#[test]
fn table_round_trips_through_try_from() {
    for &(key, _) in SUPPORTED_APIS {
        assert_eq!(ApiKey::try_from(key.code()), Ok(key));
    }
    for key in ApiKey::ALL {
        assert_eq!(ApiKey::try_from(key.code()), Ok(key));
    }
    for unknown in [-1, 4, 17, 24, 36, 45, 62, i16::MAX, i16::MIN] {
        assert_eq!(ApiKey::try_from(unknown), Err(UnknownApiKey(unknown)));
    }
}

#[test]
fn ranges_match_the_design_exactly() {
    let expected: &[(i16, &str, i16, i16)] = &[
        (0, "Produce", 3, 7),
        (1, "Fetch", 4, 11),
        (2, "ListOffsets", 1, 7),
        (3, "Metadata", 0, 8),
        (8, "OffsetCommit", 2, 7),
        (9, "OffsetFetch", 1, 7),
        (10, "FindCoordinator", 0, 2),
        (11, "JoinGroup", 0, 5),
        (12, "Heartbeat", 0, 3),
        (13, "LeaveGroup", 0, 3),
        (14, "SyncGroup", 0, 3),
        (15, "DescribeGroups", 0, 4),
        (16, "ListGroups", 0, 5),
        (18, "ApiVersions", 0, 3),
        (19, "CreateTopics", 2, 6),
        (20, "DeleteTopics", 1, 3),
        (21, "DeleteRecords", 0, 1),
        (22, "InitProducerId", 0, 1),
        (23, "OffsetForLeaderEpoch", 2, 4),
        (32, "DescribeConfigs", 1, 3),
        (33, "AlterConfigs", 0, 1),
        (35, "DescribeLogDirs", 1, 4),
        (37, "CreatePartitions", 0, 1),
        (42, "DeleteGroups", 0, 1),
        (43, "ElectLeaders", 0, 2),
        (44, "IncrementalAlterConfigs", 0, 0),
        (47, "OffsetDelete", 0, 0),
        (60, "DescribeCluster", 0, 2),
        (61, "DescribeProducers", 0, 0),
    ];
    let actual: Vec<(i16, &str, i16, i16)> = SUPPORTED_APIS
        .iter()
        .map(|&(k, r)| (k.code(), k.name(), r.min, r.max))
        .collect();
    assert_eq!(actual, expected);
    for &(key, r) in SUPPORTED_APIS {
        assert_eq!(supported_range(key), Some(r));
    }
}

#[test]
fn negotiation_picks_the_highest_common_version() {
    // Broker newer than us: our max.
    assert_eq!(
        negotiate(ApiKey::Produce, VersionRange::new(0, 11)),
        Some(7)
    );
    // Broker older than us: its max.
    assert_eq!(negotiate(ApiKey::Fetch, VersionRange::new(0, 6)), Some(6));
    // Touching at one version.
    assert_eq!(
        negotiate(ApiKey::Produce, VersionRange::new(7, 12)),
        Some(7)
    );
    assert_eq!(negotiate(ApiKey::Produce, VersionRange::new(0, 3)), Some(3));
    // Disjoint.
    assert_eq!(negotiate(ApiKey::Produce, VersionRange::new(8, 12)), None);
    assert_eq!(negotiate(ApiKey::Produce, VersionRange::new(0, 2)), None);
    assert_eq!(
        negotiate(ApiKey::ApiVersions, VersionRange::new(4, 4)),
        None
    );
    // Inverted broker range.
    assert_eq!(negotiate(ApiKey::Metadata, VersionRange::new(5, 1)), None);
}

#[test]
fn version_range_contains_and_intersect() {
    let r = VersionRange::new(2, 5);
    assert!(r.contains(2) && r.contains(5) && !r.contains(1) && !r.contains(6));
    assert_eq!(
        r.intersect(VersionRange::new(4, 9)),
        Some(VersionRange::new(4, 5))
    );
    assert_eq!(r.intersect(VersionRange::new(6, 9)), None);
    assert_eq!(r.to_string(), "2..=5");
}

#[test]
fn header_versions_known_cases() {
    let cases: &[(ApiKey, i16, i16, i16)] = &[
        (ApiKey::Produce, 7, 1, 0),
        (ApiKey::Produce, 9, 2, 1),
        (ApiKey::ApiVersions, 0, 1, 0),
        (ApiKey::ApiVersions, 3, 2, 0),
        (ApiKey::ApiVersions, 4, 2, 0),
        (ApiKey::Metadata, 6, 1, 0),
        (ApiKey::Metadata, 9, 2, 1),
        (ApiKey::Fetch, 11, 1, 0),
        (ApiKey::Fetch, 12, 2, 1),
        (ApiKey::FindCoordinator, 0, 1, 0),
        (ApiKey::FindCoordinator, 3, 2, 1),
        (ApiKey::InitProducerId, 2, 2, 1),
    ];
    for &(key, version, request, response) in cases {
        assert_eq!(
            request_header_version(key, version),
            request,
            "{key} v{version} request"
        );
        assert_eq!(
            response_header_version(key, version),
            response,
            "{key} v{version} response"
        );
    }
}

#[test]
fn header_versions_follow_first_flexible_version() {
    for key in ApiKey::ALL {
        let flex = first_flexible_version(key);
        for version in 0..=flex + 3 {
            let flexible = version >= flex;
            assert_eq!(
                request_header_version(key, version),
                if flexible { 2 } else { 1 }
            );
            let response = if flexible && key != ApiKey::ApiVersions {
                1
            } else {
                0
            };
            assert_eq!(response_header_version(key, version), response);
        }
    }
}

#[test]
fn only_api_versions_v3_and_the_flexible_admin_apis_use_flexible_headers_in_range() {
    // Admin APIs served in flexible versions: DescribeLogDirs v2-4 (v4 has the disk figures),
    // DescribeCluster and DescribeProducers (flexible from v0), CreateTopics v5-6 (the new
    // topic's configs in the answer); the group APIs ListGroups v3-5 (state and type
    // filters) and OffsetFetch v6-7 (require_stable); for leader epochs, ListOffsets v6-7 and
    // OffsetForLeaderEpoch v4 (what librdkafka and the Java client send).
    let flexible_admin = |key: ApiKey, version: i16| match key {
        ApiKey::DescribeLogDirs => version >= 2,
        ApiKey::ListOffsets => version >= 6,
        ApiKey::OffsetForLeaderEpoch => version >= 4,
        ApiKey::CreateTopics => version >= 5,
        ApiKey::ListGroups => version >= 3,
        ApiKey::OffsetFetch => version >= 6,
        ApiKey::ElectLeaders => version >= 2,
        ApiKey::DescribeCluster | ApiKey::DescribeProducers => true,
        _ => false,
    };
    for &(key, r) in SUPPORTED_APIS {
        for version in r.min..=r.max {
            if flexible_admin(key, version) {
                assert_eq!(request_header_version(key, version), 2, "{key} v{version}");
                assert_eq!(response_header_version(key, version), 1, "{key} v{version}");
                continue;
            }
            let expected = if key == ApiKey::ApiVersions && version == 3 {
                2
            } else {
                1
            };
            assert_eq!(
                request_header_version(key, version),
                expected,
                "{key} v{version}"
            );
            assert_eq!(response_header_version(key, version), 0, "{key} v{version}");
        }
    }
}

/// Cross-check against the `kafka-protocol` crate (generated from Kafka's message schemas),
/// which this crate already depends on for message bodies.
#[test]
fn header_versions_agree_with_kafka_protocol() {
    for key in ApiKey::ALL {
        let Ok(theirs) = kafka_protocol::messages::ApiKey::try_from(key.code()) else {
            panic!("kafka-protocol does not know {key}");
        };
        for version in 0..=20 {
            assert_eq!(
                request_header_version(key, version),
                theirs.request_header_version(version),
                "{key} v{version} request header"
            );
            assert_eq!(
                response_header_version(key, version),
                theirs.response_header_version(version),
                "{key} v{version} response header"
            );
        }
    }
}
