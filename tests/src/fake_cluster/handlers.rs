//! The fake brokers' answers, one function per API, over the shared world (see `mod.rs`).
//! Each takes the lock, decides, and lets go before anything is awaited.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use weir_protocol::api::{ApiKey, VersionRange, supported_range};
use weir_protocol::error_code::ErrorCode;
use weir_protocol::message::Request;

use super::{CLUSTER_ID, Partition, Shared, StoredBatch, World, index, lock};

/// The APIs a fake broker serves, at Weir's versions.
const SERVED: &[ApiKey] = &[
    ApiKey::ApiVersions,
    ApiKey::Metadata,
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::FindCoordinator,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::InitProducerId,
    ApiKey::DescribeCluster,
    ApiKey::CreateTopics,
    ApiKey::DescribeGroups,
];

/// Longest a fetch with nothing to return is held (bounded well below any test's timeout).
const FETCH_WAIT_MAX: Duration = Duration::from_millis(100);

/// Offsets of the fields of a v2 record batch header that the fake reads or writes.
const BATCH_LENGTH_AT: usize = 8;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BATCH_HEADER_LEN: usize = 61;

pub(super) fn served(key: ApiKey) -> Option<VersionRange> {
    SERVED
        .contains(&key)
        .then(|| supported_range(key))
        .flatten()
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// The answer to `request` at broker `node` (`None`: the request gets none).
pub(super) async fn answer(node: i32, world: &Shared, request: Request) -> Option<ResponseKind> {
    Some(match request.body {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions()),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata(&mut lock(world), &r)),
        RequestKind::Produce(r) => {
            let response = produce(node, &mut lock(world), &r);
            if r.acks == 0 {
                return None;
            }
            ResponseKind::Produce(response)
        }
        RequestKind::Fetch(r) => {
            let mut response = fetch(node, &lock(world), &r);
            if !has_records(&response) && r.max_wait_ms > 0 {
                let wait = Duration::from_millis(u64::try_from(r.max_wait_ms).unwrap_or(0));
                tokio::time::sleep(wait.min(FETCH_WAIT_MAX)).await;
                response = fetch(node, &lock(world), &r);
            }
            ResponseKind::Fetch(response)
        }
        RequestKind::ListOffsets(r) => {
            ResponseKind::ListOffsets(list_offsets(node, &lock(world), &r))
        }
        RequestKind::FindCoordinator(_) => {
            ResponseKind::FindCoordinator(find_coordinator(&lock(world)))
        }
        RequestKind::OffsetCommit(r) => {
            ResponseKind::OffsetCommit(offset_commit(node, &mut lock(world), &r))
        }
        RequestKind::OffsetFetch(r) => {
            ResponseKind::OffsetFetch(offset_fetch(node, &lock(world), &r))
        }
        RequestKind::InitProducerId(_) => {
            let mut world = lock(world);
            world.next_producer_id += 1;
            ResponseKind::InitProducerId(
                InitProducerIdResponse::default()
                    .with_producer_id(ProducerId(world.next_producer_id))
                    .with_producer_epoch(0),
            )
        }
        RequestKind::CreateTopics(r) => {
            ResponseKind::CreateTopics(create_topics(&mut lock(world), &r))
        }
        RequestKind::DescribeGroups(r) => {
            ResponseKind::DescribeGroups(describe_groups(node, &lock(world), &r))
        }
        RequestKind::DescribeCluster(_) => {
            ResponseKind::DescribeCluster(describe_cluster(&lock(world)))
        }
        // Not reached: `served` lets no other API through the decoder.
        _ => return None,
    })
}

fn api_versions() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        SERVED
            .iter()
            .filter_map(|&key| {
                let range = supported_range(key)?;
                Some(
                    ApiVersion::default()
                        .with_api_key(key.code())
                        .with_min_version(range.min)
                        .with_max_version(range.max),
                )
            })
            .collect(),
    )
}

fn live_brokers(world: &World) -> impl Iterator<Item = (i32, std::net::SocketAddr)> + '_ {
    world
        .brokers
        .iter()
        .filter(|(_, (_, up))| *up)
        .map(|(id, (addr, _))| (*id, *addr))
}

