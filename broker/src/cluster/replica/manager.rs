//! The data groups of this broker: one per local partition of a topic whose replication
//! factor is above 1, created when the metadata places a replica here and stopped when the
//! topic goes; requests from peers routed to their group; and each group's leader reported
//! to the metadata quorum, so that every broker's Metadata answers name it (with its term as
//! the leader epoch and its in-sync replicas).
//!
//! Every replica of a new group initializes it with the same membership (the partition's
//! replicas), which openraft allows: the first entry is then the same everywhere. Elections,
//! replication and commits are openraft's.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use openraft::{Config, SnapshotPolicy};

use super::group::{Group, ReplicaGroup};
use super::machine::ReplicaMachine;
use super::network::{Contacts, ReplicaNetwork};
use super::store::ReplicaStore;
use super::transfer::{self, TransferLimits};
use super::types::HandOver;
use super::types::{DataRaft, GroupId, NodeId};
use crate::cluster::net::Transport;
use crate::cluster::net::wire::{ReplicaAnswer, ReplicaRpc};
use crate::cluster::state::MetadataState;
use crate::topics::TopicCatalog;

/// Entries per AppendEntries request: with batches of at most [`MAX_REPLICATED_BATCH`]
/// bytes a request stays under the cluster port's frame limit.
const MAX_PAYLOAD_ENTRIES: usize = 8;

/// The largest batch a replicated partition takes: what keeps an AppendEntries request of
/// [`MAX_PAYLOAD_ENTRIES`] batches (and its envelope) within
/// [`crate::cluster::net::wire::MAX_FRAME`]. Kafka's default `max.message.bytes` (1 MiB) is
/// below it.
pub const MAX_REPLICATED_BATCH: usize =
    crate::cluster::net::wire::MAX_FRAME / (MAX_PAYLOAD_ENTRIES + 1);

/// A follower within this many entries of the leader's log counts as in sync.
pub const IN_SYNC_LAG: u64 = 100;

/// Told which partition's high watermark moved.
pub type CommitListener = Arc<dyn Fn(&str, i32) + Send + Sync>;

/// The data groups of one broker.
pub struct ReplicaManager {
    me: NodeId,
    transport: Arc<dyn Transport>,
    config: Arc<Config>,
    /// How long a silent follower stays in sync.
    lag_time: Duration,
    groups: RwLock<HashMap<GroupId, (String, Group)>>,
    listener: Arc<RwLock<Option<CommitListener>>>,
}

