//! Leadership hand-over of one data group to a chosen replica (the preferred one, for
//! ElectLeaders and the leader balancer).
//!
//! openraft 0.9 has no leadership-transfer API, and a follower refuses to vote while it
//! hears from a leader (its *leader lease*: `election_timeout_max` after the last
//! AppendEntries; `Engine::handle_vote_req`). A leader grants a vote once its own lease (from
//! its election) has run out and the candidate's log is at least as long as its own. So the
//! hand-over is:
//!
//! 1. the leader refuses new produce ([`ReplicaGroup::handing_over`]: clients get
//!    NOT_LEADER_OR_FOLLOWER and refresh their metadata) and stops idle heartbeats
//!    (`runtime_config().heartbeat(false)`), so its log stops growing and the other
//!    followers' leases run out;
//! 2. once the target has matched the leader's last entry, the leader asks it to campaign
//!    ([`ReplicaRpc::Elect`](crate::cluster::net::wire::ReplicaRpc::Elect):
//!    `trigger().elect()`), again every election timeout while it still leads;
//! 3. the target's vote request at a higher term wins the old leader's vote (lease expired,
//!    logs equal) or, after their leases, the other followers': the old leader steps down.
//!
//! Time-bounded: when the target does not catch up within two election timeouts, cannot be
//! reached or refuses to campaign, or after [`TransferLimits::give_up`], the leader takes
//! produce and heartbeats again and keeps leading (if a vote request at a higher term reached it meanwhile, an
//! ordinary election follows, as after a failure). Invariant: whatever happens, the flag and
//! the heartbeats are restored when the attempt ends (a guard, also on cancellation). Raft
//! still decides who wins: an out-of-date replica is never elected.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use openraft::ServerState;

use super::group::ReplicaGroup;
use super::types::{HandOver, NodeId};
use crate::cluster::net::Transport;
use crate::cluster::net::wire::{ReplicaAnswer, ReplicaRpc, Request, Response};

/// How long the steps of a hand-over may take.
#[derive(Debug, Clone, Copy)]
pub struct TransferLimits {
    /// After this the attempt is abandoned and produce resumes here.
    pub give_up: Duration,
    /// How often the target is asked again to campaign.
    pub retry: Duration,
    /// openraft's leader lease (`election_timeout_max`): a voter that heard from a leader
    /// this recently refuses votes, the leader itself for this long after its election.
    pub lease: Duration,
}

