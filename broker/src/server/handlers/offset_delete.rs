//! OffsetDelete (key 47), v0: deletes a group's committed offsets for some partitions, with
//! Kafka's rules (`GroupCoordinator.handleDeleteOffsets`):
//!
//! - a group that has neither members nor committed offsets: GROUP_ID_NOT_FOUND;
//! - a consumer group with members: the partitions of topics some member subscribes to get
//!   GROUP_SUBSCRIBED_TO_TOPIC, the others are deleted;
//! - a group with members of another protocol type: NON_EMPTY_GROUP, nothing deleted;
//! - an empty group (or one known only by its offsets): every named partition is deleted;
//! - a topic or partition that does not exist: UNKNOWN_TOPIC_OR_PARTITION.
//!
//! The deletion is one tombstone record in the offsets store, answered once it is synced.

use std::collections::HashSet;
use std::sync::Arc;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use weir_protocol::consumer_protocol::decode_subscription;
use weir_protocol::error_code::ErrorCode;

use super::Context;
use super::offsets_replicated::committed;
use crate::groups::coordinator::GroupState;

/// Kafka's protocol type of consumer groups.
const CONSUMER: &str = "consumer";

/// What the group's state allows.
enum Allowed {
    /// Every partition but those of these topics (a consumer group's subscriptions).
    AllBut(HashSet<String>),
    /// Nothing: the whole request fails with this code.
    Refused(ErrorCode),
}

pub(crate) async fn offset_delete(
    ctx: &Arc<Context>,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let group = request.group_id.0.to_string();
    let subscribed = match allowed(ctx, &group) {
        Allowed::AllBut(topics) => topics,
        Allowed::Refused(code) => {
            return OffsetDeleteResponse::default().with_error_code(code.code());
        }
    };
    let mut delete = Vec::new();
    // Per topic, per partition: the code, and whether it is deleted.
    let mut answers = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let found = ctx.catalog.get(&name);
        let codes: Vec<(i32, ErrorCode)> = topic
            .partitions
            .iter()
            .map(|p| {
                let index = p.partition_index;
                // The partition exists (held here or, in a cluster, by another broker).
                let exists = found
                    .as_ref()
                    .is_some_and(|t| (0..t.partition_count()).contains(&index));
                let code = if !exists {
                    ErrorCode::UnknownTopicOrPartition
                } else if subscribed.contains(&name) {
                    ErrorCode::GroupSubscribedToTopic
                } else {
                    delete.push((name.clone(), index));
                    ErrorCode::None
                };
                (index, code)
            })
            .collect();
        answers.push((topic.name.clone(), codes));
    }
    if !delete.is_empty() {
        if let Err(code) = committed(ctx).delete_offsets(&group, &delete).await {
            return OffsetDeleteResponse::default().with_error_code(code.code());
        }
    }
    let topics = answers
        .into_iter()
        .map(|(name, codes)| {
            OffsetDeleteResponseTopic::default()
                .with_name(name)
                .with_partitions(
                    codes
                        .into_iter()
                        .map(|(index, code)| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(index)
                                .with_error_code(code.code())
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}

/// Which partitions of `group` may lose their offsets, from its state and members.
fn allowed(ctx: &Context, group: &str) -> Allowed {
    if let Some(code) = ctx.not_coordinator(group) {
        return Allowed::Refused(code);
    }
    let described = ctx
        .groups
        .describe(group)
        .filter(|d| d.state != GroupState::Dead);
    let Some(d) = described else {
        return if committed(ctx).has_group(group) {
            Allowed::AllBut(HashSet::new())
        } else {
            Allowed::Refused(ErrorCode::GroupIdNotFound)
        };
    };
    if d.state == GroupState::Empty || d.members.is_empty() {
        if !committed(ctx).has_group(group) && d.protocol_type.is_empty() {
            // Nothing committed and nobody in it: nothing Kafka would call a group.
            return Allowed::Refused(ErrorCode::GroupIdNotFound);
        }
        return Allowed::AllBut(HashSet::new());
    }
    if d.protocol_type != CONSUMER {
        return Allowed::Refused(ErrorCode::NonEmptyGroup);
    }
    // A member whose subscription does not decode subscribes to nothing we can name, as
    // Kafka's `ConsumerProtocol.deserializeSubscription` failing leaves no topics.
    let topics = d
        .members
        .iter()
        .filter_map(|m| decode_subscription(&m.metadata).ok())
        .flat_map(|s| s.topics)
        .collect();
    Allowed::AllBut(topics)
}