impl std::fmt::Debug for ReplicaManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaManager")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl ReplicaManager {
    /// The manager of broker `me`, whose groups elect within `election` (heartbeats every
    /// quarter of it).
    ///
    /// # Errors
    /// When openraft refuses the timing.
    pub fn new(
        me: NodeId,
        transport: Arc<dyn Transport>,
        election: Duration,
    ) -> Result<Self, String> {
        let election = u64::try_from(election.as_millis())
            .unwrap_or(u64::MAX)
            .max(40);
        let config = Config {
            cluster_name: "weir-data".into(),
            heartbeat_interval: (election / 4).max(10),
            election_timeout_min: election,
            election_timeout_max: election * 2,
            // The log is the partition's: a snapshot holds no records and stands only for
            // the entries retention or DeleteRecords let go (`replica/snapshot.rs`), so one
            // is built only when they ask (`replica/retain.rs`), and openraft then purges
            // every entry it covers (the purge deletes their segments).
            snapshot_policy: SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: 0,
            purge_batch_size: 1,
            max_payload_entries: MAX_PAYLOAD_ENTRIES as u64,
            ..Config::default()
        };
        let config = Arc::new(config.validate().map_err(|e| e.to_string())?);
        Ok(Self {
            me,
            transport,
            config,
            lag_time: Duration::from_millis(election.saturating_mul(5)),
            groups: RwLock::new(HashMap::new()),
            listener: Arc::new(RwLock::new(None)),
        })
    }

    /// Sets who is told when a group commits (the server's parked fetches).
    pub fn set_commit_listener(&self, listener: CommitListener) {
        *self
            .listener
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(listener);
    }

    /// The group of `topic`'s partition `partition` on this broker.
    pub fn group(&self, topic: uuid::Uuid, partition: i32) -> Option<Group> {
        self.groups
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&GroupId { topic, partition })
            .map(|(_, g)| Arc::clone(g))
    }

    /// Every group with its topic's name.
    pub(crate) fn all(&self) -> Vec<(String, Group)> {
        self.groups
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|(name, g)| (name.clone(), Arc::clone(g)))
            .collect()
    }

    /// Answers a peer's RPC for one of this broker's groups.
    pub async fn answer(&self, group: GroupId, rpc: ReplicaRpc) -> ReplicaAnswer {
        let Some(group) = self.group(group.topic, group.partition) else {
            return ReplicaAnswer::NoSuchGroup;
        };
        match rpc {
            ReplicaRpc::AppendEntries(rpc) => {
                ReplicaAnswer::AppendEntries(group.raft.append_entries(rpc).await)
            }
            ReplicaRpc::Vote(rpc) => ReplicaAnswer::Vote(group.raft.vote(rpc).await),
            ReplicaRpc::InstallSnapshot(rpc) => {
                ReplicaAnswer::InstallSnapshot(group.raft.install_snapshot(rpc).await)
            }
            ReplicaRpc::Elect => ReplicaAnswer::Elect(
                group
                    .raft
                    .trigger()
                    .elect()
                    .await
                    .map_err(|fatal| fatal.to_string()),
            ),
            ReplicaRpc::HandOver { to } => ReplicaAnswer::HandOver(
                transfer::hand_over(&group, to, &self.transport, self.transfer_limits()).await,
            ),
        }
    }

    /// Hands the leadership of this broker's replica of `group` to replica `to`
    /// ([`transfer`]).
    pub async fn hand_over(&self, group: GroupId, to: NodeId) -> HandOver {
        let Some(group) = self.group(group.topic, group.partition) else {
            return HandOver::NotLeader(None);
        };
        transfer::hand_over(&group, to, &self.transport, self.transfer_limits()).await
    }

    /// A hand-over gives up after four of the longest election timeouts: enough for the
    /// old leader's lease (one) and a failed first campaign's retry (two more), short
    /// enough that produce is never refused for long.
    pub fn transfer_limits(&self) -> TransferLimits {
        TransferLimits {
            give_up: Duration::from_millis(self.config.election_timeout_max.saturating_mul(4)),
            retry: Duration::from_millis(self.config.election_timeout_min),
            lease: Duration::from_millis(self.config.election_timeout_max),
        }
    }

    /// Makes the groups follow `state`: one for each local replica of a replicated
    /// partition that `catalog` holds, none for anything else.
    pub async fn follow(&self, state: &MetadataState, catalog: &TopicCatalog) {
        let mut wanted = BTreeSet::new();
        for (name, topic) in &state.topics {
            for (index, record) in topic.partitions.iter().enumerate() {
                if record.replicas.len() < 2 || !record.replicas.contains(&self.me) {
                    continue;
                }
                let Ok(partition) = i32::try_from(index) else {
                    continue;
                };
                let id = GroupId {
                    topic: topic.id,
                    partition,
                };
                wanted.insert(id);
                if self.group(topic.id, partition).is_some() {
                    continue;
                }
                let Some(local) = catalog
                    .get(name)
                    .filter(|t| t.id() == Some(topic.id))
                    .and_then(|t| t.partition(partition).cloned())
                else {
                    continue;
                };
                match self
                    .start_group(id, name, local, record.replicas.clone())
                    .await
                {
                    Ok(group) => {
                        tracing::info!(topic = %name, partition, replicas = ?record.replicas, "started a partition replica");
                        self.groups
                            .write()
                            .unwrap_or_else(PoisonError::into_inner)
                            .insert(id, (name.clone(), group));
                    }
                    Err(err) => {
                        tracing::error!(topic = %name, partition, error = %err, "cannot start a partition replica");
                    }
                }
            }
        }
        let gone: Vec<Group> = {
            let mut groups = self.groups.write().unwrap_or_else(PoisonError::into_inner);
            let ids: Vec<GroupId> = groups
                .keys()
                .filter(|id| !wanted.contains(id))
                .copied()
                .collect();
            ids.iter()
                .filter_map(|id| groups.remove(id))
                .map(|(_, g)| g)
                .collect()
        };
        for group in gone {
            if let Err(err) = group.raft.shutdown().await {
                tracing::warn!(group = %group.id, error = %err, "stopping a replica failed");
            }
        }
    }

    async fn start_group(
        &self,
        id: GroupId,
        name: &str,
        partition: Arc<crate::topics::Partition>,
        replicas: Vec<NodeId>,
    ) -> Result<Group, String> {
        let log = Arc::clone(partition.log());
        tokio::task::spawn_blocking(move || log.make_replicated())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let store = tokio::task::spawn_blocking(move || {
            ReplicaStore::open(partition).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())??;
        let on_commit: super::machine::OnCommit = {
            let (listener, name) = (Arc::clone(&self.listener), name.to_owned());
            Arc::new(move || {
                let listener = listener
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                if let Some(listener) = listener {
                    listener(&name, id.partition);
                }
            })
        };
        let machine = ReplicaMachine::new(store.clone(), on_commit);
        let contacts = Arc::new(Contacts::default());
        let network = ReplicaNetwork {
            transport: Arc::clone(&self.transport),
            group: id,
            contacts: Arc::clone(&contacts),
        };
        let raft = DataRaft::new(
            self.me,
            Arc::clone(&self.config),
            network,
            store.clone(),
            machine,
        )
        .await
        .map_err(|e| e.to_string())?;
        if !raft.is_initialized().await.map_err(|e| e.to_string())? {
            let members: BTreeSet<NodeId> = replicas.iter().copied().collect();
            if let Err(err) = raft.initialize(members).await {
                tracing::debug!(group = %id, error = %err, "replica already initialized");
            }
        }
        Ok(Arc::new(ReplicaGroup {
            id,
            raft,
            store,
            me: self.me,
            replicas,
            contacts,
            lag_time: self.lag_time,
            handing_over: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Stops every group.
    pub async fn shutdown(&self) {
        let groups: Vec<Group> = self
            .groups
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, (_, g))| g)
            .collect();
        for group in groups {
            if let Err(err) = group.raft.shutdown().await {
                tracing::warn!(group = %group.id, error = %err, "stopping a replica failed");
            }
        }
    }
}
