//! The consumer protocol's subscription and assignment: the opaque bytes consumers exchange
//! through the group coordinator (JoinGroup member metadata, SyncGroup and DescribeGroups
//! assignments) when the group's protocol type is `consumer`.
//!
//! This module owns the byte layout of Kafka's `ConsumerProtocolSubscription` and
//! `ConsumerProtocolAssignment`, versions 0 to 3, each behind a 2-byte big-endian version:
//!
//! - subscription: topics, user data; owned partitions (v1+); generation id (v2+); rack id (v3+);
//! - assignment: topics with their partitions, user data (the same fields at every version).
//!
//! The fields are read and written by the generated codecs of the vendored `kafka-protocol`,
//! whose element counts are bounded by the bytes left before anything is allocated
//! (`vendor/kafka-protocol/WEIR-PATCH.md`). It does not choose assignments (the client's
//! assignors do) and does not know the group coordinator: the broker never looks inside these
//! bytes.
//!
//! Invariants, as the Java client reads these bytes:
//!
//! - Decoding never panics and allocates no more than the input's size allows.
//! - A version above 3 is read as version 3: later versions only append fields, and bytes
//!   after the fields of the version read are ignored. A negative version is an error.
//! - Empty assignment bytes are an empty assignment (a member the leader left out, or one
//!   that has not synced yet).
//! - Decoding what [`encode_subscription`] / [`encode_assignment`] wrote at version `v` gives
//!   back every field that version carries; fields it lacks come back as their defaults.

use std::error::Error as StdError;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
    consumer_protocol_assignment, consumer_protocol_subscription,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// The highest version read and written. Newer data is read as this version.
pub const VERSION_MAX: i16 = 3;

/// Why consumer-protocol bytes could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumerProtocolError {
    /// Fewer than the 2 bytes of the version.
    #[error("consumer protocol {what} of {len} bytes has no version")]
    MissingVersion {
        /// `subscription` or `assignment`.
        what: &'static str,
        /// The length of the input.
        len: usize,
    },
    /// The version is negative.
    #[error("consumer protocol {what} has negative version {version}")]
    NegativeVersion {
        /// `subscription` or `assignment`.
        what: &'static str,
        /// The version read.
        version: i16,
    },
    /// Encoding was asked for a version outside 0 to [`VERSION_MAX`].
    #[error("consumer protocol {what} v{version} is not supported (0-{VERSION_MAX})")]
    UnsupportedVersion {
        /// `subscription` or `assignment`.
        what: &'static str,
        /// The version asked for.
        version: i16,
    },
    /// The fields after the version are malformed (truncated, a count larger than the bytes
    /// left, a negative length, a name that is not UTF-8).
    #[error("malformed consumer protocol {what} v{version}: {source}")]
    Decode {
        /// `subscription` or `assignment`.
        what: &'static str,
        /// The version the fields were read as.
        version: i16,
        /// What the codec reported.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// A field cannot be written (a topic name longer than 32,767 bytes, for instance).
    #[error("cannot encode consumer protocol {what} v{version}: {source}")]
    Encode {
        /// `subscription` or `assignment`.
        what: &'static str,
        /// The version asked for.
        version: i16,
        /// What the codec reported.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

/// One topic and some of its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicPartitions {
    /// The topic name.
    pub topic: String,
    /// Partition indexes, in the order written.
    pub partitions: Vec<i32>,
}

impl TopicPartitions {
    /// `topic` with `partitions`.
    pub fn new(topic: impl Into<String>, partitions: Vec<i32>) -> Self {
        Self {
            topic: topic.into(),
            partitions,
        }
    }
}

/// A member's JoinGroup metadata: what it subscribes to and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The subscribed topics.
    pub topics: Vec<String>,
    /// Assignor-specific data, passed through untouched.
    pub user_data: Option<Bytes>,
    /// The partitions the member owns now (v1+; cooperative rebalancing).
    pub owned_partitions: Vec<TopicPartitions>,
    /// The generation the owned partitions belong to (v2+); -1 when unknown.
    pub generation_id: i32,
    /// The member's rack (v3+), for rack-aware assignors.
    pub rack_id: Option<String>,
}

impl Default for Subscription {
    /// Nothing subscribed, generation -1 (Kafka's default for "no generation").
    fn default() -> Self {
        Self {
            topics: Vec::new(),
            user_data: None,
            owned_partitions: Vec::new(),
            generation_id: -1,
            rack_id: None,
        }
    }
}

impl Subscription {
    /// A subscription to `topics` and nothing else.
    pub fn new(topics: Vec<String>) -> Self {
        Self {
            topics,
            ..Self::default()
        }
    }
}

/// The partitions the leader gave one member.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    /// Topics with their partitions, in the order written.
    pub partitions: Vec<TopicPartitions>,
    /// Assignor-specific data, passed through untouched.
    pub user_data: Option<Bytes>,
}

const SUBSCRIPTION: &str = "subscription";
const ASSIGNMENT: &str = "assignment";

