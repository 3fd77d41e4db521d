//! Who leads a replicated partition, as this broker answers clients: the metadata's leader
//! and epoch (what the leader last reported through the metadata quorum), unless this
//! broker's own replica of the group knows a newer term and its leader.
//!
//! The replica learns of a new leader from its first heartbeat, while the report through the
//! metadata quorum takes up to a report period more, and longer when the metadata leader
//! failed too (then the report waits for that election). Answering from the replica lets
//! clients follow a failover as soon as a majority of the group has.
//!
//! Invariant: the epoch answered never goes below the metadata's, so Metadata, Fetch and
//! ListOffsets never tell a client an epoch older than one it may already have seen from
//! another broker; a deposed leader's replica still at the old term never overrides it.

use super::manager::ReplicaManager;
use super::types::NodeId;
use crate::cluster::state::{MetadataState, PartitionRecord, TopicRecord};

impl ReplicaManager {
    /// The live leader of partition `index` of `topic` (its `record` in `state`) and its
    /// leader epoch.
    #[must_use]
    pub fn leadership(
        &self,
        state: &MetadataState,
        topic: &TopicRecord,
        index: i32,
        record: &PartitionRecord,
    ) -> (Option<NodeId>, i32) {
        let reported = (state.leader(record), record.leader_epoch);
        if record.replicas.len() < 2 {
            return reported;
        }
        match self.group(topic.id, index).map(|group| group.leader()) {
            Some((Some(leader), term)) => match i32::try_from(term) {
                Ok(term) if term > record.leader_epoch => (Some(leader), term),
                _ => reported,
            },
            _ => reported,
        }
    }
}
