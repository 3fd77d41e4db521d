//! The one table of APIs Weir speaks, with their version ranges and header versions.
//!
//! Owns [`ApiKey`] (the Kafka API keys Weir knows), [`SUPPORTED_APIS`] (what the broker
//! advertises in ApiVersions and what the client negotiates against), version negotiation, and
//! which request/response header version goes with each API version.
//!
//! It does not encode or decode headers or bodies, and it does not decide what a handler does
//! with a version: a range listed here is a promise that every version in it works.
//!
//! Invariants: [`SUPPORTED_APIS`] lists each key once, with `min <= max`; every range stays
//! below the API's first flexible version except ApiVersions v3 (see
//! `../shared/design/kafka-protocol.md`) and the admin APIs DescribeLogDirs v2-4,
//! DescribeCluster and DescribeProducers (flexible from v0), CreateTopics v5-6, ListGroups
//! v3-5 and OffsetFetch v6-7, and, for leader epochs (KIP-320), ListOffsets v6-7 and
//! OffsetForLeaderEpoch v4, and ElectLeaders v2. Header versions are right for any version, not only the
//! supported ones, because they come from Kafka's first flexible version per API.

use std::fmt;

/// A Kafka API key that Weir knows about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i16)]
pub enum ApiKey {
    /// Produce (0).
    Produce = 0,
    /// Fetch (1).
    Fetch = 1,
    /// ListOffsets (2).
    ListOffsets = 2,
    /// Metadata (3).
    Metadata = 3,
    /// OffsetCommit (8).
    OffsetCommit = 8,
    /// OffsetFetch (9).
    OffsetFetch = 9,
    /// FindCoordinator (10).
    FindCoordinator = 10,
    /// JoinGroup (11).
    JoinGroup = 11,
    /// Heartbeat (12).
    Heartbeat = 12,
    /// LeaveGroup (13).
    LeaveGroup = 13,
    /// SyncGroup (14).
    SyncGroup = 14,
    /// DescribeGroups (15).
    DescribeGroups = 15,
    /// ListGroups (16).
    ListGroups = 16,
    /// ApiVersions (18).
    ApiVersions = 18,
    /// CreateTopics (19).
    CreateTopics = 19,
    /// DeleteTopics (20).
    DeleteTopics = 20,
    /// DeleteRecords (21).
    DeleteRecords = 21,
    /// InitProducerId (22).
    InitProducerId = 22,
    /// OffsetForLeaderEpoch (23).
    OffsetForLeaderEpoch = 23,
    /// DescribeConfigs (32).
    DescribeConfigs = 32,
    /// AlterConfigs (33).
    AlterConfigs = 33,
    /// DescribeLogDirs (35).
    DescribeLogDirs = 35,
    /// CreatePartitions (37).
    CreatePartitions = 37,
    /// DeleteGroups (42).
    DeleteGroups = 42,
    /// ElectLeaders (43).
    ElectLeaders = 43,
    /// IncrementalAlterConfigs (44).
    IncrementalAlterConfigs = 44,
    /// OffsetDelete (47).
    OffsetDelete = 47,
    /// DescribeCluster (60).
    DescribeCluster = 60,
    /// DescribeProducers (61).
    DescribeProducers = 61,
}

/// An API key Weir does not know (the raw `request_api_key` from the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown API key {0}")]
pub struct UnknownApiKey(pub i16);

impl ApiKey {
    /// Every key, in ascending code order.
    pub const ALL: [ApiKey; 29] = [
        Self::Produce,
        Self::Fetch,
        Self::ListOffsets,
        Self::Metadata,
        Self::OffsetCommit,
        Self::OffsetFetch,
        Self::FindCoordinator,
        Self::JoinGroup,
        Self::Heartbeat,
        Self::LeaveGroup,
        Self::SyncGroup,
        Self::DescribeGroups,
        Self::ListGroups,
        Self::ApiVersions,
        Self::CreateTopics,
        Self::DeleteTopics,
        Self::DeleteRecords,
        Self::InitProducerId,
        Self::OffsetForLeaderEpoch,
        Self::DescribeConfigs,
        Self::AlterConfigs,
        Self::DescribeLogDirs,
        Self::CreatePartitions,
        Self::DeleteGroups,
        Self::ElectLeaders,
        Self::IncrementalAlterConfigs,
        Self::OffsetDelete,
        Self::DescribeCluster,
        Self::DescribeProducers,
    ];

    /// The key as sent on the wire.
    #[must_use]
    pub const fn code(self) -> i16 {
        self as i16
    }

