//! DeleteRecords (key 21), v0-1: moves partitions' log start offsets (Kafka's "low
//! watermark") up, durably, before answering.
//!
//! Per partition: an unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION; `-1` means the
//! high watermark; an offset past the high watermark (or negative other than -1) is
//! OFFSET_OUT_OF_RANGE; an offset at or below the current start changes nothing and answers
//! the current start; a log whose cleanup policy lacks `delete` is POLICY_VIOLATION (as in
//! Kafka). The answer comes after the new start is on disk (`log-start-offset`, synced), so a
//! crash after the answer never brings the records back. On one broker the request's
//! `timeout_ms` is not needed.
//!
//! A replicated partition is served by its leader (NOT_LEADER_OR_FOLLOWER elsewhere), which
//! proposes the move to its group and answers once it is committed and applied, within
//! `timeout_ms` (at least 1 s; REQUEST_TIMED_OUT after it): every replica moves its start at
//! the same entry.

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use weir_protocol::error_code::ErrorCode;

use std::time::Duration;

use super::{Context, log_error_code};
use crate::cluster::replica::ReplicaProduceError;
use crate::cluster::replica::retain::DeleteRecordsError;
use crate::log::{LogError, Offset};

pub(crate) async fn delete_records(
    ctx: &Arc<Context>,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let found = ctx.catalog.get(&topic.name.0);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let result = DeleteRecordsPartitionResult::default()
                .with_partition_index(p.partition_index)
                .with_low_watermark(-1);
            let Some(log) = found
                .as_ref()
                .and_then(|t| t.log(p.partition_index))
                .map(Arc::clone)
            else {
                let code = ctx.missing_partition(&topic.name.0, p.partition_index).0;
                partitions.push(result.with_error_code(code.code()));
                continue;
            };
            match ctx.replicated(&topic.name.0, p.partition_index) {
                // A replicated partition moves its start through its group's log, on every
                // replica (`cluster/replica/retain.rs`).
                Some(Ok(group)) => {
                    let timeout = Duration::from_millis(
                        u64::try_from(request.timeout_ms)
                            .unwrap_or(0)
                            .clamp(1_000, 60_000),
                    );
                    partitions.push(match group.delete_records(p.offset, timeout).await {
                        Ok(start) => result.with_low_watermark(start.0),
                        Err(err) => {
                            tracing::info!(topic = %topic.name.0, partition = p.partition_index, error = %err, "replicated delete records refused");
                            result.with_error_code(replicated_error_code(&err).code())
                        }
                    });
                    continue;
                }
                Some(Err((code, _))) => {
                    partitions.push(result.with_error_code(code.code()));
                    continue;
                }
                None => {}
            }
            // A sync and a file write: off the runtime's threads.
            let moved =
                tokio::task::spawn_blocking(move || log.delete_records_before(Offset(p.offset)))
                    .await
                    .unwrap_or_else(|join| {
                        Err(LogError::Io {
                            op: "delete records of",
                            path: topic.name.0.to_string().into(),
                            source: std::io::Error::other(join.to_string()),
                        })
                    });
            partitions.push(match moved {
                Ok(start) => result.with_low_watermark(start.0),
                Err(err) => {
                    if !matches!(err, LogError::OffsetOutOfRange { .. }) {
                        tracing::warn!(topic = %topic.name.0, partition = p.partition_index, error = %err, "delete records failed");
                    }
                    result.with_error_code(log_error_code(&err).code())
                }
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

/// The Kafka code of a replicated DeleteRecords that did not move the start.
fn replicated_error_code(err: &DeleteRecordsError) -> ErrorCode {
    match err {
        DeleteRecordsError::Log(err) => log_error_code(err),
        DeleteRecordsError::Replica(ReplicaProduceError::NotLeader { .. }) => {
            ErrorCode::NotLeaderOrFollower
        }
        DeleteRecordsError::Replica(ReplicaProduceError::TimedOut(..)) => {
            ErrorCode::RequestTimedOut
        }
        DeleteRecordsError::Replica(_) => ErrorCode::NotLeaderOrFollower,
        DeleteRecordsError::Applied { code, .. } => {
            ErrorCode::from_code(*code).unwrap_or(ErrorCode::UnknownServerError)
        }
    }
}
