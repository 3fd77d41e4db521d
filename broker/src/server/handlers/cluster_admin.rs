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
        Refusal::ProducerIdsExhausted | Refusal::StaleLeaderEpoch { .. } => {
            ErrorCode::UnknownServerError
        }
        Refusal::UnknownPartition(..) => ErrorCode::UnknownTopicOrPartition,
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

/// The most replicas a partition may have.
pub(crate) const MAX_REPLICATION_FACTOR: usize = 5;

/// The replication factor a topic gets when its creator leaves it to the broker: the flag,
/// else 3, never more than the registered brokers.
pub(crate) fn default_replication_factor(ctx: &super::Context, node: &ClusterNode) -> usize {
    let brokers = node.state().brokers.len().max(1);
    ctx.config
        .cluster
        .default_replication_factor
        .map_or(3, usize::from)
        .min(brokers)
}

/// Replicas for `count` new partitions: the manual assignment when given (each partition on
/// 1 to 5 distinct registered brokers, all partitions alike), else `replicas` each, round
/// robin over the live brokers.
fn placement(
    node: &ClusterNode,
    count: u32,
    replicas: usize,
    manual: Option<Vec<Vec<i32>>>,
) -> Result<Vec<Vec<NodeId>>, Refused> {
    let state = node.state();
    if let Some(manual) = manual {
        let width = manual.first().map_or(0, Vec::len);
        return manual
            .into_iter()
            .enumerate()
            .map(|(i, ids)| {
                let nodes: Vec<NodeId> = ids
                    .iter()
                    .filter_map(|id| u64::try_from(*id).ok())
                    .collect();
                let distinct = nodes
                    .iter()
                    .collect::<std::collections::BTreeSet<_>>()
                    .len();
                let known = nodes.iter().all(|id| state.brokers.contains_key(id));
                if (1..=MAX_REPLICATION_FACTOR).contains(&ids.len())
                    && ids.len() == width
                    && nodes.len() == ids.len()
                    && distinct == ids.len()
                    && known
                {
                    Ok(nodes)
                } else {
                    Err((
                        ErrorCode::InvalidReplicaAssignment,
                        format!(
                            "partition {i} is assigned to brokers {ids:?}; each partition needs \
                             1 to {MAX_REPLICATION_FACTOR} distinct registered brokers, as many \
                             as the others; brokers: {:?}",
                            state.brokers.keys().collect::<Vec<_>>()
                        ),
                    ))
                }
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
    if replicas > live.len() {
        return Err((
            ErrorCode::InvalidReplicationFactor,
            format!(
                "replication factor {replicas} is larger than the {} live brokers",
                live.len()
            ),
        ));
    }
    Ok(place(&live, count as usize, replicas, random_start()))
}

/// How a new topic's partitions are spread: `replicas` each, or as assigned by hand.
#[derive(Debug)]
pub(crate) struct Spread {
    /// Replicas per partition (ignored with a manual assignment).
    pub(crate) replicas: usize,
    /// The request's assignment, per partition its brokers.
    pub(crate) manual: Option<Vec<Vec<i32>>>,
}

/// CreateTopics for one topic in a cluster.
pub(crate) async fn create_topic(
    ctx: &super::Context,
    node: &Arc<ClusterNode>,
    name: &str,
    partitions: i64,
    spread: Spread,
    configs: &[(String, Option<String>)],
    validate_only: bool,
) -> Result<(), Refused> {
    let Spread { replicas, manual } = spread;
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
    let assignment = placement(node, count, replicas, manual)?;
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
    // New partitions get as many replicas as the topic's first one has.
    let replicas = node
        .state()
        .topics
        .get(name)
        .and_then(|t| t.partitions.first())
        .map_or(1, |p| p.replicas.len());
    let assignment = placement(node, added, replicas, manual)?;
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
