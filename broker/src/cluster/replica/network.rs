//! openraft's network for a data group: each RPC is a [`Request::Replica`] naming the group,
//! on the same cluster connections as the metadata quorum's (one per pair of nodes, shared
//! by every group: `docs/cluster.md`, "Sharing connections between groups").

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use openraft::EmptyNode;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use super::types::{DataConfig, GroupId, NodeId};
use crate::cluster::net::wire::{ReplicaAnswer, ReplicaRpc, Request, Response};
use crate::cluster::net::{NetError, Transport};
use crate::cluster::network::{net_error, unexpected};

/// When this broker sent the last AppendEntries that each peer accepted from it as its
/// leader, and in which term (on the leader): the send time, not the answer's, because the
/// follower's own lease started when it received the request, after it was sent, so a slow
/// answer shortens nothing. a follower not heard from for a while is not in
/// sync however far its log got, and a leader that a majority has not accepted lately does
/// not serve (see `ReplicaGroup::is_leader`). An answer naming a higher term is no
/// acceptance and is not recorded.
#[derive(Debug, Default)]
pub struct Contacts(Mutex<HashMap<NodeId, (Instant, u64)>>);

impl Contacts {
    fn heard(&self, peer: NodeId, term: u64, sent: Instant) {
        let mut heard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        // Answers may arrive out of order: keep the latest send.
        let entry = heard.entry(peer).or_insert((sent, term));
        if (term, sent) >= (entry.1, entry.0) {
            *entry = (sent, term);
        }
    }

    /// Whether `peer` accepted this broker's leadership of a request sent within `within`.
    pub fn recent(&self, peer: NodeId, within: Duration) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&peer)
            .is_some_and(|(at, _)| at.elapsed() <= within)
    }

    /// Whether `peer` accepted this broker's leadership in `term`, of a request sent within
    /// `within`.
    pub fn recent_in(&self, peer: NodeId, term: u64, within: Duration) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&peer)
            .is_some_and(|(at, heard)| *heard == term && at.elapsed() <= within)
    }
}

/// Makes one [`ReplicaPeer`] per target, for one group.
#[derive(Debug, Clone)]
pub struct ReplicaNetwork {
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) group: GroupId,
    pub(crate) contacts: Arc<Contacts>,
}

/// One group's RPCs to one peer.
#[derive(Debug)]
pub struct ReplicaPeer {
    target: NodeId,
    group: GroupId,
    transport: Arc<dyn Transport>,
    contacts: Arc<Contacts>,
}

impl RaftNetworkFactory<DataConfig> for ReplicaNetwork {
    type Network = ReplicaPeer;

    async fn new_client(&mut self, target: NodeId, _node: &EmptyNode) -> Self::Network {
        ReplicaPeer {
            target,
            group: self.group,
            transport: Arc::clone(&self.transport),
            contacts: Arc::clone(&self.contacts),
        }
    }
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, EmptyNode, RaftError<NodeId, E>>>;

fn unreachable<E: std::error::Error, W: std::error::Error + 'static>(
    why: &W,
) -> RPCError<NodeId, EmptyNode, RaftError<NodeId, E>> {
    RPCError::Unreachable(Unreachable::new(why))
}

fn no_group<E: std::error::Error>(
    group: GroupId,
) -> RPCError<NodeId, EmptyNode, RaftError<NodeId, E>> {
    // Backed off like a down node: the peer creates the group once its metadata has it.
    let why = std::io::Error::other(format!("the peer has no replica of {group} yet"));
    unreachable(&why)
}

impl ReplicaPeer {
    async fn call(&self, rpc: ReplicaRpc, option: &RPCOption) -> Result<Response, NetError> {
        let timeout = option.hard_ttl().max(Duration::from_millis(50));
        let request = Request::Replica {
            group: self.group,
            rpc,
        };
        self.transport.call(self.target, request, timeout).await
    }
}

impl RaftNetwork<DataConfig> for ReplicaPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<DataConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let (term, sent) = (rpc.vote.leader_id().term, Instant::now());
        match self.call(ReplicaRpc::AppendEntries(rpc), &option).await {
            Ok(Response::Replica(ReplicaAnswer::AppendEntries(Ok(answer)))) => {
                if !matches!(answer, AppendEntriesResponse::HigherVote(_)) {
                    self.contacts.heard(self.target, term, sent);
                }
                Ok(answer)
            }
            Ok(Response::Replica(ReplicaAnswer::AppendEntries(Err(err)))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, err)))
            }
            Ok(Response::Replica(ReplicaAnswer::NoSuchGroup)) => Err(no_group(self.group)),
            Ok(other) => Err(unexpected(&other)),
            Err(err) => Err(net_error(&err)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<DataConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let (term, sent) = (rpc.vote.leader_id().term, Instant::now());
        match self.call(ReplicaRpc::InstallSnapshot(rpc), &option).await {
            Ok(Response::Replica(ReplicaAnswer::InstallSnapshot(Ok(answer)))) => {
                // An answer with a higher term is a refusal, not an acceptance.
                if answer.vote.leader_id().term == term {
                    self.contacts.heard(self.target, term, sent);
                }
                Ok(answer)
            }
            Ok(Response::Replica(ReplicaAnswer::InstallSnapshot(Err(err)))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, err)))
            }
            Ok(Response::Replica(ReplicaAnswer::NoSuchGroup)) => Err(no_group(self.group)),
            Ok(other) => Err(unexpected(&other)),
            Err(err) => Err(net_error(&err)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        match self.call(ReplicaRpc::Vote(rpc), &option).await {
            Ok(Response::Replica(ReplicaAnswer::Vote(Ok(answer)))) => Ok(answer),
            Ok(Response::Replica(ReplicaAnswer::Vote(Err(err)))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, err)))
            }
            Ok(Response::Replica(ReplicaAnswer::NoSuchGroup)) => Err(no_group(self.group)),
            Ok(other) => Err(unexpected(&other)),
            Err(err) => Err(net_error(&err)),
        }
    }
}
