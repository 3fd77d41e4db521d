//! The broker's Prometheus metrics, rendered in the text exposition format for `GET /metrics`.
//!
//! Two kinds, kept apart so that the hot paths stay cheap:
//! - counted where things happen ([`requests`]): per-API request counts, bytes and latency,
//!   requests in flight. Each update is an atomic add, or a read lock on a family whose label
//!   is a `&'static str` (no allocation); per request, never per record.
//! - read at each scrape ([`collector`]): every partition's offsets, size, segments and
//!   traffic counters (the counters themselves live in each [`crate::topics::Partition`] and
//!   are bumped once per batch), consumer groups with their lag, and the process (memory,
//!   open files, uptime, build).
//!
//! Names are prefixed `weir_`, with the unit last (`_seconds`, `_bytes`, `_total`).
//! Owns no store: the collector reads the catalog, the groups and the offsets through the
//! handles it is given once they are open ([`Metrics::attach`]); until then a scrape shows the
//! process alone.

pub(crate) mod collector;
pub(crate) mod connections;
pub(crate) mod disk;
pub(crate) mod errors;
pub(crate) mod process;
pub(crate) mod requests;

use std::sync::{Arc, OnceLock, Weak};

use prometheus_client::registry::Registry;

pub(crate) use connections::ConnectionMetrics;
pub(crate) use requests::RequestMetrics;

use crate::groups::offsets::CommittedOffset;
use crate::groups::service::GroupService;
use crate::topics::TopicCatalog;

/// What a scrape reads from the running broker: its stores and the server's own figures.
/// Implemented by the server's shared state; a trait so that the metrics do not depend on
/// the server (which depends on them).
pub(crate) trait ScrapeSource: Send + Sync + std::fmt::Debug {
    /// The topics and their partitions.
    fn catalog(&self) -> &TopicCatalog;
    /// The consumer groups.
    fn groups(&self) -> &GroupService;
    /// The groups with committed offsets served here (the local store, or in a cluster the
    /// `__consumer_offsets` partitions this broker leads).
    fn offset_groups(&self) -> Vec<String>;
    /// A group's committed offsets, sorted by topic and partition.
    fn group_offsets(&self, group: &str) -> Vec<(String, i32, CommittedOffset)>;
    /// Long-polling fetches waiting for an append.
    fn parked_fetches(&self) -> u64;
    /// Request bytes held now out of the broker-wide budget.
    fn request_budget_used(&self) -> u64;
}

/// What a scrape reads, handed over once the stores are open. Weak: the source holds the
/// metrics.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    pub(crate) source: Weak<dyn ScrapeSource>,
}

/// Every metric of one broker.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub(crate) requests: RequestMetrics,
    pub(crate) connections: ConnectionMetrics,
    disk: disk::DiskMetrics,
    sources: Arc<OnceLock<Sources>>,
}

impl Metrics {
    /// A registry with every metric at zero and no stores attached.
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let requests = RequestMetrics::register(&mut registry);
        let connections = ConnectionMetrics::register(&mut registry);
        let disk = disk::DiskMetrics::register(&mut registry);
        let sources = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(collector::BrokerCollector::new(Arc::clone(
            &sources,
        ))));
        registry.register_collector(Box::new(process::ProcessCollector::new()));
        Self {
            registry,
            requests,
            connections,
            disk,
            sources,
        }
    }

    /// `disk`, with its syncs timed and its writes and failures counted.
    pub(crate) fn meter_disk(
        &self,
        disk: Arc<dyn crate::storage::Disk>,
    ) -> Arc<dyn crate::storage::Disk> {
        self.disk.meter(disk)
    }

    /// A produced batch became durable `took` after it was appended.
    pub(crate) fn durable_after(&self, took: std::time::Duration) {
        self.disk.durable_after(took);
    }

    /// Gives the scrape the stores to read (once; later calls are ignored).
    pub(crate) fn attach(&self, sources: Sources) {
        // A second attach would be a bug in the assembly; the first stores stay.
        if self.sources.set(sources).is_err() {
            tracing::warn!("metrics sources attached twice; keeping the first");
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric now.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Err(err) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
        {
            // Writing into a String cannot fail; a collector's own error ends the text early.
            tracing::warn!(error = %err, "encoding metrics failed");
        }
        text
    }
}
