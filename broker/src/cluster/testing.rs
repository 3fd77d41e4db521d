//! An in-process metadata quorum for tests: N [`ClusterNode`]s on one [`MemNetwork`] (links
//! cut and healed at run time), each with its own temporary directory.
//!
//! ```no_run
//! # async fn demo() {
//! let cluster = weir_broker::cluster::testing::QuorumCluster::builder().nodes(3).start().await;
//! let leader = cluster.wait_for_leader().await;
//! # }
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::net::mem::MemNetwork;
use super::node::{ClusterNode, NodeOptions};
use super::types::NodeId;
use crate::storage::OsDisk;

/// Builds a [`QuorumCluster`].
#[derive(Debug)]
pub struct Builder {
    nodes: u64,
    election_timeout: Duration,
    session_timeout: Duration,
}

/// Running nodes on an in-process network.
#[derive(Debug)]
pub struct QuorumCluster {
    network: MemNetwork,
    nodes: BTreeMap<NodeId, Arc<ClusterNode>>,
    dirs: BTreeMap<NodeId, PathBuf>,
    options: Builder,
    _root: TempRoot,
}

#[derive(Debug)]
struct TempRoot(PathBuf);

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ignored = std::fs::remove_dir_all(&self.0);
    }
}

impl QuorumCluster {
    /// A builder: 3 nodes, 300 ms election timeout, 2 s broker sessions.
    #[must_use]
    pub fn builder() -> Builder {
        Builder {
            nodes: 3,
            election_timeout: Duration::from_millis(300),
            session_timeout: Duration::from_secs(2),
        }
    }

    /// The network, to cut and heal links.
    #[must_use]
    pub fn network(&self) -> &MemNetwork {
        &self.network
    }

    /// Running node `id`.
    ///
    /// # Panics
    /// If it is not running.
    #[must_use]
    pub fn node(&self, id: NodeId) -> &Arc<ClusterNode> {
        &self.nodes[&id]
    }

    /// Node `id`'s directory (`<data>/cluster` of a broker).
    #[must_use]
    pub fn dir(&self, id: NodeId) -> &std::path::Path {
        &self.dirs[&id]
    }

    /// The ids of the running nodes.
    #[must_use]
    pub fn running(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// Waits (up to 20 s) until every running node names the same leader, and returns it.
    ///
    /// # Panics
    /// If they do not agree in time.
    pub async fn wait_for_leader(&self) -> NodeId {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let leaders: Vec<_> = self.nodes.values().map(|n| n.leader()).collect();
            if let Some(Some(first)) = leaders.first() {
                if leaders.iter().all(|l| *l == Some(*first)) && self.nodes.contains_key(first) {
                    return *first;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no agreed leader: {leaders:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops node `id` as a crash would leave it (its files stay).
    pub async fn stop(&mut self, id: NodeId) {
        self.network.unregister(id);
        if let Some(node) = self.nodes.remove(&id) {
            node.shutdown().await;
        }
    }

    /// Stops node `id`, empties its directory, and starts it again: an empty voter that must
    /// catch up from the others (by snapshot when their logs were purged).
    pub async fn wipe_and_restart(&mut self, id: NodeId) {
        self.stop(id).await;
        let dir = &self.dirs[&id];
        if let Err(err) = std::fs::remove_dir_all(dir) {
            assert_eq!(
                err.kind(),
                std::io::ErrorKind::NotFound,
                "wipe {}: {err}",
                dir.display()
            );
        }
        self.restart(id).await;
    }

    /// Starts node `id` again on its directory.
    ///
    /// # Panics
    /// If it cannot start.
    pub async fn restart(&mut self, id: NodeId) {
        let node = start_node(&self.network, id, &self.dirs[&id], &self.options).await;
        self.nodes.insert(id, node);
    }
}

async fn start_node(
    network: &MemNetwork,
    id: NodeId,
    dir: &std::path::Path,
    options: &Builder,
) -> Arc<ClusterNode> {
    let node = ClusterNode::start(
        NodeOptions {
            id,
            voters: (1..=options.nodes).collect(),
            dir: dir.to_path_buf(),
            advertised: ("127.0.0.1".into(), u16::try_from(9000 + id).unwrap_or(9000)),
            session_timeout: options.session_timeout,
            heartbeat_interval: options.election_timeout / 3,
            election_timeout: options.election_timeout,
        },
        Arc::new(network.transport(id)),
        Arc::new(OsDisk),
    )
    .await
    .expect("start a node");
    network.register(id, node.handler());
    node
}

impl Builder {
    /// How many voters (1, 3 or 5).
    #[must_use]
    pub fn nodes(mut self, nodes: u64) -> Self {
        self.nodes = nodes;
        self
    }

    /// The broker session timeout (fencing).
    #[must_use]
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// Starts every node.
    ///
    /// # Panics
    /// If a node cannot start.
    pub async fn start(self) -> QuorumCluster {
        let root = std::env::temp_dir().join(format!("weir-quorum-{}", uuid::Uuid::new_v4()));
        let network = MemNetwork::default();
        let mut nodes = BTreeMap::new();
        let mut dirs = BTreeMap::new();
        for id in 1..=self.nodes {
            let dir = root.join(format!("node-{id}"));
            nodes.insert(id, start_node(&network, id, &dir, &self).await);
            dirs.insert(id, dir);
        }
        QuorumCluster {
            network,
            nodes,
            dirs,
            options: self,
            _root: TempRoot(root),
        }
    }
}
