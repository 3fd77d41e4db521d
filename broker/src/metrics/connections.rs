//! Connection metrics, updated by the accept loop: accepted, refused by a limit, open now.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RefusalLabel {
    reason: &'static str,
}

/// Why a connection was closed before it was served.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Refusal {
    /// `--max-connections-per-ip` reached for its address.
    PerIp,
    /// Evicted: it had sent no request when a newcomer found the broker full (counted by
    /// the admission through [`ConnectionMetrics::evictions`]).
    Evicted,
}

impl Refusal {
    fn label(self) -> RefusalLabel {
        RefusalLabel {
            reason: match self {
                Self::PerIp => "per_ip_limit",
                Self::Evicted => "evicted_unproven",
            },
        }
    }
}

/// Connection counts of the Kafka port.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionMetrics {
    accepted: Counter,
    refused: Family<RefusalLabel, Counter>,
    open: Gauge,
}

impl ConnectionMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            accepted: Counter::default(),
            refused: Family::default(),
            open: Gauge::default(),
        };
        let weir = registry.sub_registry_with_prefix("weir");
        weir.register(
            "connections_accepted",
            "Kafka connections accepted",
            metrics.accepted.clone(),
        );
        weir.register(
            "connections_refused",
            "Kafka connections closed by a limit before being served, by reason",
            metrics.refused.clone(),
        );
        weir.register(
            "connections_open",
            "Kafka connections being served now",
            metrics.open.clone(),
        );
        metrics
    }

    /// A connection was accepted by the kernel.
    pub(crate) fn accepted(&self) {
        self.accepted.inc();
    }

    /// A connection was closed by a limit.
    pub(crate) fn refused(&self, why: Refusal) {
        self.refused.get_or_create(&why.label()).inc();
    }

    /// The counter of connections evicted to make room, for the admission to bump.
    pub(crate) fn evictions(&self) -> Counter {
        self.refused
            .get_or_create(&Refusal::Evicted.label())
            .clone()
    }

    /// A connection is served from now until the guard is dropped.
    pub(crate) fn open(&self) -> OpenConnection {
        self.open.inc();
        OpenConnection {
            gauge: self.open.clone(),
        }
    }
}

/// Counts one open connection while it lives.
#[derive(Debug)]
pub(crate) struct OpenConnection {
    gauge: Gauge,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}
