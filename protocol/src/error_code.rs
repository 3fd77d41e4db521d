//! Kafka error codes: the `int16` error fields of responses, as a typed enum.
//!
//! Owns the numbering (from Kafka's `Errors.java`), Kafka's UPPER_SNAKE names, and which codes
//! Kafka's clients treat as retriable (their exception extends `RetriableException`).
//!
//! It does not describe local failures (bad bytes, I/O): those are Rust errors such as
//! [`BatchError`](crate::record_batch::BatchError) that a handler maps to a code. It does not
//! decide which code a handler answers either, nor which codes an old client version
//! understands.
//!
//! Invariants: each variant's discriminant is its wire code; [`ErrorCode::from_code`] is the
//! exact inverse of [`ErrorCode::code`] and returns `None` for codes not listed here (a client
//! should treat those like [`ErrorCode::UnknownServerError`]).

use std::fmt;

/// Declares the enum and its tables from one list, so code, name and retriability cannot drift.
macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, $retriable:literal; )*) => {
        /// A Kafka protocol error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        #[repr(i16)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant = $code, )*
        }

        impl ErrorCode {
            /// Every code Weir knows, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$( Self::$variant, )*];

            /// The code for `code`, or `None` if Weir does not know it.
            #[must_use]
            pub const fn from_code(code: i16) -> Option<Self> {
                match code {
                    $( $code => Some(Self::$variant), )*
                    _ => None,
                }
            }

            /// Kafka's name for the code (`"NOT_LEADER_OR_FOLLOWER"`).
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => $name, )*
                }
            }

            /// Whether Kafka's clients retry a request that failed with this code (the Java
            /// exception extends `RetriableException`).
            #[must_use]
            pub const fn is_retriable(self) -> bool {
                match self {
                    $( Self::$variant => $retriable, )*
                }
            }
        }
    };
}

