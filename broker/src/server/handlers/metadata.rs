//! Metadata (key 3), v0-12: the one broker, and topics with their partitions, auto-creating
//! requested topics when allowed.
//!
//! Versions: v7+ carries each partition's leader epoch (`crate::server::leader_epochs`: the
//! log's latest epoch here, the replicated metadata's in a cluster); v8 asks for authorized
//! operations (there is no authorization: left at Kafka's "not requested" value); v9+ is
//! flexible; v10+ carries topic ids (the cluster's, or the catalog's `id`; the nil id for a
//! topic created before ids existed); v12 may name topics by id alone (an id no topic has is
//! UNKNOWN_TOPIC_ID).

use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use uuid::Uuid;
use weir_protocol::error_code::ErrorCode;

use super::{Context, catalog_error_code, wire_str};
use crate::server::context::NODE_ID;
use crate::server::leader_epochs::log_leader_epoch;
use crate::topics::{CatalogError, Topic};

pub(crate) async fn handle(
    ctx: &Arc<Context>,
    request: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    // v0 asks for every topic with an empty list; v1+ with a null list.
    let mut unknown_ids = Vec::new();
    let requested: Option<Vec<String>> = match request.topics {
        None => None,
        Some(topics) if topics.is_empty() && version == 0 => None,
        Some(topics) => Some(
            topics
                .into_iter()
                .filter_map(|t| match t.name {
                    Some(name) => Some(name.0.to_string()),
                    // v12: a topic named by its id only.
                    None => {
                        let name = topic_name_of(ctx, t.topic_id);
                        if name.is_none() {
                            unknown_ids.push(unknown_id_topic(t.topic_id));
                        }
                        name
                    }
                })
                .collect(),
        ),
    };
    // Before v4 there is no flag: clients expect the broker's setting to decide.
    let may_create =
        ctx.config.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    if let Some(node) = &ctx.cluster {
        let mut response = super::cluster_metadata::handle(ctx, node, requested, may_create).await;
        response.topics.extend(unknown_ids);
        return response;
    }
    let mut topics: Vec<MetadataResponseTopic> = match requested {
        None => ctx.catalog.list().iter().map(|t| describe(t)).collect(),
        Some(names) => {
            let mut out = Vec::with_capacity(names.len());
            for name in names {
                out.push(match ctx.catalog.get(&name) {
                    Some(topic) => describe(&topic),
                    None if may_create => match auto_create(ctx, &name).await {
                        Ok(topic) => describe(&topic),
                        Err(err) => error_topic(&name, catalog_error_code(&err)),
                    },
                    None => error_topic(&name, ErrorCode::UnknownTopicOrPartition),
                });
            }
            out
        }
    };
    topics.extend(unknown_ids);
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(NODE_ID))
        .with_host(wire_str(ctx.advertised_host.clone()))
        .with_port(ctx.advertised_port);
    MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_cluster_id(Some(wire_str(ctx.cluster_id.clone())))
        .with_controller_id(BrokerId(NODE_ID))
        .with_topics(topics)
}

async fn auto_create(ctx: &Arc<Context>, name: &str) -> Result<Arc<Topic>, CatalogError> {
    let catalog = Arc::clone(&ctx.catalog);
    let (n, partitions) = (name.to_owned(), i64::from(ctx.config.default_partitions));
    let created = tokio::task::spawn_blocking(move || catalog.create(&n, partitions))
        .await
        .map_err(|join| CatalogError::Io {
            op: "create topic",
            path: name.into(),
            source: std::io::Error::other(join.to_string()),
        })?;
    match created {
        // Another request created it first.
        Err(CatalogError::AlreadyExists(_)) => ctx
            .catalog
            .get(name)
            .ok_or_else(|| CatalogError::UnknownTopic(name.to_owned())),
        other => other,
    }
}

/// The name of the topic whose id is `id` (the cluster's topic ids, or the catalog's).
fn topic_name_of(ctx: &Context, id: Uuid) -> Option<String> {
    if id.is_nil() {
        return None;
    }
    match ctx.metadata() {
        Some(state) => state
            .topics
            .iter()
            .find(|(_, t)| t.id == id)
            .map(|(name, _)| name.clone()),
        None => ctx
            .catalog
            .list()
            .iter()
            .find(|t| t.id() == Some(id))
            .map(|t| t.name().to_owned()),
    }
}

/// The answer for a topic asked for by an id no topic has.
fn unknown_id_topic(id: Uuid) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(None)
        .with_topic_id(id)
        .with_error_code(ErrorCode::UnknownTopicId.code())
}

fn describe(topic: &Topic) -> MetadataResponseTopic {
    let partitions = (0..topic.partition_count())
        .map(|p| {
            let epoch = topic.log(p).map_or(0, |log| log_leader_epoch(log));
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(NODE_ID))
                .with_leader_epoch(epoch)
                .with_replica_nodes(vec![BrokerId(NODE_ID)])
                .with_isr_nodes(vec![BrokerId(NODE_ID)])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(wire_str(topic.name()))))
        .with_topic_id(topic.id().unwrap_or_default())
        .with_partitions(partitions)
}

fn error_topic(name: &str, code: ErrorCode) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(wire_str(name))))
        .with_error_code(code.code())
}
