//! State shared by every connection of one broker.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::{Notify, Semaphore};

use super::group_service::GroupService;
use crate::clock::Clock;
use crate::config::BrokerConfig;
use crate::groups::offsets::OffsetStore;
use crate::producers::ProducerIds;
use crate::topics::TopicCatalog;

/// Shared broker state.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) config: BrokerConfig,
    pub(crate) catalog: Arc<TopicCatalog>,
    /// Host and port given to clients in metadata.
    pub(crate) advertised_host: String,
    pub(crate) advertised_port: i32,
    pub(crate) cluster_id: String,
    /// Woken after every append, so long-polling fetches re-read without polling.
    pub(crate) appended: Notify,
    /// Producer ids for InitProducerId.
    pub(crate) producer_ids: ProducerIds,
    /// The consumer-group coordinator.
    pub(crate) groups: Arc<GroupService>,
    /// Committed offsets of consumer groups.
    pub(crate) offsets: Arc<OffsetStore>,
    /// Wall-clock time (commit timestamps, group timers).
    pub(crate) clock: Arc<dyn Clock>,
    /// Permits are produce payload bytes, `config.produce_budget()` of them. A connection that
    /// would exceed it stops reading until others finish: memory stays bounded however fast
    /// producers send.
    pub(crate) produce_bytes: Arc<Semaphore>,
}

/// The broker's node id: there is one broker.
pub(crate) const NODE_ID: i32 = 0;

impl Context {
    pub(crate) fn new(
        config: BrokerConfig,
        bound: SocketAddr,
        catalog: TopicCatalog,
        cluster_id: String,
        producer_ids: ProducerIds,
        offsets: OffsetStore,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let advertised_host = config.advertised_host.clone().unwrap_or_else(|| {
            // Clients must reach us at a concrete address: an unspecified listen address
            // advertises loopback (never "localhost", which librdkafka may resolve to ::1).
            if bound.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                bound.ip().to_string()
            }
        });
        Self {
            advertised_host,
            advertised_port: i32::from(bound.port()),
            catalog: Arc::new(catalog),
            cluster_id,
            producer_ids,
            groups: Arc::new(GroupService::new(config.group_config(), Arc::clone(&clock))),
            offsets: Arc::new(offsets),
            clock,
            appended: Notify::new(),
            produce_bytes: Arc::new(Semaphore::new(
                usize::try_from(config.produce_budget()).unwrap_or(Semaphore::MAX_PERMITS),
            )),
            config,
        }
    }
}

/// The cluster id stored in `<data-dir>/cluster-id`, created on first start: 22 characters
/// like Kafka's (URL-safe base64 of 16 bytes).
pub(crate) fn cluster_id(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join("cluster-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    use std::hash::{BuildHasher, Hasher};
    // Unique enough for a cluster id; RandomState is seeded from the OS.
    let mut bytes = [0u8; 16];
    for chunk in bytes.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = u128::from_le_bytes(bytes);
    let id: String = (0..22)
        .map(|_| {
            let c = ALPHABET[(bits & 63) as usize] as char;
            bits >>= 6;
            c
        })
        .collect();
    std::fs::create_dir_all(data_dir)?;
    crate::storage::files::write_atomically(
        data_dir,
        "cluster-id",
        id.as_bytes(),
        &crate::log::OsDisk,
    )?;
    Ok(id)
}
