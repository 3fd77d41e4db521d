//! The openraft type configuration of the metadata quorum.
//!
//! Node addresses are not part of the replicated membership (`EmptyNode`): each node reaches
//! the others through its own `--peers` list ([`super::peers`]).

use std::io::Cursor;

use super::command::{Command, Reply};

pub use super::node_id::NodeId;

openraft::declare_raft_types!(
    /// The metadata quorum's types.
    pub TypeConfig:
        D = Command,
        R = Reply,
        NodeId = NodeId,
        Node = openraft::EmptyNode,
        SnapshotData = Cursor<Vec<u8>>,
);

/// The Raft handle of the metadata quorum.
pub type MetaRaft = openraft::Raft<TypeConfig>;
/// One entry of the metadata log.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log position.
pub type LogId = openraft::LogId<NodeId>;
/// Storage failures as openraft reports them.
pub type StorageError = openraft::StorageError<NodeId>;
