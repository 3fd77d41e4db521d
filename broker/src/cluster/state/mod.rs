//! The replicated metadata state machine, pure: commands in, state and replies out.
//!
//! Every node applies the same committed commands in the same order, so every node holds
//! the same state at the same log index. Nothing here reads a clock, a random source or a
//! file: the proposer decides ids, placement and timestamps and writes them into the command.
//! The state is small (brokers, topics and their assignments, a counter) and is the whole
//! snapshot of the metadata log ([`super::store`]).

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::{Command, Refusal, Reply};
use super::node_id::NodeId;

mod placement;

pub use placement::place;

/// How many deleted topic ids the state remembers, so a broker that was away while a topic
/// was deleted removes its local copy; older deletions are forgotten (bounded snapshots).
pub const DELETED_REMEMBERED: usize = 10_000;

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRecord {
    /// Advertised Kafka host.
    pub host: String,
    /// Advertised Kafka port.
    pub port: u16,
    /// Fenced: its session with the controller expired; it leads nothing until it registers
    /// again.
    pub fenced: bool,
}

/// One partition's placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    /// Its replicas, the preferred leader first.
    pub replicas: Vec<NodeId>,
    /// Kafka's leader epoch: 0 for a partition with one replica (its leadership never
    /// moves); for a replicated one, the Raft term of the leader its data group last
    /// reported ([`Command::SetPartitionLeader`]).
    pub leader_epoch: i32,
    /// The leader a replicated partition's data group last reported (`None` until its
    /// first election); a partition with one replica is led by it.
    pub leader: Option<NodeId>,
    /// The replicas caught up with that leader, as it last reported (the leader first).
    pub isr: Vec<NodeId>,
}

impl PartitionRecord {
    /// The broker that leads the partition, as far as the metadata knows.
    #[must_use]
    pub fn current_leader(&self) -> Option<NodeId> {
        match self.replicas.as_slice() {
            [only] => Some(*only),
            _ => self.leader,
        }
    }

    /// The in-sync replicas to show clients: all of them for one replica.
    #[must_use]
    pub fn in_sync(&self) -> Vec<NodeId> {
        if self.replicas.len() == 1 {
            self.replicas.clone()
        } else {
            self.isr.clone()
        }
    }
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    /// The topic id (Kafka's UUID).
    pub id: Uuid,
    /// Partitions by index.
    pub partitions: Vec<PartitionRecord>,
    /// Config overrides by Kafka name.
    pub configs: BTreeMap<String, String>,
}

/// The cluster's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataState {
    /// Set by the first leader.
    pub cluster_id: Option<String>,
    /// Brokers that ever registered.
    pub brokers: BTreeMap<NodeId, BrokerRecord>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicRecord>,
    /// Ids of the most recently deleted topics, oldest first, at most [`DELETED_REMEMBERED`].
    pub deleted: VecDeque<Uuid>,
    /// The next producer id not yet given to any broker.
    pub next_producer_id: i64,
}

impl MetadataState {
    /// Applies one committed command.
    pub fn apply(&mut self, command: &Command) -> Reply {
        match self.try_apply(command) {
            Ok(reply) => reply,
            Err(refusal) => Reply::Refused(refusal),
        }
    }

    fn try_apply(&mut self, command: &Command) -> Result<Reply, Refusal> {
        match command {
            Command::InitCluster { cluster_id } => {
                self.cluster_id.get_or_insert_with(|| cluster_id.clone());
            }
            Command::RegisterBroker { node, host, port } => {
                self.brokers.insert(
                    *node,
                    BrokerRecord {
                        host: host.clone(),
                        port: *port,
                        fenced: false,
                    },
                );
            }
            Command::FenceBroker { node } => {
                let broker = self
                    .brokers
                    .get_mut(node)
                    .ok_or(Refusal::UnknownBroker(*node))?;
                broker.fenced = true;
            }
            Command::CreateTopic {
                name,
                id,
                assignment,
                configs,
            } => self.create_topic(name, *id, assignment, configs)?,
            Command::DeleteTopic { name } => self.delete_topic(name)?,
            Command::CreatePartitions { name, assignment } => {
                self.check_assignment(assignment)?;
                let topic = self
                    .topics
                    .get_mut(name)
                    .ok_or_else(|| Refusal::UnknownTopic(name.clone()))?;
                if assignment.is_empty() {
                    return Err(Refusal::BadPartitionCount {
                        name: name.clone(),
                        current: topic.partitions.len(),
                        added: 0,
                    });
                }
                topic.partitions.extend(partitions(assignment));
            }
            Command::SetTopicConfigs { name, configs } => {
                let topic = self
                    .topics
                    .get_mut(name)
                    .ok_or_else(|| Refusal::UnknownTopic(name.clone()))?;
                topic.configs = configs.clone();
            }
            Command::SetPartitionLeader {
                topic,
                partition,
                leader,
                epoch,
                isr,
            } => self.set_leader(*topic, *partition, *leader, *epoch, isr)?,
            Command::AllocateProducerIds { node, count } => {
                if !self.brokers.contains_key(node) {
                    return Err(Refusal::UnknownBroker(*node));
                }
                let start = self.next_producer_id;
                self.next_producer_id = start
                    .checked_add(i64::from(*count))
                    .ok_or(Refusal::ProducerIdsExhausted)?;
                return Ok(Reply::ProducerIds {
                    start,
                    count: *count,
                });
            }
        }
        Ok(Reply::Done)
    }