fn metadata(world: &mut World, request: &MetadataRequest) -> MetadataResponse {
    let unseen: Vec<String> = world.unseen.keys().cloned().collect();
    for name in &unseen {
        if let Some(left) = world.unseen.get_mut(name) {
            *left = left.saturating_sub(1);
        }
    }
    world.unseen.retain(|_, left| *left > 0);
    let world = &*world;
    let names: Vec<String> = match &request.topics {
        None => world
            .topics
            .keys()
            .filter(|n| !unseen.contains(n))
            .cloned()
            .collect(),
        Some(topics) => topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect(),
    };
    let topics = names
        .into_iter()
        .map(|name| {
            let topic = MetadataResponseTopic::default().with_name(Some(TopicName(s(&name))));
            match world.topics.get(&name).filter(|_| !unseen.contains(&name)) {
                None => topic.with_error_code(ErrorCode::UnknownTopicOrPartition.code()),
                Some(partitions) => topic.with_partitions(
                    (0..)
                        .zip(partitions)
                        .map(|(i, p)| partition_metadata(world, i, p))
                        .collect(),
                ),
            }
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(
            live_brokers(world)
                .map(|(id, addr)| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(id))
                        .with_host(s(&addr.ip().to_string()))
                        .with_port(i32::from(addr.port()))
                })
                .collect(),
        )
        .with_cluster_id(Some(s(CLUSTER_ID)))
        .with_controller_id(BrokerId(world.controller()))
        .with_topics(topics)
}

fn partition_metadata(world: &World, index: i32, p: &Partition) -> MetadataResponsePartition {
    let ids = |f: &dyn Fn(i32) -> bool| -> Vec<BrokerId> {
        p.replicas
            .iter()
            .copied()
            .filter(|&r| f(r))
            .map(BrokerId)
            .collect()
    };
    let led = world.up(p.leader);
    MetadataResponsePartition::default()
        .with_partition_index(index)
        .with_error_code(if led {
            0
        } else {
            ErrorCode::LeaderNotAvailable.code()
        })
        .with_leader_id(BrokerId(if led { p.leader } else { -1 }))
        .with_leader_epoch(p.leader_epoch)
        .with_replica_nodes(ids(&|_| true))
        .with_isr_nodes(ids(&|r| world.up(r)))
        .with_offline_replicas(ids(&|r| !world.up(r)))
}

/// The partition if `node` leads it, else the error to answer.
fn led<'w>(world: &'w World, node: i32, topic: &str, partition: i32) -> Result<&'w Partition, i16> {
    let p = world
        .topics
        .get(topic)
        .and_then(|ps| ps.get(index(partition)))
        .ok_or(ErrorCode::UnknownTopicOrPartition.code())?;
    if p.leader == node {
        Ok(p)
    } else {
        Err(ErrorCode::NotLeaderOrFollower.code())
    }
}

fn produce(node: i32, world: &mut World, request: &ProduceRequest) -> ProduceResponse {
    let mut responses = Vec::new();
    for topic in &request.topic_data {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::new();
        for data in &topic.partition_data {
            let mut answer = PartitionProduceResponse::default()
                .with_index(data.index)
                .with_log_append_time_ms(-1);
            match led(world, node, &name, data.index) {
                Err(code) => answer = answer.with_error_code(code).with_base_offset(-1),
                Ok(_) => {
                    let records = data.records.clone().unwrap_or_default();
                    let p = &mut world.topics.get_mut(&name).expect("led")[index(data.index)];
                    match append(node, p, &records) {
                        Some(base) => answer = answer.with_base_offset(base),
                        None => {
                            answer = answer
                                .with_error_code(ErrorCode::CorruptMessage.code())
                                .with_base_offset(-1);
                        }
                    }
                }
            }
            partitions.push(answer);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(TopicName(s(&name)))
                .with_partition_responses(partitions),
        );
    }
    ProduceResponse::default().with_responses(responses)
}

