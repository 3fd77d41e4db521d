//! What the handlers ask of the cluster: this broker's id, who leads a partition, who
//! coordinates a group, and the error for a partition this broker does not hold.
//!
//! A single broker (no `--node-id`) answers as it always has: node 0, leader of everything.

use std::sync::Arc;

use weir_protocol::error_code::ErrorCode;

use super::context::{Context, NODE_ID};
use crate::cluster::MetadataState;
use crate::cluster::replica::Group;

impl Context {
    /// This broker's node id (Kafka's broker id).
    pub(crate) fn node_id(&self) -> i32 {
        self.cluster
            .as_ref()
            .map_or(NODE_ID, |node| i32::try_from(node.id()).unwrap_or(i32::MAX))
    }

    /// The cluster id clients see: the cluster's (once its first leader named it), else this
    /// data directory's.
    pub(crate) fn current_cluster_id(&self) -> String {
        self.metadata()
            .and_then(|state| state.cluster_id.clone())
            .unwrap_or_else(|| self.cluster_id.clone())
    }

    /// The metadata as applied on this broker, in a cluster.
    pub(crate) fn metadata(&self) -> Option<Arc<MetadataState>> {
        self.cluster.as_ref().map(|node| node.state())
    }

    /// The error for partition `index` of `topic` when this broker holds no log for it:
    /// NOT_LEADER_OR_FOLLOWER when the cluster has the partition elsewhere (or not yet here),
    /// so clients refresh their metadata and go to its leader; otherwise
    /// UNKNOWN_TOPIC_OR_PARTITION. The message says which.
    pub(crate) fn missing_partition(&self, topic: &str, index: i32) -> (ErrorCode, String) {
        let exists = self.metadata().is_some_and(|state| {
            state
                .topics
                .get(topic)
                .is_some_and(|t| usize::try_from(index).is_ok_and(|i| i < t.partitions.len()))
        });
        if exists {
            (
                ErrorCode::NotLeaderOrFollower,
                format!("broker {} does not lead {topic}-{index}", self.node_id()),
            )
        } else {
            (
                ErrorCode::UnknownTopicOrPartition,
                format!("{topic}-{index} does not exist"),
            )
        }
    }

    /// For a partition with more than one replica: its data group when this broker leads
    /// it, else NOT_LEADER_OR_FOLLOWER (clients refresh their metadata and go to the leader).
    /// `None` for a partition with one replica (or no cluster), served from its local log.
    pub(crate) fn replicated(
        &self,
        topic: &str,
        index: i32,
    ) -> Option<Result<Group, (ErrorCode, String)>> {
        let node = self.cluster.as_ref()?;
        let state = node.state();
        let record = state.topics.get(topic)?;
        let partition = record.partitions.get(usize::try_from(index).ok()?)?;
        if partition.replicas.len() < 2 {
            return None;
        }
        Some(match node.replicas().group(record.id, index) {
            Some(group) if group.is_leader() => Ok(group),
            _ => Err((
                ErrorCode::NotLeaderOrFollower,
                format!("broker {} does not lead {topic}-{index}", self.node_id()),
            )),
        })
    }

    /// Whether this broker serves reads of partition `index` of `topic` from its local log:
    /// always for a partition with one replica, only on the leader for a replicated one.
    pub(crate) fn serves(&self, topic: &str, index: i32) -> bool {
        !matches!(self.replicated(topic, index), Some(Err(_)))
    }

    /// NOT_COORDINATOR when another broker of the cluster coordinates `group` (clients then
    /// ask FindCoordinator again); `None` when this broker does.
    pub(crate) fn not_coordinator(&self, group: &str) -> Option<ErrorCode> {
        if let Some(replicated) = &self.replicated_offsets {
            return self.replicated_not_coordinator(replicated, group);
        }
        (self.coordinator_of(group) != Some(self.node_id())).then_some(ErrorCode::NotCoordinator)
    }

    /// The broker coordinating `group`, and whether it is this one. A single broker
    /// coordinates every group; with replicated offsets, the leader of the group's
    /// `__consumer_offsets` partition.
    pub(crate) fn coordinator_of(&self, group: &str) -> Option<i32> {
        if self.replicated_offsets.is_some() {
            return self.replicated_coordinator(group);
        }
        match self.metadata() {
            None => Some(NODE_ID),
            Some(state) => state
                .coordinator(group)
                .and_then(|id| i32::try_from(id).ok()),
        }
    }
}
