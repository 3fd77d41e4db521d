//! The cluster port's messages: length-prefixed frames (4-byte big-endian size, at most
//! [`MAX_FRAME`], checked before the body is read) holding a postcard-encoded [`Envelope`].
//!
//! Every envelope carries the sender's protocol [`VERSION`]; a node answers a request of a
//! newer version it does not know with [`Response::Unsupported`] instead of misreading it, so
//! a rolling upgrade can add messages (new variants go at the end of each enum, never in the
//! middle: postcard numbers variants by position).

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

use crate::cluster::command::{Command, Reply};
use crate::cluster::replica::types::HandOver;
use crate::cluster::replica::types::{DataConfig, GroupId};
use crate::cluster::types::{NodeId, TypeConfig};

/// The cluster protocol version this build speaks.
pub const VERSION: u16 = 1;

/// Largest frame accepted on the cluster port (a snapshot chunk is at most 3 MiB).
pub const MAX_FRAME: usize = 16 << 20;

/// One message on the cluster port.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// The sender's protocol version.
    pub version: u16,
    /// Matches a response to its request on a connection.
    pub id: u64,
    /// The message.
    pub body: Body,
}

/// A request or a response.
#[derive(Debug, Serialize, Deserialize)]
pub enum Body {
    /// Asked of the receiver.
    Request(Request),
    /// The answer to the request with the same id.
    Response(Response),
}

/// What one node asks another.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Raft log replication (and heartbeats of the quorum).
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Raft election.
    Vote(VoteRequest<NodeId>),
    /// Raft snapshot transfer, in chunks.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A metadata change forwarded to the leader, answered once committed and applied there.
    Propose(Command),
    /// A broker's liveness heartbeat to the controller, with where clients reach it.
    BrokerHeartbeat {
        /// The broker.
        node: NodeId,
        /// Its advertised Kafka host.
        host: String,
        /// Its advertised Kafka port.
        port: u16,
    },
    /// A Raft RPC of a replicated partition's group (a data group).
    Replica {
        /// Which group.
        group: GroupId,
        /// The RPC.
        rpc: ReplicaRpc,
    },
}

/// The Raft RPCs of a data group.
#[derive(Debug, Serialize, Deserialize)]
pub enum ReplicaRpc {
    /// Log replication and heartbeats.
    AppendEntries(AppendEntriesRequest<DataConfig>),
    /// Election.
    Vote(VoteRequest<NodeId>),
    /// A snapshot for a follower whose entries the leader purged (no records in it:
    /// `cluster/replica/snapshot.rs`).
    InstallSnapshot(InstallSnapshotRequest<DataConfig>),
    /// To a replica the leader hands leadership to: campaign now
    /// ([`crate::cluster::replica::transfer`]).
    Elect,
    /// To the leader: hand leadership to replica `to` (ElectLeaders, the leader balancer).
    HandOver {
        /// The replica to lead next.
        to: NodeId,
    },
}

/// The answers to [`ReplicaRpc`].
#[derive(Debug, Serialize, Deserialize)]
pub enum ReplicaAnswer {
    /// To [`ReplicaRpc::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// To [`ReplicaRpc::Vote`].
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// The receiver has no replica of the group (yet: it creates it once its metadata shows
    /// the partition, or no more: the topic was deleted).
    NoSuchGroup,
    /// To [`ReplicaRpc::InstallSnapshot`].
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// To [`ReplicaRpc::Elect`]: whether the campaign started.
    Elect(Result<(), String>),
    /// To [`ReplicaRpc::HandOver`].
    HandOver(HandOver),
}

/// Why a forwarded proposal or heartbeat was not accepted.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error, PartialEq, Eq)]
pub enum ForwardError {
    /// The receiver is not the leader (any more); it names the leader it knows of.
    #[error("node is not the metadata leader (leader: {0:?})")]
    NotLeader(Option<NodeId>),
    /// The leader could not commit it in time (no quorum).
    #[error("the metadata change was not committed: {0}")]
    NotCommitted(String),
}

/// The answers.
#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    /// To [`Request::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// To [`Request::Vote`].
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// To [`Request::InstallSnapshot`].
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// To [`Request::Propose`]: the log index it was committed at and what applying answered.
    Propose(Result<(u64, Reply), ForwardError>),
    /// To [`Request::BrokerHeartbeat`].
    BrokerHeartbeat(Result<(), ForwardError>),
    /// The request's version is newer than the receiver's.
    Unsupported {
        /// The receiver's version.
        version: u16,
    },
    /// To [`Request::Replica`].
    Replica(ReplicaAnswer),
}

/// Encodes an envelope (without its length prefix, which the codec adds).
///
/// # Errors
/// Never for these types in practice; postcard's error is passed on.
pub fn encode(envelope: &Envelope) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_stdvec(envelope)
}

/// Decodes one frame's body.
///
/// # Errors
/// When the bytes are not an envelope (a bad peer, or one too new to read at all).
pub fn decode(bytes: &[u8]) -> Result<Envelope, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// The length-prefixed codec of the cluster port.
#[must_use]
pub fn codec() -> tokio_util::codec::LengthDelimitedCodec {
    tokio_util::codec::LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(MAX_FRAME)
        .new_codec()
}
