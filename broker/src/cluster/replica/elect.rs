//! Preferred-leader election of one partition, from any broker: what ElectLeaders (API 43,
//! PREFERRED) and the leader balancer ([`super::balance`]) do.
//!
//! The preferred replica is the first of the partition's replicas (Kafka's rule). The broker
//! that runs this reads the metadata, decides whether an election is needed and possible
//! (the preferred replica registered, not fenced, and in the leader's last reported in-sync
//! set), and asks the current leader, here or over the cluster port, to hand leadership to
//! it ([`super::transfer`]). It then waits, bounded, until its own metadata names the new
//! leader, so a client's next Metadata request sees it.

use std::time::{Duration, Instant};

use super::types::HandOver;
use super::types::{GroupId, NodeId};
use crate::cluster::net::wire::{ReplicaAnswer, ReplicaRpc, Request, Response};
use crate::cluster::node::ClusterNode;
use crate::cluster::state::MetadataState;

/// What a preferred-leader election of one partition came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preferred {
    /// The preferred replica leads now.
    Elected,
    /// It led already (or the partition has one replica).
    NotNeeded,
    /// It cannot lead now (down, fenced, not in sync, no leader to hand over from), or the
    /// hand-over failed; why.
    NotAvailable(String),
    /// No such topic or partition.
    Unknown,
}

/// How long to wait for the metadata to name the new leader after a hand-over (the new
/// leader reports every 100 ms).
const REPORTED_WITHIN: Duration = Duration::from_secs(3);

/// The partitions (topic, index) whose preferred replica could lead but does not: replicated,
/// the preferred replica registered, unfenced and in sync, another replica leading.
#[must_use]
pub fn imbalanced(state: &MetadataState) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    for (name, topic) in &state.topics {
        for (index, record) in topic.partitions.iter().enumerate() {
            let Ok(partition) = i32::try_from(index) else {
                continue;
            };
            if matches!(check(state, record), Check::Elect { .. }) {
                out.push((name.clone(), partition));
            }
        }
    }
    out
}

enum Check {
    Elect { leader: NodeId, preferred: NodeId },
    Answer(Preferred),
}

fn check(state: &MetadataState, record: &crate::cluster::state::PartitionRecord) -> Check {
    let Some(&preferred) = record.replicas.first() else {
        return Check::Answer(Preferred::Unknown);
    };
    if record.replicas.len() < 2 || record.leader == Some(preferred) {
        return Check::Answer(Preferred::NotNeeded);
    }
    let alive = state.brokers.get(&preferred).is_some_and(|b| !b.fenced);
    if !alive {
        return Check::Answer(Preferred::NotAvailable(format!(
            "the preferred replica, broker {preferred}, is not alive"
        )));
    }
    let Some(leader) = record.leader else {
        return Check::Answer(Preferred::NotAvailable(
            "the partition has no leader yet (an election is under way)".into(),
        ));
    };
    if !record.isr.contains(&preferred) {
        return Check::Answer(Preferred::NotAvailable(format!(
            "the preferred replica, broker {preferred}, is not in sync with leader {leader}"
        )));
    }
    Check::Elect { leader, preferred }
}

