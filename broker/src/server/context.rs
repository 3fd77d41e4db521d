//! State shared by every connection of one broker.
//!
//! Owns nothing it builds: the stores, the clock and the disk are opened and chosen by the
//! broker's assembly (`crate::broker`) and handed over in [`Parts`]; the context adds only
//! what the network needs on top (the advertised address, the append waiters, the
//! request-bytes budget). Invariant: every handler reaches time and the disk through the
//! context's `clock` and `disk`, never by constructing its own.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::appends::AppendWaiters;
use crate::clock::Clock;
use crate::cluster::ClusterNode;
use crate::config::BrokerConfig;
use crate::groups::offsets::replicated::ReplicatedOffsets;
use crate::groups::offsets::{CommittedOffset, OffsetStore};
use crate::groups::service::GroupService;
use crate::metrics::Metrics;
use crate::producers::ProducerIds;
use crate::storage::Disk;
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
    /// Long-polling fetches by partition, woken by appends to their partitions only.
    pub(crate) appended: AppendWaiters,
    /// Producer ids for InitProducerId.
    pub(crate) producer_ids: ProducerIds,
    /// The consumer-group coordinator.
    pub(crate) groups: Arc<GroupService>,
    /// Committed offsets of consumer groups.
    pub(crate) offsets: Arc<OffsetStore>,
    /// Wall-clock time (commit timestamps, group timers).
    pub(crate) clock: Arc<dyn Clock>,
    /// File writes and syncs outside the logs (producer-id blocks).
    pub(crate) disk: Arc<dyn Disk>,
    /// Permits are request bytes, `config.produce_budget()` of them: taken by a large frame
    /// before its body is read (until decoded) and by a produce until it is handled. A
    /// connection that would exceed it stops reading until others finish: memory stays
    /// bounded however many clients send at once.
    pub(crate) request_bytes: Arc<Semaphore>,
    /// Counted by the dispatcher; rendered by the HTTP listener.
    pub(crate) metrics: Arc<Metrics>,
    /// This broker's node of the metadata quorum; `None` for a single broker.
    pub(crate) cluster: Option<Arc<ClusterNode>>,
    /// In a cluster of two or more voters: the committed offsets of the `__consumer_offsets`
    /// partitions this broker leads (`offsets` is then unused); `None` otherwise.
    pub(crate) replicated_offsets: Option<Arc<ReplicatedOffsets>>,
}

/// The single broker's node id (a cluster's nodes have `--node-id`, from 1).
pub(crate) const NODE_ID: i32 = 0;

/// What the broker's assembly opened and chose, handed to [`Context::new`].
#[derive(Debug)]
pub(crate) struct Parts {
    pub(crate) config: BrokerConfig,
    /// The address the listener is bound to (its port is advertised).
    pub(crate) bound: SocketAddr,
    pub(crate) catalog: Arc<TopicCatalog>,
    pub(crate) cluster_id: String,
    pub(crate) producer_ids: ProducerIds,
    pub(crate) groups: Arc<GroupService>,
    pub(crate) offsets: Arc<OffsetStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) disk: Arc<dyn Disk>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) cluster: Option<Arc<ClusterNode>>,
}

impl Context {
    /// The log cleaner's settings in force now (its flags, replaced by dynamic broker configs
    /// set with IncrementalAlterConfigs); read at each pass so a change applies without a
    /// restart.
    pub(crate) fn cleaner_settings(&self) -> crate::topics::config::CleanerSettings {
        self.catalog.broker_configs().cleaner_settings()
    }

    pub(crate) fn new(parts: Parts) -> Self {
        let Parts {
            config,
            bound,
            catalog,
            cluster_id,
            producer_ids,
            groups,
            offsets,
            clock,
            disk,
            metrics,
            cluster,
        } = parts;
        let advertised_host = advertised_host(&config, bound);
        // A cluster of one voter cannot replicate: it keeps the local store.
        let voters = config
            .cluster
            .settings()
            .ok()
            .flatten()
            .map_or(0, |s| s.peers.len());
        let replicated_offsets =
            (cluster.is_some() && voters >= 2).then(|| Arc::new(ReplicatedOffsets::new()));
        Self {
            replicated_offsets,
            advertised_host,
            advertised_port: i32::from(bound.port()),
            catalog,
            cluster_id,
            producer_ids,
            groups,
            offsets,
            clock,
            disk,
            appended: AppendWaiters::default(),
            request_bytes: Arc::new(Semaphore::new(
                usize::try_from(config.produce_budget()).unwrap_or(Semaphore::MAX_PERMITS),
            )),
            metrics,
            cluster,
            config,
        }
    }
}

/// The host clients are told to reach this broker at: `--advertised-host`, else the bound
/// address. Clients must reach us at a concrete address: an unspecified listen address
/// advertises loopback (never "localhost", which librdkafka may resolve to ::1).
pub(crate) fn advertised_host(config: &BrokerConfig, bound: SocketAddr) -> String {
    config.advertised_host.clone().unwrap_or_else(|| {
        if bound.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            bound.ip().to_string()
        }
    })
}

/// What `/metrics` reads at each scrape.
impl crate::metrics::ScrapeSource for Context {
    fn catalog(&self) -> &TopicCatalog {
        &self.catalog
    }

    fn groups(&self) -> &GroupService {
        &self.groups
    }

    fn offset_groups(&self) -> Vec<String> {
        match &self.replicated_offsets {
            Some(replicated) => replicated.groups(),
            None => self.offsets.groups(),
        }
    }

    fn group_offsets(&self, group: &str) -> Vec<(String, i32, CommittedOffset)> {
        match &self.replicated_offsets {
            Some(replicated) => self
                .metadata()
                .and_then(|state| self.offsets_partition(&state, group))
                .map(|index| replicated.group_offsets(index, group))
                .unwrap_or_default(),
            None => self.offsets.group_offsets(group),
        }
    }

    fn parked_fetches(&self) -> u64 {
        self.appended.parked()
    }

    fn request_budget_used(&self) -> u64 {
        let budget = u64::from(self.config.produce_budget());
        budget.saturating_sub(self.request_bytes.available_permits() as u64)
    }
}