/// Hands `group`'s leadership (this broker must lead it) to replica `to`, asking it over
/// `transport`.
pub async fn hand_over(
    group: &ReplicaGroup,
    to: NodeId,
    transport: &Arc<dyn Transport>,
    limits: TransferLimits,
) -> HandOver {
    if to == group.me && group.is_leader() {
        return HandOver::NotNeeded;
    }
    if !group.is_leader() {
        let leader = group.leader().0;
        return if leader == Some(to) {
            HandOver::NotNeeded
        } else {
            HandOver::NotLeader(leader)
        };
    }
    if !group.replicas.contains(&to) || !group.in_sync(super::manager::IN_SYNC_LAG).contains(&to) {
        return HandOver::TargetNotInSync;
    }
    // This leader refuses every vote until its own lease (from its election) has run out:
    // wait for that first, still taking produce, so the target's first campaign can win.
    let lease_left = barrier(group, limits.lease).await;
    if !lease_left.is_zero() {
        tokio::time::sleep(lease_left).await;
        if !group.is_leader() {
            return HandOver::NotLeader(group.leader().0);
        }
    }
    if group.handing_over.swap(true, Ordering::AcqRel) {
        return HandOver::Failed("another hand-over of this partition is under way".into());
    }
    let _restore = Restore(group);
    group.raft.runtime_config().heartbeat(false);
    let started = Instant::now();
    let deadline = started + limits.give_up;
    // Once openraft answers the barrier, every batch proposed before the flag was set is in
    // its log (requests are handled in order), so the log end read next is final; metrics
    // are published right after the barrier's turn.
    barrier(group, limits.lease).await;
    tokio::time::sleep(SETTLE).await;
    let mut metrics = group.raft.metrics();
    let mut asked: Option<Instant> = None;
    loop {
        let (leading, caught_up) = {
            let m = metrics.borrow_and_update();
            let leading = m.state == ServerState::Leader && m.current_leader == Some(group.me);
            let matched = m
                .replication
                .as_ref()
                .and_then(|r| r.get(&to).copied().flatten());
            let last = m.last_log_index;
            (leading, matched.is_some_and(|l| Some(l.index) == last))
        };
        if !leading {
            let paused_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            // The new leader's first AppendEntries names it; wait a little for it.
            let leader = wait_for_leader(group, deadline).await;
            tracing::info!(group = %group.id, to, ?leader, paused_ms, "handed partition leadership over");
            return HandOver::Moved { leader, paused_ms };
        }
        let now = Instant::now();
        if now >= deadline {
            tracing::info!(group = %group.id, to, "partition leadership hand-over timed out; leading on");
            return HandOver::Failed(format!(
                "replica {to} did not take leadership within {:?}",
                limits.give_up
            ));
        }
        if !caught_up && asked.is_none() && now >= started + limits.retry * 2 {
            // An in-sync replica matches a log that stopped growing within a few round
            // trips; one that does not is stuck: produce must not wait for it.
            tracing::info!(group = %group.id, to, "hand-over target did not catch up; leading on");
            return HandOver::Failed(format!(
                "replica {to} did not catch up within {:?}",
                limits.retry * 2
            ));
        }
        if caught_up && asked.is_none_or(|at| now.duration_since(at) >= limits.retry) {
            asked = Some(now);
            // Unless it campaigned, nothing can move leadership: give produce back at once.
            if let Err(why) = ask_to_campaign(group, to, transport, limits.retry).await {
                if group.is_leader() {
                    tracing::info!(group = %group.id, to, %why, "hand-over abandoned; leading on");
                    return HandOver::Failed(why);
                }
            }
        }
        // Woken by any change of the group (replication progress, a vote, a new leader).
        let _changed = tokio::time::timeout(Duration::from_millis(20), metrics.changed()).await;
    }
}

/// Asks replica `to` to campaign for `group` now.
async fn ask_to_campaign(
    group: &ReplicaGroup,
    to: NodeId,
    transport: &Arc<dyn Transport>,
    timeout: Duration,
) -> Result<(), String> {
    let request = Request::Replica {
        group: group.id,
        rpc: ReplicaRpc::Elect,
    };
    match transport.call(to, request, timeout).await {
        Ok(Response::Replica(ReplicaAnswer::Elect(Ok(())))) => Ok(()),
        Ok(other) => Err(format!("replica {to} cannot campaign: {other:?}")),
        Err(err) => Err(format!("cannot reach replica {to}: {err}")),
    }
}

/// Waits until openraft has handled every request sent to `group` before; returns how long
/// this leader's lease still runs (zero if unknown).
async fn barrier(group: &ReplicaGroup, lease: Duration) -> Duration {
    group
        .raft
        .with_raft_state(move |st| {
            st.vote_last_modified().map_or(Duration::ZERO, |at| {
                (at + lease).saturating_duration_since(tokio::time::Instant::now())
            })
        })
        .await
        .unwrap_or(Duration::ZERO)
}

/// How long after the barrier the metrics are trusted to show the final log end.
const SETTLE: Duration = Duration::from_millis(10);

async fn wait_for_leader(group: &ReplicaGroup, deadline: Instant) -> Option<NodeId> {
    loop {
        let leader = group.leader().0.filter(|l| *l != group.me);
        if leader.is_some() || Instant::now() >= deadline {
            return leader;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Gives produce and heartbeats back to the group when a hand-over ends, however it ends.
struct Restore<'a>(&'a ReplicaGroup);

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        self.0.raft.runtime_config().heartbeat(true);
        self.0.handing_over.store(false, Ordering::Release);
    }
}
