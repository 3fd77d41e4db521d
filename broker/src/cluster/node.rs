//! One node of the metadata quorum: the Raft instance, its stores and network, and the duties
//! around it — proposing commands (forwarded to the leader from any node), broker heartbeats
//! to the controller, and, on the leader, broker liveness (registration and fencing).
//!
//! Consensus itself (elections, replication, commit) is openraft's; this module only decides
//! what to propose. Every node initialises the quorum with the same voters at its first
//! start (openraft writes the same membership entry at index 0 on each, so doing it on all is
//! safe), so the cluster forms with whichever majority comes up first.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{Config, EmptyNode, ServerState, SnapshotPolicy};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::command::{Command, Reply};
use super::liveness::Liveness;
use super::net::server::Handler;
use super::net::wire::{ForwardError, Request, Response};
use super::net::{NetError, Transport};
use super::network::NetworkFactory;
use super::replica::ReplicaManager;
use super::state::MetadataState;
use super::store::{Applied, LogStore, MachineStore, SNAPSHOT_EVERY};
use super::types::{MetaRaft, NodeId};
use crate::storage::Disk;

/// Longest a metadata change waits for a leader and a commit before it is refused.
pub const PROPOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How a node starts.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// This node.
    pub id: NodeId,
    /// Every voter, this node included.
    pub voters: Vec<NodeId>,
    /// `<data>/cluster`.
    pub dir: PathBuf,
    /// Where the Kafka listener is reached (registered with the controller).
    pub advertised: (String, u16),
    /// Broker session timeout (fencing).
    pub session_timeout: Duration,
    /// Broker heartbeat interval.
    pub heartbeat_interval: Duration,
    /// Raft election timeout (lower bound; the upper is twice it).
    pub election_timeout: Duration,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The metadata stores could not be opened.
    #[error("cannot open the metadata log in {dir}: {source}")]
    Store {
        /// `<data>/cluster`.
        dir: PathBuf,
        /// The cause (boxed: openraft's error is large).
        #[source]
        source: Box<openraft::StorageError<NodeId>>,
    },
    /// openraft refused the configuration or failed to start.
    #[error("cannot start the metadata quorum: {0}")]
    Raft(String),
}

/// Why a metadata change was not made.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ProposeError {
    /// No leader could be reached in time: too few voters are up (a majority is needed).
    #[error(
        "no metadata quorum: no controller was reachable within {0:?} (a majority of the voters must be up)"
    )]
    NoQuorum(Duration),
    /// The change was sent but its outcome is unknown (the leader lost its quorum or
    /// stopped answering); it may still be applied later.
    #[error("the metadata change may not have been applied: {0}")]
    Uncertain(String),
}

/// A running metadata-quorum node.
pub struct ClusterNode {
    id: NodeId,
    options: NodeOptions,
    raft: MetaRaft,
    transport: Arc<dyn Transport>,
    applied: Arc<RwLock<Applied>>,
    applied_index: watch::Receiver<u64>,
    liveness: Mutex<Liveness>,
    /// A block of producer ids from the controller: (next, end).
    producer_ids: tokio::sync::Mutex<(i64, i64)>,
    stop: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// When the leader last answered this node's heartbeat.
    leader_heard: Mutex<Option<Instant>>,
    /// The replicated partitions' Raft groups on this node.
    replicas: Arc<ReplicaManager>,
}

impl std::fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNode")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// What a node reports about the quorum (`/v1/cluster/raft`, tests).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RaftStatus {
    /// This node.
    pub node_id: NodeId,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Its current term.
    pub term: u64,
    /// Its last applied index.
    pub last_applied: u64,
    /// (index, digest as hex) of its most recent applied entries.
    pub digests: Vec<(u64, String)>,
}

