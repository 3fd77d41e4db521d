//! A node's id: `--node-id`, 1 and up (Kafka's broker id). On its own so that every cluster
//! module can name it without importing the Raft types.

/// A node's id.
pub type NodeId = u64;