    /// Kafka's name for the API, as in its message schemas (`"Produce"`, `"ApiVersions"`...).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Produce => "Produce",
            Self::Fetch => "Fetch",
            Self::ListOffsets => "ListOffsets",
            Self::Metadata => "Metadata",
            Self::OffsetCommit => "OffsetCommit",
            Self::OffsetFetch => "OffsetFetch",
            Self::FindCoordinator => "FindCoordinator",
            Self::JoinGroup => "JoinGroup",
            Self::Heartbeat => "Heartbeat",
            Self::LeaveGroup => "LeaveGroup",
            Self::SyncGroup => "SyncGroup",
            Self::DescribeGroups => "DescribeGroups",
            Self::ListGroups => "ListGroups",
            Self::ApiVersions => "ApiVersions",
            Self::CreateTopics => "CreateTopics",
            Self::DeleteTopics => "DeleteTopics",
            Self::DeleteRecords => "DeleteRecords",
            Self::InitProducerId => "InitProducerId",
            Self::OffsetForLeaderEpoch => "OffsetForLeaderEpoch",
            Self::DescribeConfigs => "DescribeConfigs",
            Self::AlterConfigs => "AlterConfigs",
            Self::CreatePartitions => "CreatePartitions",
            Self::DeleteGroups => "DeleteGroups",
            Self::ElectLeaders => "ElectLeaders",
            Self::IncrementalAlterConfigs => "IncrementalAlterConfigs",
            Self::DescribeLogDirs => "DescribeLogDirs",
            Self::OffsetDelete => "OffsetDelete",
            Self::DescribeCluster => "DescribeCluster",
            Self::DescribeProducers => "DescribeProducers",
        }
    }
}

impl TryFrom<i16> for ApiKey {
    type Error = UnknownApiKey;

