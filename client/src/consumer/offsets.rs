//! Offsets on the broker: finding the group coordinator, committing and reading committed
//! offsets, and looking up the earliest or latest offset for a reset.
//!
//! Plain request functions over [`Shared`]; they change no consumer state except the cached
//! coordinator, which they forget when the broker says it moved.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    FindCoordinatorRequest, GroupId, OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use weir_protocol::error_code::ErrorCode;

use super::config::OffsetReset;
use super::record::TopicPartition;
use super::state::{Generation, Shared};
use crate::error::{Error, Result};

pub(crate) fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// The group id, or the error for an operation that needs one.
pub(crate) fn group_id(shared: &Shared) -> Result<&str> {
    shared
        .config
        .group_id
        .as_deref()
        .ok_or_else(|| Error::InvalidArgument("committed offsets need a group id".to_owned()))
}

/// Whether `err` means the coordinator moved or is not ready (so: find it again).
pub(crate) fn coordinator_moved(code: Option<ErrorCode>) -> bool {
    matches!(
        code,
        Some(
            ErrorCode::NotCoordinator
                | ErrorCode::CoordinatorNotAvailable
                | ErrorCode::CoordinatorLoadInProgress
        )
    )
}

/// The coordinator's node id: cached, else FindCoordinator.
pub(crate) async fn coordinator(shared: &Shared) -> Result<i32> {
    if let Some(node) = shared.lock().coordinator {
        return Ok(node);
    }
    let group = group_id(shared)?;
    let response = shared
        .cluster
        .call_any_repeatable(
            FindCoordinatorRequest::default()
                .with_key(s(group))
                .with_key_type(0),
        )
        .await?;
    if let Some(err) = Error::from_code(
        response.error_code,
        response.error_message.as_deref(),
        || format!("FindCoordinator for group {group}"),
    ) {
        return Err(err);
    }
    let node = response.node_id.0;
    // The coordinator may be a broker the metadata cache has not seen yet.
    if !shared
        .cluster
        .brokers()
        .await
        .iter()
        .any(|(id, _)| *id == node)
    {
        shared.cluster.refresh(Some(&[])).await?;
    }
    shared.lock().coordinator = Some(node);
    Ok(node)
}

/// Whether `err` says the coordinator moved, is not ready, or could not be reached.
pub(crate) fn coordinator_lost(err: &Error) -> bool {
    err.coordinator_lost()
}

/// Forgets the coordinator when `err` says it moved or is unreachable.
pub(crate) fn forget_coordinator_on(shared: &Shared, err: &Error) {
    if coordinator_lost(err) {
        shared.lock().coordinator = None;
    }
}

/// Runs `attempt` until it succeeds, fails for another reason than a lost coordinator, or
/// the request timeout has passed; the coordinator is found again between attempts (so a
/// commit follows the group to its new coordinator after NOT_COORDINATOR). Only for
/// requests that may be repeated: a commit of the same offsets, an offset fetch.
async fn with_coordinator_retries<T, F, Fut>(shared: &Shared, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let deadline = tokio::time::Instant::now() + shared.config.client.request_timeout;
    loop {
        match attempt().await {
            Err(err)
                if coordinator_lost(&err)
                    && tokio::time::Instant::now() + shared.config.retry_backoff < deadline =>
            {
                tracing::debug!(error = %err, "the group coordinator moved or is unreachable; finding it again");
                forget_coordinator_on(shared, &err);
                tokio::time::sleep(shared.config.retry_backoff).await;
            }
            outcome => return outcome,
        }
    }
}

