//! Metadata (key 3), v0-6: the one broker, and topics with their partitions, auto-creating
//! requested topics when allowed.

use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use weir_protocol::error_code::ErrorCode;

use super::{Context, catalog_error_code, wire_str};
use crate::server::context::NODE_ID;
use crate::topics::{CatalogError, Topic};

pub(crate) async fn handle(
    ctx: &Arc<Context>,
    request: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    // v0 asks for every topic with an empty list; v1+ with a null list.
    let requested: Option<Vec<String>> = match request.topics {
        None => None,
        Some(topics) if topics.is_empty() && version == 0 => None,
        Some(topics) => Some(
            topics
                .into_iter()
                .filter_map(|t| t.name.map(|n| n.0.to_string()))
                .collect(),
        ),
    };
    // Before v4 there is no flag: clients expect the broker's setting to decide.
    let may_create =
        ctx.config.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    if let Some(node) = &ctx.cluster {
        return super::cluster_metadata::handle(ctx, node, requested, may_create).await;
    }
    let topics = match requested {
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

fn describe(topic: &Topic) -> MetadataResponseTopic {
    let partitions = (0..topic.partition_count())
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(NODE_ID))
                .with_leader_epoch(0)
                .with_replica_nodes(vec![BrokerId(NODE_ID)])
                .with_isr_nodes(vec![BrokerId(NODE_ID)])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(wire_str(topic.name()))))
        .with_partitions(partitions)
}

fn error_topic(name: &str, code: ErrorCode) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(wire_str(name))))
        .with_error_code(code.code())
}
