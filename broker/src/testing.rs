//! A cluster of whole brokers in one process, for Rust users' tests and ours: N
//! [`Broker`]s, each with its own temporary data directory and Kafka port on loopback, their
//! cluster traffic on an in-process [`MemNetwork`] whose links tests cut and heal.
//!
//! ```no_run
//! # async fn demo() {
//! use weir_broker::testing::BrokerCluster;
//! let mut cluster = BrokerCluster::builder().nodes(3).start().await;
//! let bootstrap = cluster.bootstrap();           // "127.0.0.1:p1,127.0.0.1:p2,..."
//! cluster.network().isolate(1, &[1, 2, 3]);      // node 1 cut off from the others
//! cluster.network().heal();
//! cluster.stop(2).await;                         // as a crash would leave it
//! cluster.restart(2).await;                      // same directory, same port
//! cluster.shutdown().await;
//! # }
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::net::mem::MemNetwork;
use crate::{Broker, BrokerConfig, RunningBroker};

/// Builds a [`BrokerCluster`].
#[derive(Debug, Clone)]
pub struct BrokerClusterBuilder {
    nodes: u64,
    session_timeout: Duration,
    election_timeout: Duration,
}

/// Brokers of one cluster, running in this process.
#[derive(Debug)]
pub struct BrokerCluster {
    network: MemNetwork,
    running: BTreeMap<u64, RunningBroker>,
    configs: BTreeMap<u64, BrokerConfig>,
    root: PathBuf,
}

impl BrokerCluster {
    /// 3 nodes, 300 ms election timeout, 2 s broker sessions.
    #[must_use]
    pub fn builder() -> BrokerClusterBuilder {
        BrokerClusterBuilder {
            nodes: 3,
            session_timeout: Duration::from_secs(2),
            election_timeout: Duration::from_millis(300),
        }
    }

    /// The in-process network between the nodes.
    #[must_use]
    pub fn network(&self) -> &MemNetwork {
        &self.network
    }

    /// Kafka addresses of the running nodes, comma-separated (a bootstrap list).
    #[must_use]
    pub fn bootstrap(&self) -> String {
        self.running
            .values()
            .map(|b| b.addr().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The Kafka address of node `id`, if it runs.
    #[must_use]
    pub fn addr(&self, id: u64) -> Option<SocketAddr> {
        self.running.get(&id).map(RunningBroker::addr)
    }

    /// Stops node `id` (cleanly: its logs synced) and keeps its directory and port.
    ///
    /// # Panics
    /// If it does not stop cleanly.
    pub async fn stop(&mut self, id: u64) {
        self.network.unregister(id);
        if let Some(broker) = self.running.remove(&id) {
            broker.shutdown().await.expect("clean stop");
        }
    }

    /// Starts node `id` again on its directory and port.
    ///
    /// # Panics
    /// If it cannot start.
    pub async fn restart(&mut self, id: u64) {
        let broker = start(&self.configs[&id], &self.network).await;
        self.running.insert(id, broker);
    }

    /// Stops every node.
    ///
    /// # Panics
    /// If one does not stop cleanly.
    pub async fn shutdown(mut self) {
        let ids: Vec<u64> = self.running.keys().copied().collect();
        for id in ids {
            self.stop(id).await;
        }
        let _ignored = std::fs::remove_dir_all(&self.root);
    }
}

async fn start(config: &BrokerConfig, network: &MemNetwork) -> RunningBroker {
    Broker::builder(config.clone())
        .cluster_network(network.clone())
        .start()
        .await
        .expect("start a cluster node")
}

impl BrokerClusterBuilder {
    /// How many nodes (voters): 1, 3 or 5.
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

    /// Starts every node; returns when all are listening (the quorum forms on its own).
    ///
    /// # Panics
    /// If a node cannot start.
    pub async fn start(self) -> BrokerCluster {
        let root = std::env::temp_dir().join(format!("weir-cluster-{}", uuid::Uuid::new_v4()));
        let network = MemNetwork::default();
        // The cluster port is never bound with an injected network; --peers only names the
        // voters.
        let peers = (1..=self.nodes)
            .map(|i| format!("{i}@127.0.0.1:1"))
            .collect::<Vec<_>>()
            .join(",");
        let mut running = BTreeMap::new();
        let mut configs = BTreeMap::new();
        for id in 1..=self.nodes {
            let mut config = BrokerConfig::for_tests(root.join(format!("node-{id}")));
            config.cluster.node_id = Some(id);
            config.cluster.cluster_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
            config.cluster.peers = Some(peers.clone());
            config.cluster.broker_session_timeout_ms =
                u64::try_from(self.session_timeout.as_millis()).unwrap_or(u64::MAX);
            config.cluster.broker_heartbeat_interval_ms =
                (config.cluster.broker_session_timeout_ms / 6).max(10);
            config.cluster.election_timeout_ms =
                u64::try_from(self.election_timeout.as_millis()).unwrap_or(1000);
            // Tests here decide who leads (they kill and isolate leaders): no leadership
            // moves behind their back. `tests/tests/cluster_leaders.rs` tests the balancer.
            config.cluster.auto_leader_rebalance_enable = false;
            // Three brokers share one process here: 3 offsets partitions (9 Raft groups)
            // rather than the default 10 (30).
            config.cluster.offsets_topic_partitions = 3;
            let broker = start(&config, &network).await;
            // Restarts keep the port clients were told of.
            config.listen = broker.addr();
            running.insert(id, broker);
            configs.insert(id, config);
        }
        BrokerCluster {
            network,
            running,
            configs,
            root,
        }
    }
}