/// Stores each v2 batch of `records` at the partition's next offset; the first batch's base
/// offset, or `None` when the bytes are not whole batches.
fn append(node: i32, p: &mut Partition, records: &Bytes) -> Option<i64> {
    let mut batches = Vec::new();
    let mut rest = &records[..];
    let mut next = p.next_offset;
    while !rest.is_empty() {
        let header = rest.get(..BATCH_HEADER_LEN)?;
        let length = i32::from_be_bytes(
            header[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4]
                .try_into()
                .ok()?,
        );
        let total = usize::try_from(length).ok()?.checked_add(12)?;
        let delta = i32::from_be_bytes(
            header[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
                .try_into()
                .ok()?,
        );
        let mut bytes = BytesMut::from(rest.get(..total)?);
        bytes[..8].copy_from_slice(&next.to_be_bytes());
        let count = i64::from(delta) + 1;
        batches.push(StoredBatch {
            node,
            base_offset: next,
            records: count,
            bytes: bytes.freeze(),
        });
        next += count;
        rest = &rest[total..];
    }
    let base = p.next_offset;
    p.batches.extend(batches);
    p.next_offset = next;
    Some(base)
}

fn has_records(response: &FetchResponse) -> bool {
    response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .any(|p| p.records.as_ref().is_some_and(|r| !r.is_empty()))
}

fn fetch(node: i32, world: &World, request: &FetchRequest) -> FetchResponse {
    let request_max = usize::try_from(request.max_bytes).unwrap_or(0);
    // usize::MAX until a partition has returned data.
    let mut budget = usize::MAX;
    let responses = request
        .topics
        .iter()
        .map(|topic| {
            let name = topic.topic.0.to_string();
            let partitions = topic
                .partitions
                .iter()
                .map(|asked| {
                    let answer = PartitionData::default()
                        .with_partition_index(asked.partition)
                        .with_preferred_read_replica(BrokerId(-1))
                        .with_aborted_transactions(Some(Vec::new()));
                    match led(world, node, &name, asked.partition) {
                        Err(code) => answer.with_error_code(code).with_high_watermark(-1),
                        Ok(p) if asked.fetch_offset > p.next_offset => answer
                            .with_error_code(ErrorCode::OffsetOutOfRange.code())
                            .with_high_watermark(p.next_offset),
                        Ok(p) => {
                            let limit = usize::try_from(asked.partition_max_bytes).unwrap_or(0);
                            // KIP-74: only the first partition with data may pass the
                            // request's limit (by its first batch); the later ones stop at it.
                            let first = budget == usize::MAX;
                            let left = if first { request_max } else { budget };
                            let records = read(p, asked.fetch_offset, limit.min(left), first);
                            if !records.is_empty() {
                                budget = left.saturating_sub(records.len());
                            }
                            answer
                                .with_high_watermark(p.next_offset)
                                .with_last_stable_offset(p.next_offset)
                                .with_records(Some(records))
                        }
                    }
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(TopicName(s(&name)))
                .with_partitions(partitions)
        })
        .collect();
    FetchResponse::default().with_responses(responses)
}

/// The batches holding offsets from `offset` on, at most `limit` bytes; the first one even
/// past the limit when `may_exceed` (the request's first partition with data).
fn read(p: &Partition, offset: i64, limit: usize, may_exceed: bool) -> Bytes {
    let mut out = BytesMut::new();
    for batch in p
        .batches
        .iter()
        .filter(|b| b.base_offset + b.records > offset)
    {
        let first_may_pass = out.is_empty() && may_exceed;
        if !first_may_pass && out.len() + batch.bytes.len() > limit {
            break;
        }
        out.extend_from_slice(&batch.bytes);
    }
    out.freeze()
}

fn list_offsets(node: i32, world: &World, request: &ListOffsetsRequest) -> ListOffsetsResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(
                    topic
                        .partitions
                        .iter()
                        .map(|asked| {
                            let answer = ListOffsetsPartitionResponse::default()
                                .with_partition_index(asked.partition_index)
                                .with_timestamp(-1);
                            match led(world, node, &name, asked.partition_index) {
                                Err(code) => answer.with_error_code(code).with_offset(-1),
                                Ok(_) if asked.timestamp == -2 => answer.with_offset(0),
                                Ok(p) => answer.with_offset(p.next_offset),
                            }
                        })
                        .collect(),
                )
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

fn find_coordinator(world: &World) -> FindCoordinatorResponse {
    let node = world.coordinator;
    match world.brokers.get(&node) {
        Some((addr, true)) => FindCoordinatorResponse::default()
            .with_node_id(BrokerId(node))
            .with_host(s(&addr.ip().to_string()))
            .with_port(i32::from(addr.port())),
        _ => FindCoordinatorResponse::default()
            .with_error_code(ErrorCode::CoordinatorNotAvailable.code())
            .with_node_id(BrokerId(-1))
            .with_host(s(""))
            .with_port(-1),
    }
}

fn offset_commit(
    node: i32,
    world: &mut World,
    request: &OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group = request.group_id.0.to_string();
    let code = if world.coordinator == node {
        0
    } else {
        ErrorCode::NotCoordinator.code()
    };
    let mut topics = Vec::new();
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::new();
        for p in &topic.partitions {
            if code == 0 {
                world.committed.insert(
                    (group.clone(), name.clone(), p.partition_index),
                    p.committed_offset,
                );
            }
            partitions.push(
                OffsetCommitResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code),
            );
        }
        topics.push(
            OffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions),
        );
    }
    OffsetCommitResponse::default().with_topics(topics)
}