    fn try_from(code: i16) -> Result<Self, UnknownApiKey> {
        Ok(match code {
            0 => Self::Produce,
            1 => Self::Fetch,
            2 => Self::ListOffsets,
            3 => Self::Metadata,
            8 => Self::OffsetCommit,
            9 => Self::OffsetFetch,
            10 => Self::FindCoordinator,
            11 => Self::JoinGroup,
            12 => Self::Heartbeat,
            13 => Self::LeaveGroup,
            14 => Self::SyncGroup,
            15 => Self::DescribeGroups,
            16 => Self::ListGroups,
            18 => Self::ApiVersions,
            19 => Self::CreateTopics,
            20 => Self::DeleteTopics,
            21 => Self::DeleteRecords,
            22 => Self::InitProducerId,
            23 => Self::OffsetForLeaderEpoch,
            32 => Self::DescribeConfigs,
            33 => Self::AlterConfigs,
            37 => Self::CreatePartitions,
            35 => Self::DescribeLogDirs,
            42 => Self::DeleteGroups,
            43 => Self::ElectLeaders,
            44 => Self::IncrementalAlterConfigs,
            47 => Self::OffsetDelete,
            60 => Self::DescribeCluster,
            61 => Self::DescribeProducers,
            other => return Err(UnknownApiKey(other)),
        })
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An inclusive range of API versions. A range with `min > max` contains nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionRange {
    /// Lowest version, inclusive.
    pub min: i16,
    /// Highest version, inclusive.
    pub max: i16,
}

impl VersionRange {
    /// `min..=max`.
    #[must_use]
    pub const fn new(min: i16, max: i16) -> Self {
        Self { min, max }
    }

    /// Whether `version` is inside the range.
    #[must_use]
    pub const fn contains(self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }

    /// The versions in both ranges, or `None` if there are none.
    #[must_use]
    pub fn intersect(self, other: Self) -> Option<Self> {
        let min = self.min.max(other.min);
        let max = self.max.min(other.max);
        (min <= max).then_some(Self { min, max })
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..={}", self.min, self.max)
    }
}

const fn range(min: i16, max: i16) -> VersionRange {
    VersionRange { min, max }
}

/// The APIs Weir implements and the versions of each, in ascending key order.
///
/// The broker advertises exactly this in ApiVersions; the client negotiates against it.
pub const SUPPORTED_APIS: &[(ApiKey, VersionRange)] = &[
    (ApiKey::Produce, range(3, 7)),
    (ApiKey::Fetch, range(4, 11)),
    // v4+ checks and answers leader epochs, v6+ is flexible, v7 knows MAX_TIMESTAMP (-3).
    (ApiKey::ListOffsets, range(1, 7)),
    // v7+ carries leader epochs; v8 asks for authorized operations. v9+ (flexible; topic ids
    // from v10) is not advertised: librdkafka 2.16 sends an all-topics Metadata v9+ request
    // with 3 bytes after its body (Kafka ignores trailing bytes; Weir refuses them).
    (ApiKey::Metadata, range(0, 8)),
    (ApiKey::OffsetCommit, range(2, 7)),
    // v6+ is flexible; v7's require_stable has nothing to wait for (no transactional
    // offsets). v8 batches groups (a different request shape), not served yet.
    (ApiKey::OffsetFetch, range(1, 7)),
    (ApiKey::FindCoordinator, range(0, 2)),
    (ApiKey::JoinGroup, range(0, 5)),
    (ApiKey::Heartbeat, range(0, 3)),
    (ApiKey::LeaveGroup, range(0, 3)),
    (ApiKey::SyncGroup, range(0, 3)),
    (ApiKey::DescribeGroups, range(0, 4)),
    // v3+ is flexible, v4 filters by state, v5 by type (every group is `classic`).
    (ApiKey::ListGroups, range(0, 5)),
    (ApiKey::ApiVersions, range(0, 3)),
    // v5+ (flexible) answers with the new topic's configs; v7 adds topic ids, which Weir
    // does not have yet.
    (ApiKey::CreateTopics, range(2, 6)),
    (ApiKey::DeleteTopics, range(1, 3)),
    // librdkafka sends v0-1; v2 is flexible.
    (ApiKey::DeleteRecords, range(0, 1)),
    (ApiKey::InitProducerId, range(0, 1)),
    // Answered from the leader's leader-epoch history. v0-1 have no codec (Kafka 4 dropped
    // them); librdkafka sends v2, the Java client v4 (flexible).
    (ApiKey::OffsetForLeaderEpoch, range(2, 4)),
    // v3 adds config types and documentation; v4+ is flexible.
    (ApiKey::DescribeConfigs, range(1, 3)),
    // kafka-python and librdkafka send v0-1; v2+ is flexible.
    (ApiKey::AlterConfigs, range(0, 1)),
    // v0 is gone from Kafka 4 (and the codec); v2+ is flexible, v4 carries the disk's total
    // and usable bytes.
    (ApiKey::DescribeLogDirs, range(1, 4)),
    // librdkafka (so confluent-kafka) and kafka-python send v0-1; v2+ is flexible.
    (ApiKey::CreatePartitions, range(0, 1)),
    (ApiKey::DeleteGroups, range(0, 1)),
    // Preferred-leader elections; v1 adds the election type, v2 is flexible (what Kafka's
    // tools send).
    (ApiKey::ElectLeaders, range(0, 2)),
    // librdkafka sends v0-1 (v1 is flexible, so v0 here); kafka-python v0.
    (ApiKey::IncrementalAlterConfigs, range(0, 0)),
    (ApiKey::OffsetDelete, range(0, 0)),
    // Flexible from v0: no older encoding exists.
    (ApiKey::DescribeCluster, range(0, 2)),
    (ApiKey::DescribeProducers, range(0, 0)),
];

/// The versions of `key` Weir supports, or `None` if it does not support the API.
#[must_use]
pub fn supported_range(key: ApiKey) -> Option<VersionRange> {
    SUPPORTED_APIS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|&(_, r)| r)
}

/// The version to use for `key` against a peer supporting `broker`: the highest version in
/// both ranges, or `None` if they do not overlap (or Weir does not support the API).
#[must_use]
pub fn negotiate(key: ApiKey, broker: VersionRange) -> Option<i16> {
    supported_range(key)?.intersect(broker).map(|r| r.max)
}

/// The first version of `key` that uses the flexible encoding (compact strings and arrays,
/// tagged fields), from `flexibleVersions` in Kafka's message schemas.
#[must_use]
pub const fn first_flexible_version(key: ApiKey) -> i16 {
    match key {
        ApiKey::Produce => 9,
        ApiKey::Fetch => 12,
        ApiKey::ListOffsets => 6,
        ApiKey::Metadata => 9,
        ApiKey::OffsetCommit => 8,
        ApiKey::OffsetFetch => 6,
        ApiKey::FindCoordinator => 3,
        ApiKey::JoinGroup => 6,
        ApiKey::Heartbeat => 4,
        ApiKey::LeaveGroup => 4,
        ApiKey::SyncGroup => 4,
        ApiKey::DescribeGroups => 5,
        ApiKey::ListGroups => 3,
        ApiKey::ApiVersions => 3,
        ApiKey::CreateTopics => 5,
        ApiKey::DeleteTopics => 4,
        ApiKey::InitProducerId => 2,
        ApiKey::OffsetForLeaderEpoch => 4,
        ApiKey::DescribeConfigs => 4,
        ApiKey::AlterConfigs => 2,
        ApiKey::CreatePartitions => 2,
        ApiKey::DeleteGroups => 2,
        ApiKey::ElectLeaders => 2,
        ApiKey::IncrementalAlterConfigs => 1,
        ApiKey::DeleteRecords => 2,
        ApiKey::DescribeLogDirs => 2,
        // OffsetDelete has no flexible version: any number past its versions says so.
        ApiKey::OffsetDelete => 100,
        ApiKey::DescribeCluster => 0,
        ApiKey::DescribeProducers => 0,
    }
}

/// Whether `version` of `key` uses the flexible encoding in its body.
#[must_use]
pub const fn is_flexible(key: ApiKey, version: i16) -> bool {
    version >= first_flexible_version(key)
}

/// The request header version for `version` of `key`: 2 (with tagged fields) for flexible
/// versions, 1 otherwise.
#[must_use]
pub const fn request_header_version(key: ApiKey, version: i16) -> i16 {
    if is_flexible(key, version) { 2 } else { 1 }
}

/// The response header version for `version` of `key`: 1 (with tagged fields) for flexible
/// versions, 0 otherwise.
///
/// Trap: the ApiVersions response header is always v0, even for flexible versions, so that a
/// client can read the error of a response to a version the broker does not understand.
#[must_use]
pub const fn response_header_version(key: ApiKey, version: i16) -> i16 {
    match key {
        ApiKey::ApiVersions => 0,
        _ if is_flexible(key, version) => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_sorted_and_matches_the_table() {
        assert!(ApiKey::ALL.windows(2).all(|w| w[0].code() < w[1].code()));
        let table: Vec<ApiKey> = SUPPORTED_APIS.iter().map(|&(k, _)| k).collect();
        assert_eq!(table, ApiKey::ALL);
    }

    /// The admin APIs served in flexible versions: those that have no other (DescribeCluster,
    /// DescribeProducers), DescribeLogDirs, whose disk figures come only in v4, and
    /// CreateTopics v5-6, whose answer carries the new topic's configs.
    const FLEXIBLE_IN_RANGE: &[(ApiKey, &[i16])] = &[
        (ApiKey::DescribeLogDirs, &[2, 3, 4]),
        (ApiKey::DescribeCluster, &[0, 1, 2]),
        (ApiKey::DescribeProducers, &[0]),
        // The Java client sends v4 (flexible).
        (ApiKey::OffsetForLeaderEpoch, &[4]),
        // librdkafka and the Java client send v7 (flexible).
        (ApiKey::ListOffsets, &[6, 7]),
        // v5+ carries the new topic's configs in the answer.
        (ApiKey::CreateTopics, &[5, 6]),
        // The Java admin and kafka-consumer-groups filter by state (v4) and type (v5).
        (ApiKey::ListGroups, &[3, 4, 5]),
        // v7's require_stable comes from read_committed consumers.
        (ApiKey::OffsetFetch, &[6, 7]),
        // kafka-leader-election.sh sends v2.
        (ApiKey::ElectLeaders, &[2]),
    ];

    #[test]
    fn only_api_versions_is_flexible_in_range() {
        for &(key, r) in SUPPORTED_APIS {
            assert!(r.min <= r.max, "{key}");
            let flexible = (r.min..=r.max)
                .filter(|&v| is_flexible(key, v))
                .collect::<Vec<_>>();
            if key == ApiKey::ApiVersions {
                assert_eq!(flexible, [3]);
            } else if let Some(&(_, expected)) = FLEXIBLE_IN_RANGE.iter().find(|(k, _)| *k == key) {
                assert_eq!(flexible, expected, "{key}");
            } else {
                assert!(flexible.is_empty(), "{key} {flexible:?}");
            }
        }
    }

    #[test]
    fn intersect_edges() {
        assert_eq!(range(0, 3).intersect(range(3, 9)), Some(range(3, 3)));
        assert_eq!(range(0, 2).intersect(range(3, 9)), None);
        assert_eq!(range(5, 3).intersect(range(0, 9)), None);
        assert!(!range(5, 3).contains(4));
    }
}
