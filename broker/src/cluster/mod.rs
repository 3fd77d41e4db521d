//! Weir as a cluster (part 1): a metadata quorum on openraft over the voters named by
//! `--peers`, holding the cluster id, the brokers and their liveness, topics with their ids,
//! configs and partition placement, and producer-id blocks.
//!
//! Owns: the replicated state machine ([`state`], pure), what the metadata log holds
//! ([`command`]), its storage ([`store`]), the cluster port ([`net`]: wire format, listener,
//! transports), openraft's network adapter ([`network`]), the running node ([`node`]:
//! proposals forwarded to the leader, heartbeats, fencing on the leader), and the flags
//! ([`peers`]). How a broker serves clients from this state is the server's business; how
//! the local partition logs follow it is [`reconcile`]'s. Consensus is openraft's; nothing
//! here elects, counts votes or decides commits (docs/cluster.md).

pub mod command;
pub(crate) mod ids;
pub mod liveness;
pub mod net;
pub mod network;
pub mod node;
pub mod node_id;
pub mod peers;
pub mod reconcile;
pub mod replica;
pub mod state;
pub mod store;
pub mod testing;
pub mod types;

pub use command::{Command, Refusal, Reply};
pub use node::{ClusterNode, NodeOptions, ProposeError, RaftStatus, StartError};
pub use peers::{ClusterSettings, Peers, PeersError};
pub use state::MetadataState;
pub use types::NodeId;
