//! One module per API or family (cluster: DescribeCluster and DescribeLogDirs; records:
//! DeleteRecords; offset_delete; producers: DescribeProducers; offset_for_leader_epoch;
//! elect_leaders). Each turns a decoded request
//! into a response using the topic catalog and the logs; errors become Kafka error codes in
//! the response.
//!
//! ApiVersions advertises exactly the shared table (`weir_protocol::api::SUPPORTED_APIS`):
//! every API in it has a handler here, for every version of its range.

pub(crate) mod api_versions;
mod cluster;
mod cluster_admin;
mod cluster_metadata;
mod compacted_keys;
mod config_resource;
mod configs;
pub(crate) mod describe_configs;
mod elect_leaders;
mod fetch;
mod groups;
mod init_producer_id;
mod list_offsets;
mod metadata;
mod offset_delete;
mod offset_for_leader_epoch;
mod offsets;
mod offsets_replicated;
mod produce;
mod produce_replicated;
mod produce_rules;
mod producers;
mod records;
mod topics;

use std::net::SocketAddr;
use std::sync::Arc;

use kafka_protocol::messages::{RequestHeader, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use tokio_util::sync::CancellationToken;
use weir_protocol::api::{ApiKey, VersionRange, supported_range};
use weir_protocol::error_code::ErrorCode;

use super::Context;
use super::turn::Turn;
use crate::log::LogError;
use crate::topics::CatalogError;
pub(crate) use offsets_replicated::committed;
pub(crate) use offsets_replicated::run as run_offsets_coordinator;

/// The version range advertised for `key`: the shared table's, since every API in it has a
/// handler here (the `match` in [`handle`] closes the connection for any other request).
pub(crate) fn advertised(key: ApiKey) -> Option<VersionRange> {
    supported_range(key)
}

/// Runs the handler for `request`. `Ok(None)` means no response is sent (acks=0); `Err` closes
/// the connection with the reason. `cancel` fires when the connection closes or the broker
/// stops: requests parked on it (long-polling fetches, JoinGroup, SyncGroup) then answer at
/// once.
pub(crate) async fn handle(
    ctx: &Arc<Context>,
    header: &RequestHeader,
    peer: SocketAddr,
    request: RequestKind,
    version: i16,
    turn: &mut Turn,
    cancel: &CancellationToken,
) -> Result<Option<ResponseKind>, String> {
    Ok(Some(match request {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions::handle()),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::handle(ctx, r, version).await),
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(topics::create(ctx, r).await),
        RequestKind::DeleteTopics(r) => ResponseKind::DeleteTopics(topics::delete(ctx, r).await),
        RequestKind::CreatePartitions(r) => {
            ResponseKind::CreatePartitions(topics::create_partitions(ctx, r).await)
        }
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(groups::find_coordinator(ctx, &r))
        }
        RequestKind::JoinGroup(r) => {
            // Parked until the rebalance completes: later requests must not wait for that.
            turn.release();
            ResponseKind::JoinGroup(groups::join(ctx, header, peer, r, version, cancel).await)
        }
        RequestKind::SyncGroup(r) => {
            turn.release();
            ResponseKind::SyncGroup(groups::sync(ctx, r, cancel).await)
        }
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(groups::heartbeat(ctx, &r)),
        RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(groups::leave(ctx, &r, version)),
        RequestKind::DescribeGroups(r) => ResponseKind::DescribeGroups(groups::describe(ctx, &r)),
        RequestKind::ListGroups(r) => ResponseKind::ListGroups(groups::list(ctx, &r)),
        RequestKind::OffsetCommit(r) => {
            ResponseKind::OffsetCommit(offsets::commit(ctx, r, version).await)
        }
        RequestKind::OffsetFetch(r) => {
            ResponseKind::OffsetFetch(offsets::fetch(ctx, &r, version).await)
        }
        RequestKind::DeleteGroups(r) => {
            ResponseKind::DeleteGroups(offsets::delete_groups(ctx, r).await)
        }
        RequestKind::InitProducerId(r) => {
            ResponseKind::InitProducerId(init_producer_id::handle(ctx, r).await)
        }
        RequestKind::DescribeConfigs(r) => {
            ResponseKind::DescribeConfigs(describe_configs::handle(ctx, r, version))
        }
        RequestKind::AlterConfigs(r) => ResponseKind::AlterConfigs(configs::alter(ctx, r).await),
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(configs::incremental_alter(ctx, r).await)
        }
        RequestKind::ListOffsets(r) => {
            ResponseKind::ListOffsets(list_offsets::handle(ctx, r, version))
        }
        RequestKind::Fetch(r) => {
            // Reading has no effect for later requests to wait for.
            turn.release();
            ResponseKind::Fetch(fetch::handle(ctx, r, cancel).await)
        }
        RequestKind::Produce(r) => match produce::handle(ctx, r, turn).await? {
            Some(response) => ResponseKind::Produce(response),
            None => return Ok(None),
        },
        RequestKind::DeleteRecords(r) => {
            ResponseKind::DeleteRecords(records::delete_records(ctx, r).await)
        }
        RequestKind::OffsetDelete(r) => {
            ResponseKind::OffsetDelete(offset_delete::offset_delete(ctx, r).await)
        }
        RequestKind::DescribeLogDirs(r) => {
            ResponseKind::DescribeLogDirs(cluster::describe_log_dirs(ctx, &r))
        }
        RequestKind::DescribeCluster(r) => {
            ResponseKind::DescribeCluster(cluster::describe_cluster(ctx, &r))
        }
        RequestKind::DescribeProducers(r) => {
            ResponseKind::DescribeProducers(producers::describe_producers(ctx, &r))
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(ctx, &r))
        }
        RequestKind::ElectLeaders(r) => {
            ResponseKind::ElectLeaders(elect_leaders::handle(ctx, r, version).await)
        }
        other => return Err(format!("no handler for {other:?}")),
    }))
}

