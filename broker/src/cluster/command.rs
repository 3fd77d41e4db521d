//! What the metadata log holds: commands, and what applying one answers.
//!
//! A command is checked twice: for its own validity (topic name, partition count, configs)
//! by the broker that proposes it, before it is written, and against the state when it is
//! applied (a topic created twice, a topic deleted that does not exist), which every node
//! does identically, so every node reaches the same state and the proposer gets the same
//! answer from the leader's apply. Every variant is versioned by the wire envelope
//! ([`super::net::wire`]); new variants are only ever added at the end.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::node_id::NodeId;

/// One change to the cluster's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Names the cluster. Written by the first leader; later ones change nothing.
    InitCluster {
        /// The id clients see in Metadata.
        cluster_id: String,
    },
    /// A broker announces (or re-announces after being fenced) where clients reach it.
    /// Unfences it.
    RegisterBroker {
        /// The broker's node id.
        node: NodeId,
        /// Its advertised Kafka host.
        host: String,
        /// Its advertised Kafka port.
        port: u16,
    },
    /// The controller has not heard from a broker for a session timeout: its partitions have
    /// no leader until it registers again.
    FenceBroker {
        /// The broker.
        node: NodeId,
    },
    /// A new topic, its partitions already placed on brokers by the proposer.
    CreateTopic {
        /// The topic's name (checked by the proposer).
        name: String,
        /// Its id, new for every creation (a topic deleted and created again is another).
        id: Uuid,
        /// Replicas of each partition by index (one replica each in part 1).
        assignment: Vec<Vec<NodeId>>,
        /// Config overrides, checked and normalised by the proposer.
        configs: BTreeMap<String, String>,
    },
    /// Deletes a topic.
    DeleteTopic {
        /// Its name.
        name: String,
    },
    /// Adds partitions to a topic.
    CreatePartitions {
        /// The topic.
        name: String,
        /// Replicas of each new partition, in index order after the existing ones.
        assignment: Vec<Vec<NodeId>>,
    },
    /// Replaces a topic's config overrides whole.
    SetTopicConfigs {
        /// The topic.
        name: String,
        /// The complete new overrides (checked by the proposer).
        configs: BTreeMap<String, String>,
    },
    /// Reserves a block of producer ids for one broker (Kafka's AllocateProducerIds).
    AllocateProducerIds {
        /// The broker that will hand them out.
        node: NodeId,
        /// How many.
        count: u32,
    },
    /// A replicated partition's data group elected `leader` in term `epoch`, or its leader
    /// saw its in-sync replicas change (Kafka's AlterPartition).
    SetPartitionLeader {
        /// The topic's id.
        topic: uuid::Uuid,
        /// The partition.
        partition: i32,
        /// The leader.
        leader: NodeId,
        /// Its Raft term, which is the partition's leader epoch.
        epoch: i32,
        /// The replicas caught up with it, itself first.
        isr: Vec<NodeId>,
    },
}

impl Command {
    /// A short name for logs and errors.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InitCluster { .. } => "init-cluster",
            Self::RegisterBroker { .. } => "register-broker",
            Self::FenceBroker { .. } => "fence-broker",
            Self::CreateTopic { .. } => "create-topic",
            Self::DeleteTopic { .. } => "delete-topic",
            Self::CreatePartitions { .. } => "create-partitions",
            Self::SetTopicConfigs { .. } => "set-topic-configs",
            Self::AllocateProducerIds { .. } => "allocate-producer-ids",
            Self::SetPartitionLeader { .. } => "set-partition-leader",
        }
    }
}

/// What applying a command answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Applied.
    #[default]
    Done,
    /// Applied; the ids `[start, start + count)` belong to the asking broker.
    ProducerIds {
        /// First id of the block.
        start: i64,
        /// How many.
        count: u32,
    },
    /// Refused by the state; nothing changed.
    Refused(Refusal),
}

/// Why the state refused a command (every node refuses it the same way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// CreateTopic of a name that exists.
    #[error("topic {0} already exists")]
    TopicExists(String),
    /// A command naming a topic that does not exist.
    #[error("topic {0} does not exist")]
    UnknownTopic(String),
    /// CreatePartitions that would not add any, or an empty assignment.
    #[error("topic {name} has {current} partitions; cannot add {added}")]
    BadPartitionCount {
        /// The topic.
        name: String,
        /// Its partitions now.
        current: usize,
        /// How many the command added.
        added: usize,
    },
    /// An assignment naming a broker that never registered.
    #[error("broker {0} is not registered")]
    UnknownBroker(NodeId),
    /// Producer ids ran out (2^63 of them).
    #[error("producer ids are exhausted")]
    ProducerIdsExhausted,
    /// A command naming a partition that does not exist.
    #[error("partition {1} of topic {0} does not exist")]
    UnknownPartition(uuid::Uuid, i32),
    /// A leader report older than the leader the metadata knows of.
    #[error("leader epoch {epoch} is older than the current {current}")]
    StaleLeaderEpoch {
        /// The report's.
        epoch: i32,
        /// The metadata's.
        current: i32,
    },
}