/// Makes the preferred replica of `topic`'s partition `partition` its leader, if it can
/// lead and does not.
pub async fn elect_preferred(node: &ClusterNode, topic: &str, partition: i32) -> Preferred {
    let state = node.state();
    let Some(record_topic) = state.topics.get(topic) else {
        return Preferred::Unknown;
    };
    let Some(record) = usize::try_from(partition)
        .ok()
        .and_then(|p| record_topic.partitions.get(p))
    else {
        return Preferred::Unknown;
    };
    let (leader, preferred) = match check(&state, record) {
        Check::Answer(answer) => return answer,
        Check::Elect { leader, preferred } => (leader, preferred),
    };
    let group = GroupId {
        topic: record_topic.id,
        partition,
    };
    let outcome = if leader == node.id() {
        node.replicas().hand_over(group, preferred).await
    } else {
        let limits = node.replicas().transfer_limits();
        let request = Request::Replica {
            group,
            rpc: ReplicaRpc::HandOver { to: preferred },
        };
        let timeout = limits.give_up + REPORTED_WITHIN;
        match node.transport().call(leader, request, timeout).await {
            Ok(Response::Replica(ReplicaAnswer::HandOver(outcome))) => outcome,
            Ok(Response::Replica(ReplicaAnswer::NoSuchGroup)) => HandOver::NotLeader(None),
            Ok(other) => {
                HandOver::Failed(format!("unexpected answer from broker {leader}: {other:?}"))
            }
            Err(err) => {
                HandOver::Failed(format!("cannot reach the leader, broker {leader}: {err}"))
            }
        }
    };
    match outcome {
        HandOver::Moved {
            leader: Some(new), ..
        } if new != preferred => Preferred::NotAvailable(format!(
            "broker {new} was elected instead of the preferred replica {preferred}"
        )),
        HandOver::Moved { .. } | HandOver::NotNeeded => {
            reported(node, topic, partition, preferred).await;
            Preferred::Elected
        }
        HandOver::NotLeader(now) => Preferred::NotAvailable(format!(
            "broker {leader} no longer leads the partition (leader: {now:?}); try again"
        )),
        HandOver::TargetNotInSync => Preferred::NotAvailable(format!(
            "the preferred replica, broker {preferred}, is not in sync with leader {leader}"
        )),
        HandOver::Failed(why) => Preferred::NotAvailable(why),
    }
}

/// Waits (bounded) until this broker's metadata names `preferred` as the leader.
async fn reported(node: &ClusterNode, topic: &str, partition: i32, preferred: NodeId) {
    let deadline = Instant::now() + REPORTED_WITHIN;
    while Instant::now() < deadline {
        let state = node.state();
        let leads = state
            .topics
            .get(topic)
            .and_then(|t| t.partitions.get(usize::try_from(partition).ok()?))
            .is_some_and(|r| r.leader == Some(preferred));
        if leads {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cluster::state::{BrokerRecord, PartitionRecord, TopicRecord};

    fn record(replicas: &[NodeId], leader: Option<NodeId>, isr: &[NodeId]) -> PartitionRecord {
        PartitionRecord {
            replicas: replicas.to_vec(),
            leader_epoch: 1,
            leader,
            isr: isr.to_vec(),
        }
    }

    fn state(partitions: Vec<PartitionRecord>, fenced: &[NodeId]) -> MetadataState {
        let mut state = MetadataState::default();
        for id in 1..=3 {
            state.brokers.insert(
                id,
                BrokerRecord {
                    host: "h".into(),
                    port: 1,
                    fenced: fenced.contains(&id),
                },
            );
        }
        state.topics.insert(
            "t".into(),
            TopicRecord {
                id: uuid::Uuid::from_u128(1),
                partitions,
                configs: BTreeMap::new(),
            },
        );
        state
    }

    #[test]
    fn only_partitions_whose_preferred_replica_can_lead_and_does_not_are_imbalanced() {
        let s = state(
            vec![
                // Led by its preferred replica.
                record(&[1, 2, 3], Some(1), &[1, 2, 3]),
                // Preferred 2 in sync, 3 leads: to move.
                record(&[2, 3, 1], Some(3), &[3, 1, 2]),
                // Preferred 3 not in sync.
                record(&[3, 1, 2], Some(1), &[1, 2]),
                // One replica: never.
                record(&[1], None, &[]),
                // No leader yet.
                record(&[2, 1, 3], None, &[]),
            ],
            &[],
        );
        assert_eq!(imbalanced(&s), vec![("t".to_owned(), 1)]);
        let fenced = state(vec![record(&[2, 3, 1], Some(3), &[3, 1, 2])], &[2]);
        assert!(
            imbalanced(&fenced).is_empty(),
            "a fenced preferred replica cannot lead"
        );
    }
}