/// Commits `offsets` under `generation`, following the coordinator when it moves.
pub(crate) async fn commit(
    shared: &Shared,
    generation: &Generation,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> Result<()> {
    with_coordinator_retries(shared, || commit_once(shared, generation, offsets)).await
}

async fn commit_once(
    shared: &Shared,
    generation: &Generation,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> Result<()> {
    let group = group_id(shared)?;
    if offsets.is_empty() {
        return Ok(());
    }
    let node = coordinator(shared).await?;
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for (tp, &offset) in offsets {
        topics.entry(&tp.topic).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition)
                .with_committed_offset(offset),
        );
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation.id)
        .with_member_id(s(&generation.member_id))
        .with_topics(
            topics
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(s(topic)))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let response = match shared.cluster.call(node, request).await {
        Ok(r) => r,
        Err(err) => {
            forget_coordinator_on(shared, &err);
            return Err(err);
        }
    };
    for topic in &response.topics {
        for p in &topic.partitions {
            if let Some(err) = Error::from_code(p.error_code, None, || {
                format!(
                    "committing {}-{} for group {group}",
                    topic.name.0.as_str(),
                    p.partition_index
                )
            }) {
                forget_coordinator_on(shared, &err);
                return Err(err);
            }
        }
    }
    let mut state = shared.lock();
    for (tp, &offset) in offsets {
        if let Some(p) = state.partitions.get_mut(tp) {
            p.committed = Some(offset);
        }
    }
    Ok(())
}

/// The group's committed offsets for `partitions` (partitions without one are left out),
/// following the coordinator when it moves.
pub(crate) async fn committed(
    shared: &Shared,
    partitions: &[TopicPartition],
) -> Result<HashMap<TopicPartition, i64>> {
    with_coordinator_retries(shared, || committed_once(shared, partitions)).await
}

async fn committed_once(
    shared: &Shared,
    partitions: &[TopicPartition],
) -> Result<HashMap<TopicPartition, i64>> {
    let group = group_id(shared)?;
    let node = coordinator(shared).await?;
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        topics.entry(&tp.topic).or_default().push(tp.partition);
    }
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(Some(
            topics
                .into_iter()
                .map(|(topic, parts)| {
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName(s(topic)))
                        .with_partition_indexes(parts)
                })
                .collect(),
        ));
    let response = match shared.cluster.call(node, request).await {
        Ok(r) => r,
        Err(err) => {
            forget_coordinator_on(shared, &err);
            return Err(err);
        }
    };
    if let Some(err) = Error::from_code(response.error_code, None, || {
        format!("fetching committed offsets of group {group}")
    }) {
        forget_coordinator_on(shared, &err);
        return Err(err);
    }
    let mut out = HashMap::new();
    for topic in response.topics {
        for p in topic.partitions {
            let tp = TopicPartition::new(topic.name.0.as_str(), p.partition_index);
            if let Some(err) = Error::from_code(p.error_code, None, || {
                format!("fetching the committed offset of {tp} in group {group}")
            }) {
                return Err(err);
            }
            if p.committed_offset >= 0 {
                out.insert(tp, p.committed_offset);
            }
        }
    }
    Ok(out)
}

/// The earliest or latest offset of each partition, asked of each partition's leader. Each
/// partition gets its own outcome, so one without a leader (its broker down) does not hold
/// back the others; metadata is invalidated when an outcome says it is stale.
pub(crate) async fn reset_offsets(
    shared: &Shared,
    partitions: &[(TopicPartition, OffsetReset)],
) -> Result<HashMap<TopicPartition, Result<i64>>> {
    let mut wanted = Vec::with_capacity(partitions.len());
    for (tp, reset) in partitions {
        let timestamp = match reset {
            OffsetReset::Earliest => -2,
            OffsetReset::Latest => -1,
            OffsetReset::Fail => {
                return Err(Error::InvalidArgument(format!(
                    "no committed offset for {tp} and auto.offset.reset is none; seek it"
                )));
            }
        };
        wanted.push((tp.topic.clone(), tp.partition, timestamp));
    }
    Ok(shared
        .cluster
        .list_offsets(&wanted)
        .await?
        .into_iter()
        .map(|((topic, partition), outcome)| {
            (TopicPartition::new(topic.as_str(), partition), outcome)
        })
        .collect())
}