error_codes! {
    /// The server experienced an unexpected error.
    UnknownServerError = -1, "UNKNOWN_SERVER_ERROR", false;
    /// No error.
    None = 0, "NONE", false;
    /// The offset is outside the range the partition holds.
    OffsetOutOfRange = 1, "OFFSET_OUT_OF_RANGE", false;
    /// The batch failed its CRC or size checks, or is otherwise corrupt.
    CorruptMessage = 2, "CORRUPT_MESSAGE", true;
    /// This broker does not host the topic-partition.
    UnknownTopicOrPartition = 3, "UNKNOWN_TOPIC_OR_PARTITION", true;
    /// The requested fetch size is invalid.
    InvalidFetchSize = 4, "INVALID_FETCH_SIZE", false;
    /// The partition has no leader right now.
    LeaderNotAvailable = 5, "LEADER_NOT_AVAILABLE", true;
    /// This broker is not the leader (or a replica) of the partition.
    NotLeaderOrFollower = 6, "NOT_LEADER_OR_FOLLOWER", true;
    /// The request timed out.
    RequestTimedOut = 7, "REQUEST_TIMED_OUT", true;
    /// The broker is not available.
    BrokerNotAvailable = 8, "BROKER_NOT_AVAILABLE", false;
    /// The replica is not available for the partition.
    ReplicaNotAvailable = 9, "REPLICA_NOT_AVAILABLE", true;
    /// A batch is larger than the maximum message size.
    MessageTooLarge = 10, "MESSAGE_TOO_LARGE", false;
    /// The committed offset metadata is too large.
    OffsetMetadataTooLarge = 12, "OFFSET_METADATA_TOO_LARGE", false;
    /// The server disconnected before a response was received.
    NetworkException = 13, "NETWORK_EXCEPTION", true;
    /// The coordinator is still loading its state.
    CoordinatorLoadInProgress = 14, "COORDINATOR_LOAD_IN_PROGRESS", true;
    /// The coordinator is not available.
    CoordinatorNotAvailable = 15, "COORDINATOR_NOT_AVAILABLE", true;
    /// This broker is not the coordinator for the group.
    NotCoordinator = 16, "NOT_COORDINATOR", true;
    /// The topic name is invalid.
    InvalidTopicException = 17, "INVALID_TOPIC_EXCEPTION", false;
    /// The batch is larger than the segment size.
    RecordListTooLarge = 18, "RECORD_LIST_TOO_LARGE", false;
    /// Fewer in-sync replicas than required; nothing was written.
    NotEnoughReplicas = 19, "NOT_ENOUGH_REPLICAS", true;
    /// Written, but to fewer in-sync replicas than required.
    NotEnoughReplicasAfterAppend = 20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", true;
    /// The produce request's acks value is invalid.
    InvalidRequiredAcks = 21, "INVALID_REQUIRED_ACKS", false;
    /// The group generation id is not the current one.
    IllegalGeneration = 22, "ILLEGAL_GENERATION", false;
    /// The member's protocols are incompatible with the group's.
    InconsistentGroupProtocol = 23, "INCONSISTENT_GROUP_PROTOCOL", false;
    /// The group id is invalid.
    InvalidGroupId = 24, "INVALID_GROUP_ID", false;
    /// The coordinator does not know this member.
    UnknownMemberId = 25, "UNKNOWN_MEMBER_ID", false;
    /// The session timeout is outside the allowed range.
    InvalidSessionTimeout = 26, "INVALID_SESSION_TIMEOUT", false;
    /// The group is rebalancing; the member must rejoin.
    RebalanceInProgress = 27, "REBALANCE_IN_PROGRESS", false;
    /// The committed offset data size is invalid.
    InvalidCommitOffsetSize = 28, "INVALID_COMMIT_OFFSET_SIZE", false;
    /// Not authorized to access the topic.
    TopicAuthorizationFailed = 29, "TOPIC_AUTHORIZATION_FAILED", false;
    /// Not authorized to access the group.
    GroupAuthorizationFailed = 30, "GROUP_AUTHORIZATION_FAILED", false;
    /// Not authorized for the cluster operation.
    ClusterAuthorizationFailed = 31, "CLUSTER_AUTHORIZATION_FAILED", false;
    /// A timestamp is outside the acceptable range.
    InvalidTimestamp = 32, "INVALID_TIMESTAMP", false;
    /// The API version is not supported.
    UnsupportedVersion = 35, "UNSUPPORTED_VERSION", false;
    /// A topic with this name already exists.
    TopicAlreadyExists = 36, "TOPIC_ALREADY_EXISTS", false;
    /// The number of partitions is invalid.
    InvalidPartitions = 37, "INVALID_PARTITIONS", false;
    /// The replication factor is invalid.
    InvalidReplicationFactor = 38, "INVALID_REPLICATION_FACTOR", false;
    /// The replica assignment is invalid.
    InvalidReplicaAssignment = 39, "INVALID_REPLICA_ASSIGNMENT", false;
    /// The configuration is invalid.
    InvalidConfig = 40, "INVALID_CONFIG", false;
    /// This broker is not the controller.
    NotController = 41, "NOT_CONTROLLER", true;
    /// The request is malformed or not valid for this broker.
    InvalidRequest = 42, "INVALID_REQUEST", false;
    /// The message format does not support the request.
    UnsupportedForMessageFormat = 43, "UNSUPPORTED_FOR_MESSAGE_FORMAT", false;
    /// The request violates the configured policy.
    PolicyViolation = 44, "POLICY_VIOLATION", false;
    /// The producer sequence number is out of order.
    OutOfOrderSequenceNumber = 45, "OUT_OF_ORDER_SEQUENCE_NUMBER", false;
    /// The producer sequence number is a duplicate.
    DuplicateSequenceNumber = 46, "DUPLICATE_SEQUENCE_NUMBER", false;
    /// The producer epoch is stale.
    InvalidProducerEpoch = 47, "INVALID_PRODUCER_EPOCH", false;
    /// The transactional operation is invalid in the current state.
    InvalidTxnState = 48, "INVALID_TXN_STATE", false;
    /// The producer id is not assigned to the transactional id.
    InvalidProducerIdMapping = 49, "INVALID_PRODUCER_ID_MAPPING", false;
    /// The transaction timeout is larger than the broker allows.
    InvalidTransactionTimeout = 50, "INVALID_TRANSACTION_TIMEOUT", false;
    /// Another operation on the same transaction is ongoing.
    ConcurrentTransactions = 51, "CONCURRENT_TRANSACTIONS", false;
    /// Not authorized for the transactional id.
    TransactionalIdAuthorizationFailed = 53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", false;
    /// Disk error while accessing the log.
    KafkaStorageError = 56, "KAFKA_STORAGE_ERROR", true;
    /// The broker has no state for this producer id.
    UnknownProducerId = 59, "UNKNOWN_PRODUCER_ID", false;
    /// The group is not empty.
    NonEmptyGroup = 68, "NON_EMPTY_GROUP", false;
    /// The group id does not exist.
    GroupIdNotFound = 69, "GROUP_ID_NOT_FOUND", false;
    /// The fetch session id was not found.
    FetchSessionIdNotFound = 70, "FETCH_SESSION_ID_NOT_FOUND", true;
    /// The fetch session epoch is invalid.
    InvalidFetchSessionEpoch = 71, "INVALID_FETCH_SESSION_EPOCH", true;
    /// Topic deletion is disabled.
    TopicDeletionDisabled = 73, "TOPIC_DELETION_DISABLED", false;
    /// The leader epoch in the request is older than the broker's.
    FencedLeaderEpoch = 74, "FENCED_LEADER_EPOCH", true;
    /// The leader epoch in the request is newer than the broker's.
    UnknownLeaderEpoch = 75, "UNKNOWN_LEADER_EPOCH", true;
    /// The client does not support the partition's compression type.
    UnsupportedCompressionType = 76, "UNSUPPORTED_COMPRESSION_TYPE", false;
    /// The offset is not available yet after a leader change.
    OffsetNotAvailable = 78, "OFFSET_NOT_AVAILABLE", true;
    /// The member must rejoin with the member id it was given.
    MemberIdRequired = 79, "MEMBER_ID_REQUIRED", false;
    /// The preferred leader is not available (down, or not in sync).
    PreferredLeaderNotAvailable = 80, "PREFERRED_LEADER_NOT_AVAILABLE", true;
    /// The group has reached its maximum size.
    GroupMaxSizeReached = 81, "GROUP_MAX_SIZE_REACHED", false;
    /// Another member registered with the same group.instance.id.
    FencedInstanceId = 82, "FENCED_INSTANCE_ID", false;
    /// No replica eligible to lead the partition is available.
    EligibleLeadersNotAvailable = 83, "ELIGIBLE_LEADERS_NOT_AVAILABLE", true;
    /// The leader election is not needed: the wanted leader leads already.
    ElectionNotNeeded = 84, "ELECTION_NOT_NEEDED", true;
    /// The group is still subscribed to the topic.
    GroupSubscribedToTopic = 86, "GROUP_SUBSCRIBED_TO_TOPIC", false;
    /// A record failed validation on the broker.
    InvalidRecord = 87, "INVALID_RECORD", false;
    /// There are pending transactional offsets for the partition.
    UnstableOffsetCommit = 88, "UNSTABLE_OFFSET_COMMIT", true;
    /// The throttling quota has been exceeded.
    ThrottlingQuotaExceeded = 89, "THROTTLING_QUOTA_EXCEEDED", true;
    /// A newer producer with the same transactional id fenced this one.
    ProducerFenced = 90, "PRODUCER_FENCED", false;
    /// This broker does not host this topic id.
    UnknownTopicId = 100, "UNKNOWN_TOPIC_ID", true;
    /// The log's topic id does not match the request's.
    InconsistentTopicId = 103, "INCONSISTENT_TOPIC_ID", true;
    /// DescribeCluster asked a broker for the controllers' endpoints (or the reverse).
    UnsupportedEndpointType = 119, "UNSUPPORTED_ENDPOINT_TYPE", false;
}

