//! Tells the metadata quorum who leads each replicated partition: every broker checks the
//! groups it leads (every 100 ms) and proposes [`Command::SetPartitionLeader`] when the
//! metadata's leader, epoch (the Raft term) or in-sync replicas for one of them differ from
//! what the group says. Metadata answers on every broker then name the leader. A report of
//! an older term than the metadata's is refused by the state machine, so a deposed leader's
//! late report cannot undo a newer one.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::manager::IN_SYNC_LAG;
use crate::cluster::command::Command;
use crate::cluster::node::ClusterNode;

/// Reports until `stop`.
pub async fn run(node: Arc<ClusterNode>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let me = node.id();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let state = node.state();
        for (name, group) in node.replicas().all() {
            if !group.is_leader() {
                continue;
            }
            let Ok(epoch) = i32::try_from(group.leader().1) else {
                continue;
            };
            let isr = group.in_sync(IN_SYNC_LAG);
            let known = state
                .topics
                .get(&name)
                .and_then(|t| t.partitions.get(usize::try_from(group.id.partition).ok()?));
            let current = known
                .is_some_and(|r| r.leader == Some(me) && r.leader_epoch == epoch && r.isr == isr);
            if current || known.is_some_and(|r| r.leader_epoch > epoch) {
                continue;
            }
            let command = Command::SetPartitionLeader {
                topic: group.id.topic,
                partition: group.id.partition,
                leader: me,
                epoch,
                isr,
            };
            if let Err(err) = node.propose(command).await {
                tracing::debug!(group = %group.id, error = %err, "cannot report partition leadership yet");
            }
        }
    }
}
