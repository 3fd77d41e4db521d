//! Replicated partitions (clusters, part 2): each partition whose replication factor is
//! above 1 is a Raft group of its replicas (a *data group*) on openraft, like the metadata
//! quorum, over the same cluster connections. The partition's segment log is the group's
//! Raft log: a batch is written once per replica, the Raft term is the batch's leader epoch,
//! and the commit point is the partition's high watermark (`docs/cluster.md`, "Replicated
//! partitions").
//!
//! Owns: how entries are stored as batches ([`entry`]), the log store ([`store`]), the state
//! machine that moves the high watermark ([`machine`]), the network adapter ([`network`]),
//! one running group and its produce path ([`group`]), the groups of a broker
//! ([`manager`]), their leaders reported to the metadata quorum ([`report`]) and answered to
//! clients (`view`), and leadership handed to a chosen replica ([`transfer`]) for
//! preferred-leader elections ([`elect`]: ElectLeaders) and the leader balancer
//! ([`balance`]). Nothing here counts votes or decides commits: a hand-over only asks a
//! replica to campaign, and openraft elects.

pub mod balance;
pub mod elect;
pub mod entry;
pub mod group;
pub mod machine;
pub mod manager;
pub mod network;
pub mod report;
pub mod retain;
pub mod snapshot;
pub mod store;
pub mod transfer;
pub mod types;
mod view;

pub use group::{Group, ReplicaGroup, ReplicaProduceError};
pub use manager::ReplicaManager;
pub use types::{GroupId, Outcome};
