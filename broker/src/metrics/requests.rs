//! Per-API request metrics, updated by the dispatcher once per request: count, latency,
//! request and response bytes, and the requests in flight.
//!
//! Invariant: the label is the API's `&'static str` name, so recording allocates nothing;
//! the families are created once at start and only read-locked afterwards.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;

/// The label of every per-API metric.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ApiLabel {
    api: &'static str,
}

/// The label of the error counter: the API and Kafka's name of the code.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ErrorLabel {
    api: &'static str,
    error: &'static str,
}

type HistogramFamily = Family<ApiLabel, Histogram, fn() -> Histogram>;

/// Latency buckets from 100 µs to about 6.5 s, doubling: a produce synced to disk takes a
/// few milliseconds, a long-polling fetch up to its `max_wait_ms`.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

/// Request metrics, shared by every connection.
#[derive(Debug, Clone)]
pub(crate) struct RequestMetrics {
    requests: Family<ApiLabel, Counter>,
    errors: Family<ErrorLabel, Counter>,
    request_bytes: Family<ApiLabel, Counter>,
    response_bytes: Family<ApiLabel, Counter>,
    duration: HistogramFamily,
    in_flight: Gauge,
    closed: Counter,
}

impl RequestMetrics {
    /// Creates the metrics and registers them.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            errors: Family::default(),
            request_bytes: Family::default(),
            response_bytes: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            in_flight: Gauge::default(),
            closed: Counter::default(),
        };
        let weir = registry.sub_registry_with_prefix("weir");
        weir.register(
            "requests",
            "Kafka requests handled, by API",
            metrics.requests.clone(),
        );
        weir.register(
            "request_errors",
            "Kafka error codes in responses (top-level, topic, partition, group or member), by API and error",
            metrics.errors.clone(),
        );
        weir.register_with_unit(
            "request",
            "Bytes of Kafka request frames, by API",
            Unit::Bytes,
            metrics.request_bytes.clone(),
        );
        weir.register_with_unit(
            "response",
            "Bytes of Kafka response frames, by API",
            Unit::Bytes,
            metrics.response_bytes.clone(),
        );
        weir.register_with_unit(
            "request_duration",
            "Time from a request's arrival to its response, by API",
            Unit::Seconds,
            metrics.duration.clone(),
        );
        weir.register(
            "requests_in_flight",
            "Kafka requests received and not yet answered",
            metrics.in_flight.clone(),
        );
        weir.register(
            "requests_refused",
            "Requests that closed their connection: undecodable, unknown API or version",
            metrics.closed.clone(),
        );
        metrics
    }

    /// A request of `key` with a `bytes`-byte frame arrived; returns the guard that counts it
    /// in flight until dropped.
    pub(crate) fn started(&self, key: ApiKey, bytes: usize) -> InFlight {
        let label = ApiLabel { api: key.name() };
        self.requests.get_or_create(&label).inc();
        self.request_bytes
            .get_or_create(&label)
            .inc_by(bytes as u64);
        self.in_flight.inc();
        InFlight {
            gauge: self.in_flight.clone(),
        }
    }

    /// A request of `key` was answered with `bytes` bytes after `took`.
    pub(crate) fn finished(&self, key: ApiKey, bytes: usize, took: Duration) {
        let label = ApiLabel { api: key.name() };
        self.response_bytes
            .get_or_create(&label)
            .inc_by(bytes as u64);
        self.duration
            .get_or_create(&label)
            .observe(took.as_secs_f64());
    }

    /// Counts the error codes in `response`, a response of `key`.
    pub(crate) fn errors(&self, key: ApiKey, response: &kafka_protocol::messages::ResponseKind) {
        super::errors::error_codes(response, &mut |code| {
            let error = ErrorCode::from_code(code).map_or("UNKNOWN_SERVER_ERROR", ErrorCode::name);
            self.errors
                .get_or_create(&ErrorLabel {
                    api: key.name(),
                    error,
                })
                .inc();
        });
    }

    /// A request closed its connection instead of being answered.
    pub(crate) fn refused(&self) {
        self.closed.inc();
    }
}

/// Counts one request in flight while it lives.
#[derive(Debug)]
pub(crate) struct InFlight {
    gauge: Gauge,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}
