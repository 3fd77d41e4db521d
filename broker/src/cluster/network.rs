//! openraft's network over a [`Transport`]: each Raft RPC is one request on the cluster port.

use std::sync::Arc;
use std::time::Duration;

use openraft::EmptyNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use super::net::wire::{Request, Response};
use super::net::{NetError, Transport};
use super::types::{NodeId, TypeConfig};

/// Makes one [`PeerNetwork`] per target.
#[derive(Debug, Clone)]
pub struct NetworkFactory {
    pub(crate) transport: Arc<dyn Transport>,
}

/// The Raft RPCs to one peer.
#[derive(Debug)]
pub struct PeerNetwork {
    target: NodeId,
    transport: Arc<dyn Transport>,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: NodeId, _node: &EmptyNode) -> Self::Network {
        PeerNetwork {
            target,
            transport: Arc::clone(&self.transport),
        }
    }
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, EmptyNode, RaftError<NodeId, E>>>;

pub(crate) fn net_error<E: std::error::Error>(
    err: &NetError,
) -> RPCError<NodeId, EmptyNode, RaftError<NodeId, E>> {
    match err {
        // openraft backs off from an unreachable node instead of retrying at once.
        NetError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(err)),
        NetError::Failed { .. } => RPCError::Network(NetworkError::new(err)),
    }
}

pub(crate) fn unexpected<E: std::error::Error>(
    response: &Response,
) -> RPCError<NodeId, EmptyNode, RaftError<NodeId, E>> {
    let why = std::io::Error::other(format!("unexpected answer {response:?}"));
    RPCError::Network(NetworkError::new(&why))
}

impl PeerNetwork {
    async fn call(&self, request: Request, option: &RPCOption) -> Result<Response, NetError> {
        // openraft gives each RPC a hard deadline (the heartbeat interval for appends); never
        // wait less than a little, so a loaded machine does not fail every call.
        let timeout = option.hard_ttl().max(Duration::from_millis(50));
        self.transport.call(self.target, request, timeout).await
    }
}

impl RaftNetwork<TypeConfig> for PeerNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        match self.call(Request::AppendEntries(rpc), &option).await {
            Ok(Response::AppendEntries(Ok(answer))) => Ok(answer),
            Ok(Response::AppendEntries(Err(err))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, err)))
            }
            Ok(other) => Err(unexpected(&other)),
            Err(err) => Err(net_error(&err)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        match self.call(Request::InstallSnapshot(rpc), &option).await {
            Ok(Response::InstallSnapshot(Ok(answer))) => Ok(answer),
            Ok(Response::InstallSnapshot(Err(err))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, err)))
            }
            Ok(other) => Err(unexpected(&other)),
            Err(err) => Err(net_error(&err)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        match self.call(Request::Vote(rpc), &option).await {
            Ok(Response::Vote(Ok(answer))) => Ok(answer),
            Ok(Response::Vote(Err(err))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, err)))
            }
            Ok(other) => Err(unexpected(&other)),
            Err(err) => Err(net_error(&err)),
        }
    }
}
