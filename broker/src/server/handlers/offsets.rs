//! Committed offsets: OffsetCommit 2-7, OffsetFetch 1-7, DeleteGroups 0-1.
//!
//! A commit is checked by the coordinator (member, generation; "simple" commits from
//! `assign()` consumers and kcat on groups without members), written to the offsets store as
//! one record, and answered only after that record is synced (commits from every group share
//! syncs). Unknown topics and partitions are refused per partition, as Kafka does.
//!
//! OffsetFetch v7's `require_stable` (sent by read_committed consumers) asks the broker to
//! answer UNSTABLE_OFFSET_COMMIT while a transaction's offsets are pending; Weir has no
//! transactions, so no offset is ever pending and the flag changes nothing.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use weir_protocol::error_code::ErrorCode;

use super::offsets_replicated::committed;
use super::{Context, wire_str};
use crate::groups::offsets::CommittedOffset;

#[allow(
    clippy::too_many_lines,
    reason = "a commit's checks (membership, then each partition) and its one durable write stay together, so no refused partition reaches the store"
)]
pub(crate) async fn commit(
    ctx: &Arc<Context>,
    request: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let group = request.group_id.0.to_string();
    let now = ctx.clock.now_ms();
    let allowed = match ctx.not_coordinator(&group) {
        Some(code) => Err(code),
        None => ctx.groups.check_commit(
            &group,
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation_id_or_member_epoch,
        ),
    };
    // (topic, partition, code); entries to store for the partitions that pass.
    let mut results: Vec<(TopicName, Vec<(i32, ErrorCode)>)> =
        Vec::with_capacity(request.topics.len());
    let mut entries = Vec::new();
    for topic in request.topics {
        let known = ctx.catalog.get(&topic.name.0);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let code = match &allowed {
                Err(code) => *code,
                // In a cluster the partition may live on another broker: it only has to exist.
                Ok(())
                    if !known
                        .as_ref()
                        .is_some_and(|t| (0..t.partition_count()).contains(&p.partition_index)) =>
                {
                    ErrorCode::UnknownTopicOrPartition
                }
                Ok(()) => {
                    entries.push((
                        topic.name.0.to_string(),
                        p.partition_index,
                        CommittedOffset {
                            offset: p.committed_offset,
                            leader_epoch: if version >= 6 {
                                p.committed_leader_epoch
                            } else {
                                -1
                            },
                            metadata: p.committed_metadata.map(|m| m.to_string()),
                            commit_timestamp_ms: now,
                        },
                    ));
                    ErrorCode::None
                }
            };
            partitions.push((p.partition_index, code));
        }
        results.push((topic.name, partitions));
    }
    if !entries.is_empty() {
        if let Err(code) = committed(ctx).commit(&group, &entries).await {
            for (_, partitions) in &mut results {
                for (_, c) in partitions.iter_mut().filter(|(_, c)| *c == ErrorCode::None) {
                    *c = code;
                }
            }
        }
    }
    let topics = results
        .into_iter()
        .map(|(name, partitions)| {
            OffsetCommitResponseTopic::default()
                .with_name(name)
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(index, code)| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(index)
                                .with_error_code(code.code())
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

pub(crate) async fn fetch(
    ctx: &Arc<Context>,
    request: &OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let group = &request.group_id.0;
    if let Some(code) = ctx.not_coordinator(group) {
        return OffsetFetchResponse::default().with_error_code(code.code());
    }
    // In a cluster: still the leader of the group's offsets partition, and up to date.
    if let Err(code) = committed(ctx).confirm(group).await {
        return OffsetFetchResponse::default().with_error_code(code.code());
    }
    let partition = |topic: &str, index: i32| {
        let found = committed(ctx).fetch(group, topic, index);
        OffsetFetchResponsePartition::default()
            .with_partition_index(index)
            .with_committed_offset(found.as_ref().map_or(-1, |c| c.offset))
            .with_committed_leader_epoch(if version >= 5 {
                found.as_ref().map_or(-1, |c| c.leader_epoch)
            } else {
                -1
            })
            // Kafka answers an unknown offset with an empty metadata string.
            .with_metadata(Some(wire_str(
                found.and_then(|c| c.metadata).unwrap_or_default(),
            )))
    };
    let topics = match &request.topics {
        Some(topics) => topics
            .iter()
            .map(|t| {
                OffsetFetchResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partition_indexes
                            .iter()
                            .map(|&i| partition(&t.name.0, i))
                            .collect(),
                    )
            })
            .collect(),
        // v2+: a null list asks for every committed offset of the group.
        None => {
            let mut by_topic: Vec<(String, Vec<i32>)> = Vec::new();
            for (topic, index, _) in committed(ctx).group_offsets(group) {
                match by_topic.last_mut() {
                    Some((t, parts)) if *t == topic => parts.push(index),
                    _ => by_topic.push((topic, vec![index])),
                }
            }
            by_topic
                .into_iter()
                .map(|(topic, parts)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(wire_str(topic.clone())))
                        .with_partitions(parts.into_iter().map(|i| partition(&topic, i)).collect())
                })
                .collect()
        }
    };
    OffsetFetchResponse::default().with_topics(topics)
}

pub(crate) async fn delete_groups(
    ctx: &Arc<Context>,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for id in request.groups_names {
        let group = id.0.to_string();
        let known = ctx.groups.describe(&group).is_some() || committed(ctx).has_group(&group);
        let code = if let Some(code) = ctx.not_coordinator(&group) {
            code
        } else if !known {
            ErrorCode::GroupIdNotFound
        } else {
            match ctx.groups.delete(&group) {
                Err(code) => code,
                Ok(()) => committed(ctx)
                    .delete_group(&group)
                    .await
                    .err()
                    .unwrap_or(ErrorCode::None),
            }
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(code.code()),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
