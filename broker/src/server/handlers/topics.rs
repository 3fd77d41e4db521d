//! CreateTopics (key 19), v2-4 (with config overrides, checked before anything is made), DeleteTopics (key 20), v1-3, and CreatePartitions (key 37),
//! v0-1.
//!
//! One CreateTopics request creates at most [`MAX_PARTITIONS_PER_REQUEST`] partitions in all:
//! the topics that would take it past that are refused with INVALID_PARTITIONS (the ones
//! before are created), so one request cannot tie up the catalog, and the disk, for long.
//! CreatePartitions shares that limit, counted in partitions added.
//!
//! CreatePartitions only grows a topic, as Kafka does: a total at or below the current count
//! is INVALID_PARTITIONS. A topic named twice in one request is refused (INVALID_REQUEST) at
//! every mention and not changed. A manual assignment must give one replica list per new
//! partition, each naming only this broker; anything else is INVALID_REPLICA_ASSIGNMENT.

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsAssignment;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse,
};
use weir_protocol::error_code::ErrorCode;

use super::{Context, catalog_error_code, wire_str};
use crate::groups::offsets::replicated::OFFSETS_TOPIC;
use crate::server::context::NODE_ID;
use crate::topics::{CatalogError, MAX_PARTITIONS};

/// Most partitions one CreateTopics request may create, across its topics: as many as one
/// topic may have.
pub(crate) const MAX_PARTITIONS_PER_REQUEST: u32 = MAX_PARTITIONS;

#[allow(
    clippy::too_many_lines,
    reason = "each topic is checked in request order against the partitions created so far; the refusals and their order are the protocol's"
)]
pub(crate) async fn create(
    ctx: &Arc<Context>,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    // Partitions this request has created (or, with validate_only, would have).
    let mut partitions_so_far: u32 = 0;
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let result = CreatableTopicResult::default().with_name(topic.name.clone());
        let partitions = match manual_partitions(ctx, &topic) {
            Ok(Some(assigned)) => assigned,
            Ok(None) if topic.num_partitions == -1 => i64::from(ctx.config.default_partitions),
            Ok(None) => i64::from(topic.num_partitions),
            Err((code, message)) => {
                results.push(
                    result
                        .with_error_code(code.code())
                        .with_error_message(Some(wire_str(message))),
                );
                continue;
            }
        };
        // One broker: a replication factor other than 1 (or -1, "broker default") cannot be
        // met. A cluster takes 1 to 5 (its default for -1), up to its live brokers (checked
        // when the partitions are placed).
        let max = if ctx.cluster.is_some() {
            super::cluster_admin::MAX_REPLICATION_FACTOR
        } else {
            1
        };
        let valid = topic.replication_factor == -1
            || usize::try_from(topic.replication_factor).is_ok_and(|rf| (1..=max).contains(&rf));
        if !valid {
            let why = if ctx.cluster.is_some() {
                format!("it must be between 1 and {max}")
            } else {
                "it is larger than the 1 available broker".to_owned()
            };
            results.push(
                result
                    .with_error_code(ErrorCode::InvalidReplicationFactor.code())
                    .with_error_message(Some(wire_str(format!(
                        "replication factor {}: {why}",
                        topic.replication_factor
                    )))),
            );
            continue;
        }
        // Checked by the catalog with the rest (INVALID_CONFIG names the key and the range).
        let configs: Vec<(String, Option<String>)> = topic
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    c.value.as_ref().map(ToString::to_string),
                )
            })
            .collect();
        // A count out of range is the catalog's to refuse; one in range must also fit in
        // what is left of this request's budget.
        let total = u32::try_from(partitions)
            .ok()
            .filter(|&n| n <= MAX_PARTITIONS)
            .map(|n| partitions_so_far.saturating_add(n));
        if total.is_some_and(|total| total > MAX_PARTITIONS_PER_REQUEST) {
            results.push(
                result
                    .with_error_code(ErrorCode::InvalidPartitions.code())
                    .with_error_message(Some(wire_str(format!(
                        "this request already creates {partitions_so_far} partitions; \
                         {partitions} more would pass the limit of \
                         {MAX_PARTITIONS_PER_REQUEST} per request"
                    )))),
            );
            continue;
        }
        let outcome = if ctx.cluster.is_some() && name == OFFSETS_TOPIC {
            Err((
                ErrorCode::InvalidRequest,
                format!("{OFFSETS_TOPIC} is an internal topic: the cluster creates it"),
            ))
        } else if let Some(node) = &ctx.cluster {
            let manual = (!topic.assignments.is_empty()).then(|| {
                topic
                    .assignments
                    .iter()
                    .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                    .collect()
            });
            let replicas = usize::try_from(topic.replication_factor)
                .unwrap_or_else(|_| super::cluster_admin::default_replication_factor(ctx, node));
            super::cluster_admin::create_topic(
                ctx,
                node,
                &name,
                partitions,
                super::cluster_admin::Spread { replicas, manual },
                &configs,
                request.validate_only,
            )
            .await
        } else if request.validate_only {
            ctx.catalog
                .check_create_with(&name, partitions, &configs)
                .map(drop)
                .map_err(|err| (catalog_error_code(&err), err.to_string()))
        } else {
            let catalog = Arc::clone(&ctx.catalog);
            let n = name.clone();
            let wanted = configs.clone();
            let create = move || catalog.create_with(&n, partitions, &wanted);
            match tokio::task::spawn_blocking(create).await {
                Ok(created) => created.map(drop),
                Err(join) => Err(CatalogError::Io {
                    op: "create topic",
                    path: name.clone().into(),
                    source: std::io::Error::other(join.to_string()),
                }),
            }
            .map_err(|err| (catalog_error_code(&err), err.to_string()))
        };
        if let (Ok(()), Some(total)) = (&outcome, total) {
            partitions_so_far = total;
        }
        results.push(match outcome {
            Ok(()) => result
                .with_num_partitions(i32::try_from(partitions).unwrap_or(i32::MAX))
                .with_replication_factor(1)
                .with_configs(Some(created_configs(ctx, &name, &configs))),
            Err((code, message)) => result
                .with_error_code(code.code())
                .with_error_message(Some(wire_str(message))),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

pub(crate) async fn delete(
    ctx: &Arc<Context>,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let mut names: Vec<String> = request
        .topic_names
        .iter()
        .map(|n| n.0.to_string())
        .collect();
    names.extend(
        request
            .topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())),
    );
    let mut results = Vec::with_capacity(names.len());
    for name in names {
        let outcome = if ctx.cluster.is_some() && name == OFFSETS_TOPIC {
            Err((
                ErrorCode::InvalidRequest,
                format!("{OFFSETS_TOPIC} is an internal topic: it holds the committed offsets"),
            ))
        } else if let Some(node) = &ctx.cluster {
            super::cluster_admin::delete_topic(node, &name).await
        } else {
            let catalog = Arc::clone(&ctx.catalog);
            let n = name.clone();
            match tokio::task::spawn_blocking(move || catalog.delete(&n)).await {
                Ok(outcome) => outcome,
                Err(join) => Err(CatalogError::Io {
                    op: "delete topic",
                    path: name.clone().into(),
                    source: std::io::Error::other(join.to_string()),
                }),
            }
            .map_err(|err| (catalog_error_code(&err), err.to_string()))
        };
        if outcome.is_ok() {
            // A topic created again later must not inherit the old one's committed offsets.
            let forgotten = match ctx.offsets.delete_topic(&name) {
                Ok(ticket) => ctx.offsets.wait_durable(ticket).await,
                Err(err) => Err(err),
            };
            if let Err(err) = forgotten {
                tracing::error!(topic = %name, error = %err, "cannot delete the topic's committed offsets");
            }
        }
        let result = DeletableTopicResult::default()
            .with_name(Some(kafka_protocol::messages::TopicName(wire_str(name))));
        results.push(match outcome {
            Ok(()) => result,
            Err((code, message)) => result
                .with_error_code(code.code())
                .with_error_message(Some(wire_str(message))),
        });
    }
    DeleteTopicsResponse::default().with_responses(results)
}