impl ClusterNode {
    /// Opens the stores in `options.dir`, starts Raft over `transport`, and starts the
    /// node's duties. The caller serves [`Self::handler`] on the cluster port.
    ///
    /// # Errors
    /// When the stores cannot be opened or Raft cannot start.
    pub async fn start(
        options: NodeOptions,
        transport: Arc<dyn Transport>,
        disk: Arc<dyn Disk>,
    ) -> Result<Arc<Self>, StartError> {
        let store_err = |source| StartError::Store {
            dir: options.dir.clone(),
            source: Box::new(source),
        };
        let log = LogStore::open(&options.dir, Arc::clone(&disk)).map_err(store_err)?;
        let machine = MachineStore::open(&options.dir, disk).map_err(store_err)?;
        let applied = machine.applied();
        let applied_index = machine.watch_applied();
        let election = u64::try_from(options.election_timeout.as_millis())
            .unwrap_or(1000)
            .max(50);
        let config = Config {
            cluster_name: "weir".into(),
            heartbeat_interval: (election / 5).max(10),
            election_timeout_min: election,
            election_timeout_max: election * 2,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(SNAPSHOT_EVERY),
            max_in_snapshot_log_to_keep: 100,
            ..Config::default()
        };
        let config = Arc::new(
            config
                .validate()
                .map_err(|e| StartError::Raft(e.to_string()))?,
        );
        let network = NetworkFactory {
            transport: Arc::clone(&transport),
        };
        let raft = MetaRaft::new(options.id, config, network, log, machine)
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
        let replicas = Arc::new(
            ReplicaManager::new(options.id, Arc::clone(&transport), options.election_timeout)
                .map_err(StartError::Raft)?,
        );
        let node = Arc::new(Self {
            replicas,
            id: options.id,
            raft,
            transport,
            applied,
            applied_index,
            liveness: Mutex::new(Liveness::new(options.session_timeout)),
            producer_ids: tokio::sync::Mutex::new((0, 0)),
            stop: CancellationToken::new(),
            tasks: Mutex::default(),
            leader_heard: Mutex::new(None),
            options,
        });
        node.initialize().await?;
        let duties = vec![
            tokio::spawn(Arc::clone(&node).heartbeats()),
            tokio::spawn(Arc::clone(&node).leader_duties()),
        ];
        node.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(duties);
        Ok(node)
    }

