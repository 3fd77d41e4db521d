//! Topic changes in a cluster: checked here as a single broker checks them, then placed on
//! the live brokers and proposed to the metadata quorum (through its leader, wherever it
//! is). Each answers once the change is committed and applied on this broker, so the
//! client's next Metadata from here sees it; the brokers holding the new partitions open
//! their logs as their own metadata catches up ([`crate::cluster::reconcile`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsAssignment;
use weir_protocol::error_code::ErrorCode;

use super::catalog_error_code;
use crate::cluster::state::place;
use crate::cluster::{ClusterNode, Command, NodeId, ProposeError, Refusal, Reply};

/// A refusal as the response carries it.
pub(crate) type Refused = (ErrorCode, String);

fn propose_error(err: &ProposeError) -> Refused {
    (ErrorCode::RequestTimedOut, err.to_string())
}

fn refusal(refusal: &Refusal) -> Refused {
    let code = match refusal {
        Refusal::TopicExists(_) => ErrorCode::TopicAlreadyExists,
        Refusal::UnknownTopic(_) => ErrorCode::UnknownTopicOrPartition,
        Refusal::BadPartitionCount { .. } => ErrorCode::InvalidPartitions,
        Refusal::UnknownBroker(_) => ErrorCode::InvalidReplicaAssignment,
        Refusal::ProducerIdsExhausted => ErrorCode::UnknownServerError,
    };
    (code, refusal.to_string())
}

async fn commit(node: &ClusterNode, command: Command) -> Result<(), Refused> {
    match node.propose(command).await {
        Ok(Reply::Refused(why)) => Err(refusal(&why)),
        Ok(_) => Ok(()),
        Err(err) => Err(propose_error(&err)),
    }
}

/// A random start for round-robin placement (Kafka starts at a random broker so that
/// topics created one after another do not all start on the same one).
fn random_start() -> usize {
    usize::try_from(uuid::Uuid::new_v4().as_u128() % 1_000_003).unwrap_or(0)
}

/// Replicas for `count` new partitions: the manual assignment when given (each partition on
/// one registered broker), else round robin over the live brokers.
fn placement(
    node: &ClusterNode,
    count: u32,
    manual: Option<Vec<Vec<i32>>>,
) -> Result<Vec<Vec<NodeId>>, Refused> {
    let state = node.state();
    if let Some(manual) = manual {
        return manual
            .into_iter()
            .enumerate()
            .map(|(i, ids)| match ids.as_slice() {
                [id] if u64::try_from(*id).is_ok_and(|id| state.brokers.contains_key(&id)) => {
                    Ok(vec![u64::try_from(*id).unwrap_or(0)])
                }
                _ => Err((
                    ErrorCode::InvalidReplicaAssignment,
                    format!(
                        "partition {i} is assigned to brokers {ids:?}; each partition needs \
                         exactly one registered broker (replication factor 1 until \
                         replicated partitions land); brokers: {:?}",
                        state.brokers.keys().collect::<Vec<_>>()
                    ),
                )),
            })
            .collect();
    }
    let live: Vec<NodeId> = state.live_brokers().map(|(id, _)| id).collect();
    if live.is_empty() {
        return Err((
            ErrorCode::BrokerNotAvailable,
            "no live broker to place partitions on".into(),
        ));
    }
    Ok(place(&live, count as usize, random_start()))
}

/// CreateTopics for one topic in a cluster.
pub(crate) async fn create_topic(
    ctx: &super::Context,
    node: &Arc<ClusterNode>,
    name: &str,
    partitions: i64,
    configs: &[(String, Option<String>)],
    manual: Option<Vec<Vec<i32>>>,
    validate_only: bool,
) -> Result<(), Refused> {
    if node.state().topics.contains_key(name) {
        return Err((
            ErrorCode::TopicAlreadyExists,
            format!("topic {name} already exists"),
        ));
    }
    let (count, overrides) = ctx
        .catalog
        .check_create_with(name, partitions, configs)
        .map_err(|e| (catalog_error_code(&e), e.to_string()))?;
    let assignment = placement(node, count, manual)?;
    if validate_only {
        return Ok(());
    }
    commit(
        node,
        Command::CreateTopic {
            name: name.to_owned(),
            id: uuid::Uuid::new_v4(),
            assignment,
            configs: overrides.into_iter().collect::<BTreeMap<_, _>>(),
        },
    )
    .await
}

/// DeleteTopics for one topic in a cluster.
pub(crate) async fn delete_topic(node: &Arc<ClusterNode>, name: &str) -> Result<(), Refused> {
    commit(
        node,
        Command::DeleteTopic {
            name: name.to_owned(),
        },
    )
    .await
}

/// CreatePartitions for one topic in a cluster: `added` partitions (already checked), with
/// the request's manual assignment if any.
pub(crate) async fn add_partitions(
    node: &Arc<ClusterNode>,
    name: &str,
    added: u32,
    assignments: Option<&[CreatePartitionsAssignment]>,
    validate_only: bool,
) -> Result<(), Refused> {
    let manual = assignments.map(|all| {
        all.iter()
            .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
            .collect()
    });
    let assignment = placement(node, added, manual)?;
    if validate_only {
        return Ok(());
    }
    commit(
        node,
        Command::CreatePartitions {
            name: name.to_owned(),
            assignment,
        },
    )
    .await
}

/// Replaces a topic's config overrides in a cluster (already checked and normalised).
pub(crate) async fn set_topic_configs(
    node: &Arc<ClusterNode>,
    name: &str,
    configs: BTreeMap<String, String>,
) -> Result<(), Refused> {
    commit(
        node,
        Command::SetTopicConfigs {
            name: name.to_owned(),
            configs,
        },
    )
    .await
}