#[allow(
    clippy::too_many_lines,
    reason = "each topic is checked in request order against the partitions added so far, then made locally or through the cluster; the refusals and their order are the protocol's"
)]
pub(crate) async fn create_partitions(
    ctx: &Arc<Context>,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut mentions: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for topic in &request.topics {
        *mentions.entry(&*topic.name.0).or_default() += 1;
    }
    let mut results = Vec::with_capacity(request.topics.len());
    // Partitions this request has added (or, with validate_only, would have).
    let mut added_so_far: u32 = 0;
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        let refuse = |code: ErrorCode, message: String| {
            result
                .clone()
                .with_error_code(code.code())
                .with_error_message(Some(wire_str(message)))
        };
        if mentions.get(name.as_str()).copied().unwrap_or(0) > 1 {
            results.push(refuse(
                ErrorCode::InvalidRequest,
                format!("topic {name} appears more than once in the request"),
            ));
            continue;
        }
        let total = i64::from(topic.count);
        let added = match ctx.catalog.check_add_partitions(&name, total) {
            Ok(added) => added,
            Err(err) => {
                results.push(refuse(catalog_error_code(&err), err.to_string()));
                continue;
            }
        };
        if let Some(assignments) = &topic.assignments
            && ctx.cluster.is_none()
            && let Err(reason) = check_assignments(assignments, added)
        {
            results.push(refuse(ErrorCode::InvalidReplicaAssignment, reason));
            continue;
        }
        let so_far = added_so_far.saturating_add(added);
        if so_far > MAX_PARTITIONS_PER_REQUEST {
            results.push(refuse(
                ErrorCode::InvalidPartitions,
                format!(
                    "this request already adds {added_so_far} partitions; {added} more would \
                     pass the limit of {MAX_PARTITIONS_PER_REQUEST} per request"
                ),
            ));
            continue;
        }
        let outcome = if let Some(node) = &ctx.cluster {
            match super::cluster_admin::add_partitions(
                node,
                &name,
                added,
                topic.assignments.as_deref(),
                request.validate_only,
            )
            .await
            {
                Ok(()) => Ok(added),
                Err((code, message)) => {
                    results.push(refuse(code, message));
                    continue;
                }
            }
        } else if request.validate_only {
            Ok(added)
        } else {
            let catalog = Arc::clone(&ctx.catalog);
            let n = name.clone();
            match tokio::task::spawn_blocking(move || catalog.add_partitions(&n, total)).await {
                Ok(outcome) => outcome,
                Err(join) => Err(CatalogError::Io {
                    op: "add partitions to",
                    path: name.clone().into(),
                    source: std::io::Error::other(join.to_string()),
                }),
            }
        };
        results.push(match outcome {
            Ok(added) => {
                added_so_far = added_so_far.saturating_add(added);
                result
            }
            Err(err) => refuse(catalog_error_code(&err), err.to_string()),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

/// The configs of a topic just created (or, with `validate_only`, of the one that would be),
/// as CreateTopics v5+ answers: each config's value in force and where it comes from.
/// Older versions do not carry the field; the encoder leaves it out.
fn created_configs(
    ctx: &Context,
    name: &str,
    asked: &[(String, Option<String>)],
) -> Vec<CreatableTopicConfigs> {
    let resolved = ctx.catalog.topic_configs(name).unwrap_or_else(|| {
        // Not created (validate_only): resolved from the overrides the request gives.
        let overrides = asked
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect();
        ctx.catalog.config_snapshot().layers().topic(&overrides)
    });
    resolved
        .into_iter()
        .map(|c| {
            CreatableTopicConfigs::default()
                .with_name(wire_str(c.name.to_owned()))
                .with_value(Some(wire_str(c.value)))
                .with_read_only(c.read_only)
                .with_config_source(c.source as i8)
                .with_is_sensitive(false)
        })
        .collect()
}

/// A CreateTopics manual assignment, checked as Kafka does: with one, the partition count
/// and replication factor must both be -1; partitions numbered 0, 1, ... in order; each
/// placed on exactly this broker (one broker: replication factor 1). Returns the partition
/// count it gives, `None` without an assignment, or the refusal.
fn manual_partitions(
    ctx: &Context,
    topic: &CreatableTopic,
) -> Result<Option<i64>, (ErrorCode, String)> {
    if topic.assignments.is_empty() {
        return Ok(None);
    }
    if topic.num_partitions != -1 || topic.replication_factor != -1 {
        return Err((
            ErrorCode::InvalidRequest,
            "a manual replica assignment comes with num_partitions and replication_factor              both -1; both ways of placing partitions cannot be used at once"
                .to_owned(),
        ));
    }
    for (i, assignment) in topic.assignments.iter().enumerate() {
        if usize::try_from(assignment.partition_index).ok() != Some(i) {
            return Err((
                ErrorCode::InvalidReplicaAssignment,
                format!(
                    "partitions must be numbered 0, 1, 2, ... in order; assignment {i} is for                      partition {}",
                    assignment.partition_index
                ),
            ));
        }
        let ids: Vec<i32> = assignment.broker_ids.iter().map(|b| b.0).collect();
        // A cluster checks the brokers when placing (cluster_admin).
        if ctx.cluster.is_none() && ids != [NODE_ID] {
            return Err((
                ErrorCode::InvalidReplicaAssignment,
                format!(
                    "partition {i} is assigned to brokers {ids:?}; the only broker is {NODE_ID}                      (replication factor 1)"
                ),
            ));
        }
    }
    Ok(Some(topic.assignments.len() as i64))
}

/// Checks a manual assignment for `added` new partitions: one replica list each, every list
/// exactly this broker (one broker: replication factor 1). Returns the refusal's message.
fn check_assignments(assignments: &[CreatePartitionsAssignment], added: u32) -> Result<(), String> {
    if assignments.len() != added as usize {
        return Err(format!(
            "adding {added} partitions but {} assignments were given",
            assignments.len()
        ));
    }
    for (i, assignment) in assignments.iter().enumerate() {
        let ids: Vec<i32> = assignment.broker_ids.iter().map(|b| b.0).collect();
        if ids != [NODE_ID] {
            return Err(format!(
                "assignment {i} names brokers {ids:?}; the only broker is {NODE_ID} \
                 (replication factor 1)"
            ));
        }
    }
    Ok(())
}
