//! `/v1/cluster` and `/v1/brokers`: who this broker is, and the running totals the console's
//! overview turns into rates (records and bytes in and out, disk use) by polling.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::{ApiError, ApiState, as_i64};
use crate::server::Context;
use crate::server::NODE_ID;

/// One broker as clients are told to reach it.
#[derive(Debug, Serialize)]
pub(crate) struct BrokerInfo {
    id: i32,
    host: String,
    port: i32,
}

/// The whole cluster, which is this one broker.
#[derive(Debug, Serialize)]
pub(crate) struct Cluster {
    cluster_id: String,
    broker_id: i32,
    controller_id: i32,
    advertised: BrokerInfo,
    version: &'static str,
    uptime_seconds: f64,
    ready: bool,
    /// Wall-clock time of this answer (the broker's clock), for rates computed by a poller.
    now_ms: i64,
    topics: usize,
    partitions: usize,
    /// Bytes of every partition's segments.
    disk_bytes: i64,
    records_in_total: i64,
    bytes_in_total: i64,
    records_out_total: i64,
    bytes_out_total: i64,
    groups: usize,
}

/// The brokers of the cluster.
#[derive(Debug, Serialize)]
pub(crate) struct Brokers {
    brokers: Vec<BrokerInfo>,
}

fn this_broker(ctx: &Context) -> BrokerInfo {
    BrokerInfo {
        id: NODE_ID,
        host: ctx.advertised_host.clone(),
        port: ctx.advertised_port,
    }
}

pub(super) async fn cluster(State(state): State<ApiState>) -> Result<Json<Cluster>, ApiError> {
    let uptime_seconds = state.started.elapsed().as_secs_f64();
    let ready = state.http.is_ready();
    state
        .read(move |ctx| {
            let mut totals = crate::topics::TrafficCounts::default();
            let (mut topics, mut partitions, mut disk) = (0, 0, 0u64);
            for topic in ctx.catalog.list() {
                topics += 1;
                for (_, partition) in topic.local_partitions() {
                    partitions += 1;
                    disk = disk.saturating_add(partition.log().size_bytes());
                    let counts = partition.traffic().counts();
                    totals.records_in += counts.records_in;
                    totals.bytes_in += counts.bytes_in;
                    totals.records_out += counts.records_out;
                    totals.bytes_out += counts.bytes_out;
                }
            }
            let mut groups: std::collections::HashSet<String> =
                ctx.groups.list().into_iter().map(|(g, _, _)| g).collect();
            groups.extend(ctx.offsets.groups());
            Ok(Cluster {
                cluster_id: ctx.cluster_id.clone(),
                broker_id: NODE_ID,
                controller_id: NODE_ID,
                advertised: this_broker(ctx),
                version: env!("CARGO_PKG_VERSION"),
                uptime_seconds,
                ready,
                now_ms: ctx.clock.now_ms(),
                topics,
                partitions,
                disk_bytes: as_i64(disk),
                records_in_total: as_i64(totals.records_in),
                bytes_in_total: as_i64(totals.bytes_in),
                records_out_total: as_i64(totals.records_out),
                bytes_out_total: as_i64(totals.bytes_out),
                groups: groups.len(),
            })
        })
        .await
}

pub(super) async fn brokers(State(state): State<ApiState>) -> Result<Json<Brokers>, ApiError> {
    state
        .read(|ctx| {
            Ok(Brokers {
                brokers: vec![this_broker(ctx)],
            })
        })
        .await
}
