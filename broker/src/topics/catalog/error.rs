//! [`CatalogError`]: why a catalog operation failed, with the Kafka code each maps to decided
//! by the handlers.

use std::path::{Path, PathBuf};

use super::MAX_PARTITIONS;
use crate::log::LogError;
use crate::topics::config::{BrokerConfigsError, InvalidConfig};
use crate::topics::name::TopicNameError;

/// Why a catalog operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// Illegal name (Kafka: INVALID_TOPIC_EXCEPTION).
    #[error("invalid topic name {0:?}: {1}")]
    InvalidName(String, #[source] TopicNameError),
    /// The topic exists (TOPIC_ALREADY_EXISTS).
    #[error("topic {0} already exists")]
    AlreadyExists(String),
    /// The name collides with an existing topic's (INVALID_TOPIC_EXCEPTION).
    #[error("topic {0} collides with existing topic {1} ('.' and '_' are equivalent)")]
    Collides(String, String),
    /// Partition count out of range (INVALID_PARTITIONS).
    #[error("invalid partition count {0}: must be between 1 and {MAX_PARTITIONS}")]
    InvalidPartitions(i64),
    /// The partitions' preallocated segments would not fit in the free space
    /// (POLICY_VIOLATION); nothing was allocated.
    #[error(
        "topic {topic}: {partitions} partitions need {needed_bytes} bytes preallocated \
         ({per_partition_bytes} each: segment.bytes and its indexes) but only \
         {available_bytes} bytes are free in {dir}"
    )]
    NoSpace {
        /// The topic.
        topic: String,
        /// Partitions asked for.
        partitions: u32,
        /// Bytes one partition preallocates.
        per_partition_bytes: u64,
        /// Bytes all of them would.
        needed_bytes: u64,
        /// Bytes free on the data directory's filesystem.
        available_bytes: u64,
        /// The data directory.
        dir: PathBuf,
    },
    /// CreatePartitions asked for a total at or below the current count (INVALID_PARTITIONS):
    /// partitions are only ever added.
    #[error(
        "topic {topic} has {current} partitions; the new total {requested} must be higher \
         (partitions can only be added)"
    )]
    NotMorePartitions {
        /// The topic.
        topic: String,
        /// Its partitions now.
        current: u32,
        /// The total asked for.
        requested: i64,
    },
    /// A topic placed by a cluster was given local partitions that do not fit it
    /// (INVALID_PARTITIONS): an index outside the topic, one listed twice, or, when it grows,
    /// one it already had.
    #[error("topic {topic} ({total} partitions): local partition {partition} {reason}")]
    InvalidPlacement {
        /// The topic.
        topic: String,
        /// Its partition count, cluster-wide (after the change).
        total: u32,
        /// The index refused.
        partition: i32,
        /// Why.
        reason: &'static str,
    },
    /// No such topic (UNKNOWN_TOPIC_OR_PARTITION).
    #[error("unknown topic {0}")]
    UnknownTopic(String),
    /// A config name or value refused (INVALID_CONFIG).
    #[error(transparent)]
    InvalidConfig(#[from] InvalidConfig),
    /// The dynamic broker configs could not be written.
    #[error(transparent)]
    BrokerConfigs(#[from] BrokerConfigsError),
    /// The catalog file is damaged.
    #[error("topic catalog {path} is damaged: {reason}")]
    Damaged {
        /// The catalog file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A partition log could not be opened, created or closed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Reading or writing the catalog or a partition directory failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

pub(super) fn io_err(
    op: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> CatalogError + use<> {
    let path = path.to_path_buf();
    move |source| CatalogError::Io { op, path, source }
}