impl ErrorCode {
    /// The code as sent on the wire.
    #[must_use]
    pub const fn code(self) -> i16 {
        self as i16
    }

    /// Whether this is [`ErrorCode::None`].
    #[must_use]
    pub const fn is_ok(self) -> bool {
        matches!(self, Self::None)
    }
}

impl From<ErrorCode> for i16 {
    fn from(code: ErrorCode) -> Self {
        code.code()
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn round_trip_and_unique() {
        let mut codes = HashSet::new();
        let mut names = HashSet::new();
        for &e in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(e.code()), Some(e));
            assert!(codes.insert(e.code()), "duplicate code {e}");
            assert!(names.insert(e.name()), "duplicate name {e}");
        }
    }

    #[test]
    fn known_numbers() {
        use ErrorCode as E;
        let known = [
            (E::UnknownServerError, -1),
            (E::None, 0),
            (E::CorruptMessage, 2),
            (E::NotLeaderOrFollower, 6),
            (E::NotCoordinator, 16),
            (E::RebalanceInProgress, 27),
            (E::UnsupportedVersion, 35),
            (E::InvalidRequest, 42),
            (E::OutOfOrderSequenceNumber, 45),
            (E::KafkaStorageError, 56),
            (E::UnknownProducerId, 59),
            (E::MemberIdRequired, 79),
            (E::FencedInstanceId, 82),
            (E::UnknownTopicId, 100),
        ];
        for (e, code) in known {
            assert_eq!(e.code(), code, "{e}");
            assert_eq!(i16::from(e), code);
        }
        assert_eq!(
            ErrorCode::from_code(11),
            None,
            "STALE_CONTROLLER_EPOCH is not listed"
        );
        assert_eq!(ErrorCode::from_code(i16::MIN), None);
        assert_eq!(
            E::NotLeaderOrFollower.to_string(),
            "NOT_LEADER_OR_FOLLOWER (6)"
        );
        assert!(E::None.is_ok() && !E::UnknownServerError.is_ok());
    }

    #[test]
    fn retriable_spot_checks() {
        use ErrorCode as E;
        for e in [
            E::NotLeaderOrFollower,
            E::RequestTimedOut,
            E::CoordinatorNotAvailable,
            E::CoordinatorLoadInProgress,
            E::NotCoordinator,
            E::KafkaStorageError,
            E::UnknownTopicOrPartition,
            E::CorruptMessage,
            E::LeaderNotAvailable,
            E::NotEnoughReplicas,
            E::UnstableOffsetCommit,
            E::UnknownTopicId,
        ] {
            assert!(e.is_retriable(), "{e}");
        }
        for e in [
            E::None,
            E::UnknownServerError,
            E::InvalidTopicException,
            E::OffsetOutOfRange,
            E::MessageTooLarge,
            E::RebalanceInProgress,
            E::UnknownMemberId,
            E::OutOfOrderSequenceNumber,
            E::DuplicateSequenceNumber,
            E::UnknownProducerId,
            E::BrokerNotAvailable,
            E::UnsupportedVersion,
        ] {
            assert!(!e.is_retriable(), "{e}");
        }
    }

    #[test]
    fn names_are_upper_snake() {
        for &e in ErrorCode::ALL {
            assert!(
                e.name()
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{e}"
            );
        }
    }
}