    async fn initialize(&self) -> Result<(), StartError> {
        let initialized = self
            .raft
            .is_initialized()
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
        if initialized {
            return Ok(());
        }
        let members: BTreeMap<NodeId, EmptyNode> = self
            .options
            .voters
            .iter()
            .map(|id| (*id, EmptyNode {}))
            .collect();
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            // Another node's entries reached this one first: it is initialised already.
            Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
            Err(err) => Err(StartError::Raft(err.to_string())),
        }
    }

    /// This node's id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The metadata as last applied here.
    #[must_use]
    pub fn state(&self) -> Arc<MetadataState> {
        Arc::clone(
            &self
                .applied
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .state,
        )
    }

    /// Watches the last applied index (the reconciler wakes on it).
    #[must_use]
    pub fn watch_applied(&self) -> watch::Receiver<u64> {
        self.applied_index.clone()
    }

    /// The metadata leader (Kafka's active controller) this node knows of.
    #[must_use]
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// The controller to name to clients (Metadata's `controller_id`): the leader while this
    /// node hears from it (it answered a heartbeat within three intervals), else this node
    /// itself, which forwards admin requests or refuses them clearly. A client told of a
    /// leader that died would keep sending admin requests to it until its metadata expires,
    /// as KRaft brokers avoid by naming a live broker.
    #[must_use]
    pub fn controller(&self) -> NodeId {
        let Some(leader) = self.leader() else {
            return self.id;
        };
        if leader == self.id {
            return leader;
        }
        let heard = *self
            .leader_heard
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let fresh = heard.is_some_and(|at| at.elapsed() < self.options.heartbeat_interval * 3);
        if fresh { leader } else { self.id }
    }

    /// What this node reports about the quorum.
    #[must_use]
    pub fn status(&self) -> RaftStatus {
        let metrics = self.raft.metrics().borrow().clone();
        let applied = self.applied.read().unwrap_or_else(PoisonError::into_inner);
        RaftStatus {
            node_id: self.id,
            leader: metrics.current_leader,
            term: metrics.current_term,
            last_applied: applied.last_applied.map_or(0, |l| l.index),
            digests: applied
                .digests
                .iter()
                .map(|(i, d)| (*i, format!("{d:08x}")))
                .collect(),
        }
    }

    /// Makes a metadata change, through the leader wherever it is, and returns once it is
    /// committed and applied on this node too (so this node's next read sees it).
    ///
    /// # Errors
    /// [`ProposeError::NoQuorum`] when no leader answers within [`PROPOSE_TIMEOUT`];
    /// [`ProposeError::Uncertain`] when the change was sent but not confirmed.
    pub async fn propose(&self, command: Command) -> Result<Reply, ProposeError> {
        let deadline = Instant::now() + PROPOSE_TIMEOUT;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ProposeError::NoQuorum(PROPOSE_TIMEOUT));
            }
            let outcome = match self.leader() {
                Some(leader) if leader == self.id => {
                    self.propose_here(command.clone(), remaining).await
                }
                Some(leader) => {
                    match self
                        .transport
                        .call(leader, Request::Propose(command.clone()), remaining)
                        .await
                    {
                        Ok(Response::Propose(outcome)) => outcome,
                        Ok(other) => Err(ForwardError::NotCommitted(format!(
                            "unexpected answer {other:?}"
                        ))),
                        // Never sent: safe to try again.
                        Err(NetError::Unreachable { .. }) => Err(ForwardError::NotLeader(None)),
                        Err(err @ NetError::Failed { .. }) => {
                            Err(ForwardError::NotCommitted(err.to_string()))
                        }
                    }
                }
                None => Err(ForwardError::NotLeader(None)),
            };
            match outcome {
                Ok((index, reply)) => {
                    let mut applied = self.applied_index.clone();
                    let waited = tokio::time::timeout_at(
                        deadline.max(Instant::now() + Duration::from_secs(1)),
                        applied.wait_for(|a| *a >= index),
                    )
                    .await;
                    if !matches!(waited, Ok(Ok(_))) {
                        return Err(ProposeError::Uncertain(format!(
                            "committed at index {index} but not yet applied on node {}",
                            self.id
                        )));
                    }
                    return Ok(reply);
                }
                // Not accepted anywhere: wait for an election and try again.
                Err(ForwardError::NotLeader(_)) => {
                    tokio::time::sleep(Duration::from_millis(50).min(remaining)).await;
                }
                Err(ForwardError::NotCommitted(why)) => return Err(ProposeError::Uncertain(why)),
            }
        }
    }

    /// Proposes on this node, which believes it leads.
    async fn propose_here(
        &self,
        command: Command,
        timeout: Duration,
    ) -> Result<(u64, Reply), ForwardError> {
        match tokio::time::timeout(timeout, self.raft.client_write(command)).await {
            Ok(Ok(written)) => Ok((written.log_id.index, written.data)),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(to)))) => {
                Err(ForwardError::NotLeader(to.leader_id))
            }
            Ok(Err(err)) => Err(ForwardError::NotCommitted(err.to_string())),
            Err(_elapsed) => Err(ForwardError::NotCommitted(format!(
                "not committed within {timeout:?} (the leader may have lost its quorum)"
            ))),
        }
    }

    /// A producer id no other broker of the cluster hands out: from a block reserved through
    /// the controller (1000 at a time, as Kafka's AllocateProducerIds).
    ///
    /// # Errors
    /// When a new block cannot be reserved.
    pub async fn next_producer_id(&self) -> Result<i64, ProposeError> {
        let mut block = self.producer_ids.lock().await;
        if block.0 >= block.1 {
            let reply = self
                .propose(Command::AllocateProducerIds {
                    node: self.id,
                    count: 1000,
                })
                .await?;
            match reply {
                Reply::ProducerIds { start, count } => *block = (start, start + i64::from(count)),
                other => {
                    return Err(ProposeError::Uncertain(format!(
                        "producer ids refused: {other:?}"
                    )));
                }
            }
        }
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }

    /// Answers requests from other nodes (served on the cluster port).
    #[must_use]
    pub fn handler(self: &Arc<Self>) -> Handler {
        let node = Arc::downgrade(self);
        Arc::new(move |request| {
            let node = node.upgrade();
            Box::pin(async move {
                let Some(node) = node else {
                    return Response::Propose(Err(ForwardError::NotLeader(None)));
                };
                node.answer(request).await
            })
        })
    }

    async fn answer(&self, request: Request) -> Response {
        match request {
            Request::AppendEntries(rpc) => {
                Response::AppendEntries(self.raft.append_entries(rpc).await)
            }
            Request::Vote(rpc) => Response::Vote(self.raft.vote(rpc).await),
            Request::InstallSnapshot(rpc) => {
                Response::InstallSnapshot(self.raft.install_snapshot(rpc).await)
            }
            Request::Propose(command) => {
                Response::Propose(self.propose_here(command, PROPOSE_TIMEOUT).await)
            }
            Request::BrokerHeartbeat { node, host, port } => {
                Response::BrokerHeartbeat(self.heard_from(node, host, port))
            }
            Request::Replica { group, rpc } => {
                Response::Replica(self.replicas.answer(group, rpc).await)
            }
        }
    }

    /// On the leader: a broker's heartbeat. Registers it when it is new, fenced or moved.
    fn heard_from(&self, node: NodeId, host: String, port: u16) -> Result<(), ForwardError> {
        let metrics = self.raft.metrics().borrow().clone();
        if metrics.state != ServerState::Leader {
            return Err(ForwardError::NotLeader(metrics.current_leader));
        }
        self.liveness
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .heard(node, Instant::now());
        let state = self.state();
        let current = state
            .brokers
            .get(&node)
            .is_some_and(|b| !b.fenced && b.host == host && b.port == port);
        if !current {
            let raft = self.raft.clone();
            tokio::spawn(async move {
                let command = Command::RegisterBroker { node, host, port };
                match tokio::time::timeout(PROPOSE_TIMEOUT, raft.client_write(command)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => {
                        tracing::debug!(node, error = %err, "cannot register a broker (yet)");
                    }
                    Err(_elapsed) => tracing::debug!(node, "registering a broker timed out"),
                }
            });
        }
        Ok(())
    }

    /// Every heartbeat interval: tell the controller this broker is alive.
    async fn heartbeats(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.options.heartbeat_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let (host, port) = self.options.advertised.clone();
            match self.leader() {
                Some(leader) if leader == self.id => {
                    let _not_leader_any_more = self.heard_from(self.id, host, port);
                }
                Some(leader) => {
                    let request = Request::BrokerHeartbeat {
                        node: self.id,
                        host,
                        port,
                    };
                    let answer = self
                        .transport
                        .call(leader, request, self.options.heartbeat_interval * 2)
                        .await;
                    match answer {
                        Ok(Response::BrokerHeartbeat(Ok(()))) => {
                            *self
                                .leader_heard
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
                        }
                        Ok(other) => tracing::debug!(leader, answer = ?other, "heartbeat refused"),
                        Err(err) => {
                            tracing::debug!(leader, error = %err, "heartbeat to the controller failed");
                        }
                    }
                }
                None => {}
            }
        }
    }

    /// On the leader: name the cluster once, and fence brokers whose session expired.
    async fn leader_duties(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.options.heartbeat_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut leading = false;
        let mut known_leader = None;
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let metrics = self.raft.metrics().borrow().clone();
            if metrics.current_leader != known_leader {
                tracing::info!(leader = ?metrics.current_leader, term = metrics.current_term, "metadata leader changed");
                known_leader = metrics.current_leader;
            }
            let now_leading = metrics.state == ServerState::Leader;
            if now_leading && !leading {
                // A new controller has heard from nobody yet: give every broker a full
                // session before fencing it.
                self.liveness
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .restart(Instant::now());
            }
            leading = now_leading;
            if !leading {
                continue;
            }
            let state = self.state();
            if state.cluster_id.is_none() {
                let cluster_id = super::ids::new_cluster_id();
                if let Err(err) = self.write_duty(Command::InitCluster { cluster_id }).await {
                    tracing::debug!(error = %err, "cannot name the cluster (yet)");
                }
            }
            let live: Vec<NodeId> = state.live_brokers().map(|(id, _)| id).collect();
            let expired = self
                .liveness
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .expired(&live, Instant::now());
            for node in expired {
                tracing::info!(node, "broker session expired: fencing it");
                if let Err(err) = self.write_duty(Command::FenceBroker { node }).await {
                    tracing::debug!(node, error = %err, "cannot fence a broker (yet)");
                }
            }
        }
    }

    /// A controller duty's write, bounded: a controller that lost its quorum cannot commit,
    /// and its duties must not wait for ever (it steps down, or the write is dropped).
    async fn write_duty(&self, command: Command) -> Result<(), ForwardError> {
        self.propose_here(command, PROPOSE_TIMEOUT).await.map(drop)
    }

    /// The replicated partitions' Raft groups on this node.
    #[must_use]
    pub fn replicas(&self) -> &Arc<ReplicaManager> {
        &self.replicas
    }

    /// The connections to the other nodes (a partition leader is asked for a hand-over
    /// through them).
    #[must_use]
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// Cancelled when the node shuts down (its cluster port stops with it).
    #[must_use]
    pub fn stopping(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Stops the duties and Raft.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        for task in tasks {
            let _ended = task.await;
        }
        self.replicas.shutdown().await;
        if let Err(err) = self.raft.shutdown().await {
            tracing::warn!(error = %err, "metadata quorum did not stop cleanly");
        }
    }
}
