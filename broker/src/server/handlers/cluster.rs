//! DescribeCluster (key 60), v0-2, and DescribeLogDirs (key 35), v1-4: what the one broker
//! is and what its data directory holds.
//!
//! DescribeCluster answers this broker as the controller and the only broker, with the
//! advertised address of Metadata. DescribeLogDirs answers the one data directory: each
//! partition's bytes on disk (what `kafka-log-dirs` shows), offset lag 0 and never a future
//! replica (no replica movement), and from v4 the filesystem's total and usable bytes
//! (`statvfs`; -1 when it cannot be read, Kafka's "unknown").

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, DescribeLogDirsRequest,
    DescribeLogDirsResponse, TopicName,
};
use weir_protocol::error_code::ErrorCode;

use super::{Context, wire_str};
use crate::server::context::NODE_ID;
use crate::topics::space;

/// DescribeCluster's `endpoint_type` for brokers (v1+; 2 asks for controllers, which a
/// combined single node does not list separately, as a Kafka broker refuses it).
const ENDPOINT_BROKERS: i8 = 1;

/// Kafka's ACL operation codes for the CLUSTER resource (`AclOperation`): ALTER 7, DESCRIBE
/// 8, CREATE 5, CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12.
const CLUSTER_OPERATIONS: [u8; 7] = [5, 7, 8, 9, 10, 11, 12];

/// DescribeCluster's `cluster_authorized_operations` when asked: every cluster operation,
/// since there is no authorizer (as DescribeGroups answers for groups), one bit per code.
pub(crate) const CLUSTER_AUTHORIZED_OPERATIONS: i32 = {
    let mut bits = 0;
    let mut i = 0;
    while i < CLUSTER_OPERATIONS.len() {
        bits |= 1 << CLUSTER_OPERATIONS[i];
        i += 1;
    }
    bits
};

pub(crate) fn describe_cluster(
    ctx: &Arc<Context>,
    request: &DescribeClusterRequest,
) -> DescribeClusterResponse {
    let response = DescribeClusterResponse::default()
        .with_endpoint_type(request.endpoint_type)
        .with_cluster_id(wire_str(ctx.current_cluster_id()));
    // v0 decodes the field as its default, 1 (brokers).
    if request.endpoint_type != ENDPOINT_BROKERS {
        return response
            .with_error_code(ErrorCode::UnsupportedEndpointType.code())
            .with_error_message(Some(wire_str(format!(
                "endpoint type {} is not served: this broker lists brokers (1) only",
                request.endpoint_type
            ))))
            .with_controller_id(BrokerId(-1));
    }
    let operations = if request.include_cluster_authorized_operations {
        CLUSTER_AUTHORIZED_OPERATIONS
    } else {
        i32::MIN
    };
    let response = response.with_cluster_authorized_operations(operations);
    if let (Some(node), Some(state)) = (&ctx.cluster, ctx.metadata()) {
        let id = |n: u64| BrokerId(i32::try_from(n).unwrap_or(-1));
        return response
            .with_controller_id(id(node.controller()))
            .with_brokers(
                state
                    .live_brokers()
                    .map(|(n, b)| {
                        DescribeClusterBroker::default()
                            .with_broker_id(id(n))
                            .with_host(wire_str(b.host.clone()))
                            .with_port(i32::from(b.port))
                    })
                    .collect(),
            );
    }
    response
        .with_controller_id(BrokerId(NODE_ID))
        .with_brokers(vec![
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(NODE_ID))
                .with_host(wire_str(ctx.advertised_host.clone()))
                .with_port(ctx.advertised_port),
        ])
}

pub(crate) fn describe_log_dirs(
    ctx: &Arc<Context>,
    request: &DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let topics: Vec<DescribeLogDirsTopic> = match &request.topics {
        // Null: every partition.
        None => ctx
            .catalog
            .list()
            .iter()
            .map(|topic| {
                // Only the partitions this broker holds have a log directory here.
                let indexes = topic.local_partitions().map(|(i, _)| i);
                described(ctx, topic.name(), indexes)
            })
            .collect(),
        // Unknown topics and partitions are left out, as Kafka does.
        Some(wanted) => wanted
            .iter()
            .map(|t| described(ctx, &t.topic.0, t.partitions.iter().copied()))
            .filter(|t| !t.partitions.is_empty())
            .collect(),
    };
    let dir = &ctx.config.data_dir;
    let (total, usable) = match space::filesystem_bytes(dir) {
        Ok(figures) => (figures.total_bytes, figures.usable_bytes),
        Err(err) => {
            tracing::warn!(dir = %dir.display(), error = %err, "cannot read the data directory's filesystem size");
            (-1, -1)
        }
    };
    let log_dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
    DescribeLogDirsResponse::default().with_results(vec![
        DescribeLogDirsResult::default()
            .with_log_dir(wire_str(log_dir.display().to_string()))
            .with_topics(topics)
            .with_total_bytes(total)
            .with_usable_bytes(usable),
    ])
}

/// The partitions `indexes` of `topic` that exist, with their sizes.
fn described(
    ctx: &Context,
    topic: &str,
    indexes: impl Iterator<Item = i32>,
) -> DescribeLogDirsTopic {
    let found = ctx.catalog.get(topic);
    let partitions = indexes
        .filter_map(|i| {
            let log = found.as_ref()?.log(i)?;
            Some(
                DescribeLogDirsPartition::default()
                    .with_partition_index(i)
                    .with_partition_size(i64::try_from(log.size_bytes()).unwrap_or(i64::MAX))
                    .with_offset_lag(0)
                    .with_is_future_key(false),
            )
        })
        .collect();
    DescribeLogDirsTopic::default()
        .with_name(TopicName(wire_str(topic)))
        .with_partitions(partitions)
}