/// What every refused transactional request says (FindCoordinator v1+ and Produce v8+ carry
/// it to the client). Transactions are refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
/// clients treat it as fatal at once (librdkafka's `init_transactions` fails within a round
/// trip), where COORDINATOR_NOT_AVAILABLE would be retried until their timeout.
pub(crate) const NO_TRANSACTIONS: &str = "transactions are not supported by this broker (Weir)";

/// The Kafka error code for a log failure.
pub(crate) fn log_error_code(err: &LogError) -> ErrorCode {
    match err {
        LogError::InvalidBatch(_) | LogError::Corrupt { .. } => ErrorCode::CorruptMessage,
        LogError::BatchTooLarge { .. } => ErrorCode::MessageTooLarge,
        LogError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
        LogError::DiskFull { .. }
        | LogError::Failed { .. }
        | LogError::Io { .. }
        | LogError::TruncateBelowCommitted { .. }
        | LogError::NotABatchStart(_) => ErrorCode::KafkaStorageError,
        LogError::Closed(_) => ErrorCode::NotLeaderOrFollower,
        LogError::DeleteForbidden(_) => ErrorCode::PolicyViolation,
        LogError::Epoch(_) => ErrorCode::FencedLeaderEpoch,
    }
}

/// The Kafka error code for a catalog failure.
pub(crate) fn catalog_error_code(err: &CatalogError) -> ErrorCode {
    match err {
        CatalogError::InvalidName(..) | CatalogError::Collides(..) => {
            ErrorCode::InvalidTopicException
        }
        CatalogError::AlreadyExists(_) => ErrorCode::TopicAlreadyExists,
        CatalogError::InvalidPartitions(_) | CatalogError::NotMorePartitions { .. } => {
            ErrorCode::InvalidPartitions
        }
        CatalogError::NoSpace { .. } => ErrorCode::PolicyViolation,
        CatalogError::InvalidConfig(_) => ErrorCode::InvalidConfig,
        CatalogError::UnknownTopic(_) => ErrorCode::UnknownTopicOrPartition,
        CatalogError::Log(e) => log_error_code(e),
        _ => ErrorCode::KafkaStorageError,
    }
}

/// A wire string.
pub(crate) fn wire_str(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