/// Writes `subscription` at `version` (0 to [`VERSION_MAX`]) behind its version. Fields the
/// version lacks are not written.
///
/// # Errors
/// [`ConsumerProtocolError::UnsupportedVersion`], or [`ConsumerProtocolError::Encode`] when a
/// string or array is too long for its length prefix.
pub fn encode_subscription(
    subscription: &Subscription,
    version: i16,
) -> Result<Bytes, ConsumerProtocolError> {
    let message = ConsumerProtocolSubscription::default()
        .with_topics(subscription.topics.iter().map(|t| s(t)).collect())
        .with_user_data(subscription.user_data.clone())
        .with_owned_partitions(
            subscription
                .owned_partitions
                .iter()
                .map(|tp| {
                    consumer_protocol_subscription::TopicPartition::default()
                        .with_topic(TopicName(s(&tp.topic)))
                        .with_partitions(tp.partitions.clone())
                })
                .collect(),
        )
        .with_generation_id(subscription.generation_id)
        .with_rack_id(subscription.rack_id.as_deref().map(s));
    encode_versioned(SUBSCRIPTION, &message, version)
}

/// Reads a member's JoinGroup metadata.
///
/// # Errors
/// [`ConsumerProtocolError::MissingVersion`], [`ConsumerProtocolError::NegativeVersion`] or
/// [`ConsumerProtocolError::Decode`].
pub fn decode_subscription(bytes: &[u8]) -> Result<Subscription, ConsumerProtocolError> {
    let (version, mut body) = split_version(SUBSCRIPTION, bytes)?;
    let decoded = ConsumerProtocolSubscription::decode(&mut body, version)
        .map_err(|err| decode_error(SUBSCRIPTION, version, err))?;
    Ok(Subscription {
        topics: decoded.topics.iter().map(ToString::to_string).collect(),
        user_data: decoded.user_data,
        owned_partitions: decoded
            .owned_partitions
            .into_iter()
            .map(|tp| TopicPartitions::new(tp.topic.0.to_string(), tp.partitions))
            .collect(),
        generation_id: decoded.generation_id,
        rack_id: decoded.rack_id.map(|r| r.to_string()),
    })
}

/// Writes `assignment` at `version` (0 to [`VERSION_MAX`]) behind its version.
///
/// # Errors
/// [`ConsumerProtocolError::UnsupportedVersion`], or [`ConsumerProtocolError::Encode`] when a
/// string or array is too long for its length prefix.
pub fn encode_assignment(
    assignment: &Assignment,
    version: i16,
) -> Result<Bytes, ConsumerProtocolError> {
    let message = ConsumerProtocolAssignment::default()
        .with_assigned_partitions(
            assignment
                .partitions
                .iter()
                .map(|tp| {
                    consumer_protocol_assignment::TopicPartition::default()
                        .with_topic(TopicName(s(&tp.topic)))
                        .with_partitions(tp.partitions.clone())
                })
                .collect(),
        )
        .with_user_data(assignment.user_data.clone());
    encode_versioned(ASSIGNMENT, &message, version)
}

/// Reads a member's assignment; empty bytes are an empty assignment.
///
/// # Errors
/// [`ConsumerProtocolError::MissingVersion`] (1 byte), [`ConsumerProtocolError::NegativeVersion`]
/// or [`ConsumerProtocolError::Decode`].
pub fn decode_assignment(bytes: &[u8]) -> Result<Assignment, ConsumerProtocolError> {
    if bytes.is_empty() {
        return Ok(Assignment::default());
    }
    let (version, mut body) = split_version(ASSIGNMENT, bytes)?;
    let decoded = ConsumerProtocolAssignment::decode(&mut body, version)
        .map_err(|err| decode_error(ASSIGNMENT, version, err))?;
    Ok(Assignment {
        partitions: decoded
            .assigned_partitions
            .into_iter()
            .map(|tp| TopicPartitions::new(tp.topic.0.to_string(), tp.partitions))
            .collect(),
        user_data: decoded.user_data,
    })
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

/// The version to read the fields as (capped at [`VERSION_MAX`]) and the bytes after it.
fn split_version<'a>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<(i16, &'a [u8]), ConsumerProtocolError> {
    let Some((version, body)) = bytes.split_first_chunk::<2>() else {
        return Err(ConsumerProtocolError::MissingVersion {
            what,
            len: bytes.len(),
        });
    };
    let version = i16::from_be_bytes(*version);
    if version < 0 {
        return Err(ConsumerProtocolError::NegativeVersion { what, version });
    }
    Ok((version.min(VERSION_MAX), body))
}

fn decode_error(
    what: &'static str,
    version: i16,
    err: impl Into<Box<dyn StdError + Send + Sync>>,
) -> ConsumerProtocolError {
    ConsumerProtocolError::Decode {
        what,
        version,
        source: err.into(),
    }
}

fn encode_versioned<M: Encodable>(
    what: &'static str,
    message: &M,
    version: i16,
) -> Result<Bytes, ConsumerProtocolError> {
    if !(0..=VERSION_MAX).contains(&version) {
        return Err(ConsumerProtocolError::UnsupportedVersion { what, version });
    }
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    message
        .encode(&mut buf, version)
        .map_err(|err| ConsumerProtocolError::Encode {
            what,
            version,
            source: err.into(),
        })?;
    Ok(buf.freeze())
}
