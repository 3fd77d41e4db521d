//! The openraft type configuration of a replicated partition's Raft group (a *data group*).

use std::io::Cursor;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::cluster::node_id::NodeId;

/// Which data group: a partition of a topic, by the topic's id (names can be reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupId {
    /// The topic's id.
    pub topic: Uuid,
    /// The partition's index.
    pub partition: i32,
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// A data entry: one record batch as the producer sent it (offsets and leader epoch are
/// assigned where it is stored).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Batch {
    /// The v2 batch.
    pub bytes: Bytes,
    /// Set (non-zero) only on the leader that proposed the batch for a produce request: the
    /// batch is checked against the producer table there, and a waiter for `acks=1` is told
    /// once it is stored locally. Never sent to followers nor stored.
    #[serde(skip)]
    pub token: u64,
}

/// What applying an entry answered (the produce answer for a data entry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// A leader or membership entry: nothing to answer.
    #[default]
    Control,
    /// The batch was stored at these offsets.
    Stored {
        /// Offset of its first record.
        base_offset: i64,
        /// Offset of its last record.
        last_offset: i64,
    },
    /// A retry of a batch the log holds at these offsets; nothing new was stored.
    Duplicate {
        /// Offset of the original's first record.
        base_offset: i64,
        /// Offset of the original's last record.
        last_offset: i64,
    },
    /// The producer's sequence rules refused it, with Kafka's error code.
    Refused {
        /// The Kafka error code.
        code: i16,
        /// Why.
        message: String,
    },
    /// A DeleteRecords entry was applied: the replica's log start offset now.
    LogStart {
        /// The log start offset (Kafka's low watermark).
        offset: i64,
    },
}

openraft::declare_raft_types!(
    /// A data group's types.
    pub DataConfig:
        D = Batch,
        R = Outcome,
        NodeId = NodeId,
        Node = openraft::EmptyNode,
        SnapshotData = Cursor<Vec<u8>>,
);

/// The Raft handle of a data group.
pub type DataRaft = openraft::Raft<DataConfig>;
/// One entry of a data group's log.
pub type Entry = openraft::Entry<DataConfig>;
/// A log position.
pub type LogId = openraft::LogId<NodeId>;
/// Storage failures as openraft reports them.
pub type StorageError = openraft::StorageError<NodeId>;

/// What a hand-over came to (`super::transfer`; sent back over the cluster port: new
/// variants at the end).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HandOver {
    /// This broker no longer leads; `leader` is the new leader once known (normally the
    /// target). Produce was refused on this broker for `paused_ms`.
    Moved {
        /// The new leader, if already known here.
        leader: Option<NodeId>,
        /// How long this broker refused produce for the hand-over.
        paused_ms: u64,
    },
    /// The target leads already.
    NotNeeded,
    /// This broker does not lead the group; the leader it knows of.
    NotLeader(Option<NodeId>),
    /// The target is not a replica in sync with this leader.
    TargetNotInSync,
    /// Leadership did not move in time (or another hand-over of the group was under way);
    /// this broker leads on.
    Failed(String),
}
