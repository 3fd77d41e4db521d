//! Starting this broker's node of the metadata quorum, when `--node-id`, `--cluster-listen`
//! and `--peers` are given: the cluster port bound, the node started over TCP to the peers,
//! and the port served for as long as the node runs.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::BrokerError;
use crate::cluster::net::mem::MemNetwork;
use crate::cluster::net::{TcpTransport, server};
use crate::cluster::{ClusterNode, NodeOptions};
use crate::config::BrokerConfig;
use crate::server::advertised_host;
use crate::storage::Disk;
use crate::topics::TopicCatalog;

/// The node, or `None` for a single broker. `bound` is the Kafka listener's address (its
/// port is registered with the controller).
pub(super) async fn start(
    config: &BrokerConfig,
    bound: SocketAddr,
    catalog: &TopicCatalog,
    disk: &Arc<dyn Disk>,
    injected: Option<MemNetwork>,
) -> Result<Option<Arc<ClusterNode>>, BrokerError> {
    let Some(settings) = config.cluster.settings()? else {
        return Ok(None);
    };
    if let Some(topic) = catalog.list().iter().find(|t| t.id().is_none()) {
        return Err(BrokerError::NotAClusterDirectory(topic.name().to_owned()));
    }
    let options = NodeOptions {
        id: settings.node_id,
        voters: settings.peers.ids().collect(),
        dir: config.data_dir.join("cluster"),
        advertised: (advertised_host(config, bound), bound.port()),
        session_timeout: settings.session_timeout,
        heartbeat_interval: settings.heartbeat_interval,
        election_timeout: settings.election_timeout,
    };
    if let Some(network) = injected {
        let transport = Arc::new(network.transport(settings.node_id));
        let node = ClusterNode::start(options, transport, Arc::clone(disk)).await?;
        network.register(settings.node_id, node.handler());
        tracing::info!(
            node = settings.node_id,
            "cluster node started on an in-process network"
        );
        return Ok(Some(node));
    }
    let listener =
        TcpListener::bind(settings.listen)
            .await
            .map_err(|source| BrokerError::Bind {
                addr: settings.listen,
                source,
            })?;
    let transport = TcpTransport::new(settings.peers.clone());
    let node = ClusterNode::start(options, Arc::new(transport), Arc::clone(disk)).await?;
    // The port stops with the node: ClusterNode::shutdown cancels its token.
    let stop: CancellationToken = node.stopping();
    tokio::spawn(server::serve(listener, node.handler(), stop));
    tracing::info!(node = settings.node_id, cluster_listen = %settings.listen, voters = settings.peers.len(), "cluster node started");
    Ok(Some(node))
}