    fn delete_topic(&mut self, name: &str) -> Result<(), Refusal> {
        let topic = self
            .topics
            .remove(name)
            .ok_or_else(|| Refusal::UnknownTopic(name.to_owned()))?;
        self.deleted.push_back(topic.id);
        while self.deleted.len() > DELETED_REMEMBERED {
            self.deleted.pop_front();
        }
        Ok(())
    }

    fn set_leader(
        &mut self,
        topic: Uuid,
        partition: i32,
        leader: NodeId,
        epoch: i32,
        isr: &[NodeId],
    ) -> Result<(), Refusal> {
        let record = self
            .topics
            .values_mut()
            .find(|t| t.id == topic)
            .and_then(|t| t.partitions.get_mut(usize::try_from(partition).ok()?))
            .ok_or(Refusal::UnknownPartition(topic, partition))?;
        if !record.replicas.contains(&leader) {
            return Err(Refusal::UnknownBroker(leader));
        }
        // A report from an older term than the one known lost the race to a newer leader's;
        // the same term may update the in-sync set.
        if epoch < record.leader_epoch
            || (epoch == record.leader_epoch && record.leader.is_some_and(|l| l != leader))
        {
            return Err(Refusal::StaleLeaderEpoch {
                epoch,
                current: record.leader_epoch,
            });
        }
        record.leader = Some(leader);
        record.leader_epoch = epoch;
        record.isr = isr.to_vec();
        Ok(())
    }

    fn create_topic(
        &mut self,
        name: &str,
        id: Uuid,
        assignment: &[Vec<NodeId>],
        configs: &BTreeMap<String, String>,
    ) -> Result<(), Refusal> {
        if self.topics.contains_key(name) {
            return Err(Refusal::TopicExists(name.to_owned()));
        }
        if assignment.is_empty() {
            return Err(Refusal::BadPartitionCount {
                name: name.to_owned(),
                current: 0,
                added: 0,
            });
        }
        self.check_assignment(assignment)?;
        self.topics.insert(
            name.to_owned(),
            TopicRecord {
                id,
                partitions: partitions(assignment),
                configs: configs.clone(),
            },
        );
        Ok(())
    }

    fn check_assignment(&self, assignment: &[Vec<NodeId>]) -> Result<(), Refusal> {
        for node in assignment.iter().flatten() {
            if !self.brokers.contains_key(node) {
                return Err(Refusal::UnknownBroker(*node));
            }
        }
        Ok(())
    }

    /// Brokers that are not fenced, ascending by id.
    pub fn live_brokers(&self) -> impl Iterator<Item = (NodeId, &BrokerRecord)> {
        self.brokers
            .iter()
            .filter(|(_, b)| !b.fenced)
            .map(|(id, b)| (*id, b))
    }

    /// The leader of a partition: its first replica, when that broker is live.
    #[must_use]
    pub fn leader(&self, partition: &PartitionRecord) -> Option<NodeId> {
        let leader = partition.current_leader()?;
        self.brokers
            .get(&leader)
            .filter(|b| !b.fenced)
            .map(|_| leader)
    }

    /// The broker coordinating consumer group `group`: the group id hashed onto every
    /// registered broker (live or not, so a group keeps its coordinator, and the offsets it
    /// stores, while that broker restarts), as Kafka hashes it onto `__consumer_offsets`'
    /// partitions. `None` before any broker registered.
    #[must_use]
    pub fn coordinator(&self, group: &str) -> Option<NodeId> {
        let n = self.brokers.len();
        if n == 0 {
            return None;
        }
        // Java's String.hashCode, as Kafka's `Utils.abs(groupId.hashCode) % partitions`:
        // stable across versions and platforms, unlike std's hasher.
        let hash = group
            .encode_utf16()
            .fold(0_i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
        let index = usize::try_from(hash.unsigned_abs()).unwrap_or(0) % n;
        self.brokers.keys().nth(index).copied()
    }
}

fn partitions(assignment: &[Vec<NodeId>]) -> Vec<PartitionRecord> {
    assignment
        .iter()
        .map(|replicas| PartitionRecord {
            replicas: replicas.clone(),
            leader_epoch: 0,
            leader: None,
            isr: Vec::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests;
