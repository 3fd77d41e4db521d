//! ElectLeaders (key 43), v0-2: moves partitions' leadership to their preferred replica
//! (`kafka-leader-election.sh --election-type preferred`).
//!
//! Any broker answers (in KRaft a broker forwards the request to the controller; here the
//! broker asks each partition's leader directly over the cluster port:
//! `cluster::replica::elect`). Per partition, as Kafka: ELECTION_NOT_NEEDED when the
//! preferred replica leads already (always, for a partition with one replica),
//! PREFERRED_LEADER_NOT_AVAILABLE when it is down, fenced or not in sync (or the hand-over
//! did not complete), UNKNOWN_TOPIC_OR_PARTITION for what does not exist. A null partition
//! list means every partition whose preferred replica could lead and does not; only those
//! are answered (as Kafka). UNCLEAN elections are refused per partition: Raft never elects
//! a replica that lacks committed records, so ELECTION_NOT_NEEDED where the partition has a
//! leader and ELIGIBLE_LEADERS_NOT_AVAILABLE (with why) where it has none.
//!
//! Partitions move [`AT_ONCE`] at a time (each hand-over refuses produce on its partition for
//! a moment); those not reached before the request's `timeout_ms` answer REQUEST_TIMED_OUT.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use weir_protocol::error_code::ErrorCode;

use super::{Context, wire_str};
use crate::cluster::replica::balance::AT_ONCE;
use crate::cluster::replica::elect::{Preferred, elect_preferred, imbalanced};

/// Kafka's `ElectionType`: 0 preferred (and every v0 request), 1 unclean.
const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

/// Why an unclean election is refused.
const NO_UNCLEAN: &str = "unclean leader election is not supported: Raft only elects a replica \
     that holds every committed record, and none is available";

type Answer = (ErrorCode, Option<String>);

pub(crate) async fn handle(
    ctx: &Arc<Context>,
    request: ElectLeadersRequest,
    version: i16,
) -> ElectLeadersResponse {
    let election_type = if version == 0 {
        PREFERRED
    } else {
        request.election_type
    };
    let deadline =
        Instant::now() + Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
    let wanted: Vec<(String, i32)> = match request.topic_partitions {
        Some(topics) => topics
            .into_iter()
            .flat_map(|t| {
                let name = t.topic.0.to_string();
                t.partitions.into_iter().map(move |p| (name.clone(), p))
            })
            .collect(),
        None => match (&ctx.cluster, election_type) {
            (Some(node), PREFERRED) => imbalanced(&node.state()),
            // Without a cluster every partition has one replica and leads itself; an unclean
            // election is never needed where every partition has a leader.
            _ => Vec::new(),
        },
    };
    let mut answers: BTreeMap<(String, i32), Answer> = BTreeMap::new();
    let mut to_elect = Vec::new();
    for (topic, partition) in wanted {
        match answer_at_once(ctx, &topic, partition, election_type) {
            Some(answer) => {
                answers.insert((topic, partition), answer);
            }
            None => to_elect.push((topic, partition)),
        }
    }
    if let Some(node) = &ctx.cluster {
        for chunk in to_elect.chunks(AT_ONCE) {
            if Instant::now() >= deadline {
                for key in chunk {
                    let why = "not reached before the request's timeout".to_owned();
                    answers.insert(key.clone(), (ErrorCode::RequestTimedOut, Some(why)));
                }
                continue;
            }
            let elections = chunk.iter().map(|(topic, partition)| async move {
                let outcome = elect_preferred(node, topic, *partition).await;
                ((topic.clone(), *partition), outcome)
            });
            for (key, outcome) in futures_util::future::join_all(elections).await {
                answers.insert(key, preferred_answer(outcome));
            }
        }
    }
    let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    for ((topic, partition), (code, message)) in answers {
        by_topic.entry(topic).or_default().push(
            PartitionResult::default()
                .with_partition_id(partition)
                .with_error_code(code.code())
                .with_error_message(message.map(wire_str)),
        );
    }
    ElectLeadersResponse::default().with_replica_election_results(
        by_topic
            .into_iter()
            .map(|(topic, partitions)| {
                ReplicaElectionResult::default()
                    .with_topic(TopicName(wire_str(topic)))
                    .with_partition_result(partitions)
            })
            .collect(),
    )
}

/// The answer for a partition that needs no hand-over (or cannot have one), else `None`.
fn answer_at_once(ctx: &Context, topic: &str, partition: i32, election_type: i8) -> Option<Answer> {
    let unknown = Some((ErrorCode::UnknownTopicOrPartition, None));
    let Some(node) = &ctx.cluster else {
        let exists = ctx
            .catalog
            .get(topic)
            .is_some_and(|t| t.log(partition).is_some());
        return if !exists {
            unknown
        } else if election_type == PREFERRED || election_type == UNCLEAN {
            Some((ErrorCode::ElectionNotNeeded, None))
        } else {
            Some(invalid_type(election_type))
        };
    };
    let state = node.state();
    let record = state
        .topics
        .get(topic)
        .and_then(|t| t.partitions.get(usize::try_from(partition).ok()?));
    let Some(record) = record else {
        return unknown;
    };
    match election_type {
        PREFERRED => None,
        UNCLEAN if record.current_leader().is_some() => Some((ErrorCode::ElectionNotNeeded, None)),
        UNCLEAN => Some((
            ErrorCode::EligibleLeadersNotAvailable,
            Some(NO_UNCLEAN.to_owned()),
        )),
        other => Some(invalid_type(other)),
    }
}

fn invalid_type(election_type: i8) -> Answer {
    (
        ErrorCode::InvalidRequest,
        Some(format!(
            "unknown election type {election_type} (0 is PREFERRED, 1 UNCLEAN)"
        )),
    )
}

fn preferred_answer(outcome: Preferred) -> Answer {
    match outcome {
        Preferred::Elected => (ErrorCode::None, None),
        Preferred::NotNeeded => (ErrorCode::ElectionNotNeeded, None),
        Preferred::NotAvailable(why) => (ErrorCode::PreferredLeaderNotAvailable, Some(why)),
        Preferred::Unknown => (ErrorCode::UnknownTopicOrPartition, None),
    }
}
