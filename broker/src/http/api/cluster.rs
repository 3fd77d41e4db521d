//! `/v1/cluster` and `/v1/brokers`: who this broker is, and the running totals the console's
//! overview turns into rates (records and bytes in and out, disk use) by polling.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::{ApiError, ApiState, as_i64};
use crate::server::Context;

/// One broker as clients are told to reach it.
#[derive(Debug, Serialize)]
pub(crate) struct BrokerInfo {
    id: i32,
    host: String,
    port: i32,
}

/// The cluster as this broker sees it (one broker, or a cluster's node).
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
        id: ctx.node_id(),
        host: ctx.advertised_host.clone(),
        port: ctx.advertised_port,
    }
}

/// The live brokers: every one of a cluster's, or this one.
fn live_brokers(ctx: &Context) -> Vec<BrokerInfo> {
    match ctx.metadata() {
        None => vec![this_broker(ctx)],
        Some(state) => state
            .live_brokers()
            .map(|(id, b)| BrokerInfo {
                id: i32::try_from(id).unwrap_or(-1),
                host: b.host.clone(),
                port: i32::from(b.port),
            })
            .collect(),
    }
}

/// `/v1/cluster/raft`: this node's view of the metadata quorum (leader, term, last applied
/// entry and the digests of the latest ones, which the cluster tests compare across nodes).
/// 404 on a single broker.
pub(super) async fn raft(
    State(state): State<ApiState>,
) -> Result<Json<crate::cluster::RaftStatus>, ApiError> {
    state
        .read(|ctx| {
            ctx.cluster
                .as_ref()
                .map(|node| node.status())
                .ok_or(ApiError::NoRoute)
        })
        .await
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
            groups.extend(crate::server::committed(ctx).groups());
            Ok(Cluster {
                cluster_id: ctx.current_cluster_id(),
                broker_id: ctx.node_id(),
                controller_id: ctx.cluster.as_ref().map_or(ctx.node_id(), |node| {
                    i32::try_from(node.controller()).unwrap_or(-1)
                }),
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
                brokers: live_brokers(ctx),
            })
        })
        .await
}