fn offset_fetch(node: i32, world: &World, request: &OffsetFetchRequest) -> OffsetFetchResponse {
    if world.coordinator != node {
        return OffsetFetchResponse::default().with_error_code(ErrorCode::NotCoordinator.code());
    }
    let group = request.group_id.0.to_string();
    // Every partition the group committed when no topic is named.
    let asked: Vec<(String, Vec<i32>)> = match &request.topics {
        Some(topics) => topics
            .iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect(),
        None => {
            let mut all: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for (g, topic, partition) in world.committed.keys() {
                if *g == group {
                    all.entry(topic.clone()).or_default().push(*partition);
                }
            }
            all.into_iter().collect()
        }
    };
    let topics = asked
        .into_iter()
        .map(|(name, partitions)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(s(&name)))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|&partition| {
                            let key = (group.clone(), name.clone(), partition);
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(partition)
                                .with_committed_offset(
                                    world.committed.get(&key).copied().unwrap_or(-1),
                                )
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}

fn create_topics(world: &mut World, request: &CreateTopicsRequest) -> CreateTopicsResponse {
    let live: Vec<i32> = live_brokers(world).map(|(id, _)| id).collect();
    let mut results = Vec::new();
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let result = CreatableTopicResult::default()
            .with_name(topic.name.clone())
            .with_num_partitions(topic.num_partitions)
            .with_replication_factor(1);
        if world.topics.contains_key(&name) {
            results.push(result.with_error_code(ErrorCode::TopicAlreadyExists.code()));
            continue;
        }
        let count = usize::try_from(topic.num_partitions.max(1)).unwrap_or(1);
        let partitions = (0..count)
            .map(|i| {
                let leader = live[i % live.len().max(1)];
                Partition {
                    leader,
                    replicas: vec![leader],
                    ..Partition::default()
                }
            })
            .collect();
        if !request.validate_only {
            world.topics.insert(name.clone(), partitions);
            if world.create_lag > 0 {
                world.unseen.insert(name, world.create_lag);
            }
        }
        results.push(result);
    }
    CreateTopicsResponse::default().with_topics(results)
}

fn describe_groups(
    node: i32,
    world: &World,
    request: &DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let groups = request
        .groups
        .iter()
        .map(|group| {
            let described = DescribedGroup::default().with_group_id(group.clone());
            if world.coordinator != node {
                return described.with_error_code(ErrorCode::NotCoordinator.code());
            }
            // No membership here: a group is known by its committed offsets only.
            let known = world.committed.keys().any(|(g, _, _)| *g == *group.0);
            described
                .with_group_state(s(if known { "Empty" } else { "Dead" }))
                .with_protocol_type(s(if known { "consumer" } else { "" }))
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

fn describe_cluster(world: &World) -> DescribeClusterResponse {
    DescribeClusterResponse::default()
        .with_cluster_id(s(CLUSTER_ID))
        .with_controller_id(BrokerId(world.controller()))
        .with_brokers(
            live_brokers(world)
                .map(|(id, addr)| {
                    DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(id))
                        .with_host(s(&addr.ip().to_string()))
                        .with_port(i32::from(addr.port()))
                })
                .collect(),
        )
}
