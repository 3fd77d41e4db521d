//! Metadata (key 3) in a cluster: every live broker, this broker as the controller clients
//! send admin requests to (it forwards them to the metadata leader, as KRaft brokers do), and
//! each partition's leader, replicas and in-sync replicas from the replicated metadata,
//! answered the same by every broker. A partition whose broker is fenced has no leader
//! (LEADER_NOT_AVAILABLE, leader -1) while the rest keep theirs; its replicas on fenced
//! brokers are listed offline (v5+). Leader epochs (v7+) and topic ids (v10+) come from the
//! replicated metadata.

use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataResponse, TopicName};
use weir_protocol::error_code::ErrorCode;

use super::{Context, wire_str};
use crate::cluster::state::{MetadataState, TopicRecord};
use crate::cluster::{ClusterNode, NodeId};
use crate::groups::offsets::replicated::OFFSETS_TOPIC;

fn broker_id(id: NodeId) -> BrokerId {
    BrokerId(i32::try_from(id).unwrap_or(-1))
}

pub(crate) async fn handle(
    ctx: &Arc<Context>,
    node: &Arc<ClusterNode>,
    requested: Option<Vec<String>>,
    may_create: bool,
) -> MetadataResponse {
    let topics = match requested {
        None => {
            let state = node.state();
            state
                .topics
                .iter()
                .map(|(name, t)| describe(node, &state, name, t))
                .collect()
        }
        Some(names) => {
            let mut out = Vec::with_capacity(names.len());
            for name in names {
                let state = node.state();
                if let Some(topic) = state.topics.get(&name) {
                    out.push(describe(node, &state, &name, topic));
                    continue;
                }
                // The cluster creates its internal topic itself, with its own settings.
                if !may_create || name == OFFSETS_TOPIC {
                    out.push(error_topic(&name, ErrorCode::UnknownTopicOrPartition));
                    continue;
                }
                let partitions = i64::from(ctx.config.default_partitions);
                let replicas = super::cluster_admin::default_replication_factor(ctx, node);
                let created = super::cluster_admin::create_topic(
                    ctx,
                    node,
                    &name,
                    partitions,
                    super::cluster_admin::Spread {
                        replicas,
                        manual: None,
                    },
                    &[],
                    false,
                )
                .await;
                let state = node.state();
                out.push(match (created, state.topics.get(&name)) {
                    // Created now, or by another request first.
                    (_, Some(topic)) => describe(node, &state, &name, topic),
                    (Err((code, _)), None) => error_topic(&name, code),
                    (Ok(()), None) => error_topic(&name, ErrorCode::LeaderNotAvailable),
                });
            }
            out
        }
    };
    let state = node.state();
    let brokers = state
        .live_brokers()
        .map(|(id, b)| {
            MetadataResponseBroker::default()
                .with_node_id(broker_id(id))
                .with_host(wire_str(b.host.clone()))
                .with_port(i32::from(b.port))
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(state.cluster_id.clone().map(wire_str))
        // As KRaft brokers answer clients: the controller named is a live broker (this one),
        // which forwards admin requests to the metadata leader. Naming the leader itself
        // sends every admin client to a dead node for as long as its metadata is stale after
        // the leader fails (librdkafka waited 15 s per request); DescribeCluster names the
        // metadata leader for operators.
        .with_controller_id(broker_id(node.id()))
        .with_topics(topics)
}

fn describe(
    node: &ClusterNode,
    state: &MetadataState,
    name: &str,
    topic: &TopicRecord,
) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let index = i32::try_from(index).unwrap_or(i32::MAX);
            let (leader, epoch) = node.replicas().leadership(state, topic, index, p);
            let replicas: Vec<BrokerId> = p.replicas.iter().map(|r| broker_id(*r)).collect();
            // One replica: in sync while its broker is not fenced. Replicated: the set its
            // leader last reported, of brokers not fenced.
            let isr: Vec<BrokerId> = p
                .in_sync()
                .iter()
                .filter(|r| state.brokers.get(r).is_some_and(|b| !b.fenced))
                .map(|r| broker_id(*r))
                .collect();
            // As KRaft brokers answer: a replica on a fenced (or unregistered) broker is
            // offline (Metadata v5+).
            let offline: Vec<BrokerId> = p
                .replicas
                .iter()
                .filter(|r| state.brokers.get(r).is_none_or(|b| b.fenced))
                .map(|r| broker_id(*r))
                .collect();
            let partition = MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_epoch(epoch)
                .with_replica_nodes(replicas)
                .with_isr_nodes(isr)
                .with_offline_replicas(offline);
            match leader {
                Some(id) => partition.with_leader_id(broker_id(id)),
                None => partition
                    .with_leader_id(BrokerId(-1))
                    .with_error_code(ErrorCode::LeaderNotAvailable.code()),
            }
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(wire_str(name))))
        .with_topic_id(topic.id)
        .with_is_internal(name == OFFSETS_TOPIC)
        .with_partitions(partitions)
}

fn error_topic(name: &str, code: ErrorCode) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(wire_str(name))))
        .with_error_code(code.code())
}
