//! What the handlers ask about leader epochs: the epoch of a partition's leader as clients
//! see it, and the check of a client's `current_leader_epoch` against it (KIP-320).
//!
//! One source for every API (Metadata, Fetch, ListOffsets, OffsetForLeaderEpoch), so a client
//! never sees one epoch in Metadata and is fenced with another: a single broker answers its
//! log's latest epoch (0, the epoch it writes, for a log with no batch yet); a cluster answers
//! the partition's `leader_epoch` from the replicated metadata, or the newer term its own
//! replica of a replicated partition knows (`ReplicaManager::leadership`).

use weir_protocol::error_code::ErrorCode;

use super::context::Context;
use crate::cluster::{ClusterNode, NodeId};
use crate::log::PartitionLog;
use crate::log::epochs::UNDEFINED_EPOCH;

/// The epoch a single broker leads at before its log holds any batch (the one it writes).
const SINGLE_BROKER_EPOCH: i32 = 0;

/// The epoch of a single broker's partition whose log is `log`.
pub(crate) fn log_leader_epoch(log: &PartitionLog) -> i32 {
    log.latest_epoch().unwrap_or(SINGLE_BROKER_EPOCH)
}

impl Context {
    /// The leader epoch of partition `index` of `topic`; -1 when the partition is unknown.
    pub(crate) fn leader_epoch(&self, topic: &str, index: i32) -> i32 {
        match self.cluster.as_ref() {
            Some(node) => self
                .leadership(node, topic, index)
                .map_or(UNDEFINED_EPOCH, |(_, epoch)| epoch),
            None => self
                .catalog
                .get(topic)
                .and_then(|t| t.log(index).map(|log| log_leader_epoch(log)))
                .unwrap_or(UNDEFINED_EPOCH),
        }
    }

    /// Whether this broker leads partition `index` of `topic`: always for a single broker;
    /// in a cluster, when it is the leader clients are told of.
    pub(crate) fn leads(&self, topic: &str, index: i32) -> bool {
        let Some(node) = self.cluster.as_ref() else {
            return true;
        };
        self.leadership(node, topic, index)
            .and_then(|(leader, _)| leader)
            .and_then(|id| i32::try_from(id).ok())
            == Some(self.node_id())
    }

    /// The leader and leader epoch of a partition of the cluster, as every API answers them
    /// (`ReplicaManager::leadership`); `None` for an unknown partition.
    fn leadership(
        &self,
        node: &ClusterNode,
        topic: &str,
        index: i32,
    ) -> Option<(Option<NodeId>, i32)> {
        let state = node.state();
        let record = state.topics.get(topic)?;
        let partition = record.partitions.get(usize::try_from(index).ok()?)?;
        Some(node.replicas().leadership(&state, record, index, partition))
    }

    /// The error for a request that names `current` as the leader epoch it knows for the
    /// partition (-1: it names none, nothing is checked): FENCED_LEADER_EPOCH when the
    /// client's epoch is older than the leader's (its metadata is stale), UNKNOWN_LEADER_EPOCH
    /// when it is newer (this broker's is), as Kafka's `Partition.checkCurrentLeaderEpoch`.
    pub(crate) fn check_leader_epoch(
        &self,
        topic: &str,
        index: i32,
        current: i32,
    ) -> Option<ErrorCode> {
        if current == UNDEFINED_EPOCH {
            return None;
        }
        compare_epochs(current, self.leader_epoch(topic, index))
    }
}

/// [`Context::check_leader_epoch`]'s rule: the client's epoch against the leader's.
pub(crate) fn compare_epochs(client: i32, leader: i32) -> Option<ErrorCode> {
    use std::cmp::Ordering::*;
    match client.cmp(&leader) {
        Less => Some(ErrorCode::FencedLeaderEpoch),
        Greater => Some(ErrorCode::UnknownLeaderEpoch),
        Equal => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_is_fenced_newer_is_unknown() {
        assert_eq!(compare_epochs(2, 3), Some(ErrorCode::FencedLeaderEpoch));
        assert_eq!(compare_epochs(4, 3), Some(ErrorCode::UnknownLeaderEpoch));
        assert_eq!(compare_epochs(3, 3), None);
    }
}
