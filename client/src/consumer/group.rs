//! Group membership for `subscribe`: the background task that joins the group, computes the
//! assignment when it is the leader, heartbeats, and rejoins on a rebalance.
//!
//! The eager protocol: at each rebalance the member commits what the application has
//! processed (with auto-commit), drops its whole assignment with its prefetched records, and
//! rejoins; the new owner of a partition starts from the committed offset. Cooperative
//! rebalancing is not implemented.
//!
//! The task never holds the state lock across a request and owns nothing the application
//! needs: aborting it (dropping the consumer) simply stops heartbeats, and the coordinator
//! removes the member after its session timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    SyncGroupRequest, leave_group_request::MemberIdentity,
};
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;

use super::assignor::{
    Assignor, decode_assignment, decode_subscription, encode_assignment, encode_subscription,
};
use super::config::millis_i32;
use super::offsets::{self, coordinator, forget_coordinator_on, group_id, s};
use super::record::TopicPartition;
use super::state::{Generation, Processed, Shared};
use crate::error::{Error, Result};

/// Why the heartbeat loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rejoin {
    /// The group is rebalancing: commit, revoke, rejoin.
    Rebalance,
    /// This generation is over (ILLEGAL_GENERATION): revoke without committing.
    Generation,
    /// The coordinator does not know this member: rejoin with a new id.
    Member,
}

/// Runs until aborted.
pub(crate) async fn run(shared: Arc<Shared>, topics: Vec<String>) {
    let mut member_id = String::new();
    loop {
        match join(&shared, &topics, &mut member_id).await {
            Ok((generation, assignment)) => {
                tracing::info!(
                    member = %generation.member_id,
                    generation = generation.id,
                    partitions = ?assignment.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "joined group"
                );
                {
                    let mut state = shared.lock();
                    state.generation = Some(generation.clone());
                    state.assign(assignment);
                }
                shared.fetch_wake.notify_one();
                let why = heartbeat(&shared, &generation).await;
                tracing::info!(member = %generation.member_id, reason = ?why, "leaving generation");
                revoke(&shared, &generation, why == Rejoin::Rebalance).await;
                if why == Rejoin::Member {
                    member_id.clear();
                }
            }
            Err(err) => {
                tracing::debug!(error = %err, "joining the group failed");
                forget_coordinator_on(&shared, &err);
                match err.code() {
                    Some(ErrorCode::UnknownMemberId | ErrorCode::FencedInstanceId) => {
                        member_id.clear();
                    }
                    Some(ErrorCode::RebalanceInProgress | ErrorCode::IllegalGeneration) => {
                        continue;
                    }
                    _ if !err.is_retriable() && err.code().is_some() => {
                        shared.lock().report(err);
                    }
                    _ => {}
                }
                tokio::time::sleep(shared.config.retry_backoff).await;
            }
        }
    }
}

/// JoinGroup (again with the id the coordinator gives, KIP-394), then SyncGroup.
async fn join(
    shared: &Shared,
    topics: &[String],
    member_id: &mut String,
) -> Result<(Generation, Vec<TopicPartition>)> {
    let group = group_id(shared)?;
    let config = &shared.config;
    let node = coordinator(shared).await?;
    let connection = shared.cluster.node(node).await?;
    let metadata = encode_subscription(topics)
        .map_err(|err| Error::InvalidArgument(format!("subscribing to {topics:?}: {err}")))?;
    // The coordinator holds a JoinGroup until every member rejoined, up to the rebalance
    // timeout.
    let wait = config.rebalance_timeout + config.client.request_timeout;
    let response: JoinGroupResponse = loop {
        let request = JoinGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_session_timeout_ms(millis_i32(config.session_timeout))
            .with_rebalance_timeout_ms(millis_i32(config.rebalance_timeout))
            .with_member_id(s(member_id))
            .with_protocol_type(s("consumer"))
            .with_protocols(
                config
                    .assignors
                    .iter()
                    .map(|a| {
                        JoinGroupRequestProtocol::default()
                            .with_name(s(a.name()))
                            .with_metadata(metadata.clone())
                    })
                    .collect(),
            );
        let response = tokio::time::timeout(wait, connection.call(request))
            .await
            .map_err(|_elapsed| Error::Timeout(format!("JoinGroup {group}")))??;
        if response.error_code == ErrorCode::MemberIdRequired.code() {
            *member_id = response.member_id.to_string();
            continue;
        }
        if let Some(err) = Error::from_code(response.error_code, None, || {
            format!("JoinGroup {group} as {member_id:?}")
        }) {
            return Err(err);
        }
        break response;
    };
    *member_id = response.member_id.to_string();
    shared.lock().member_id.clone_from(member_id);
    let generation = Generation {
        id: response.generation_id,
        member_id: member_id.clone(),
    };
    let assignments = if response.leader == response.member_id {
        lead(shared, &response).await?
    } else {
        Vec::new()
    };
    let request = SyncGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation.id)
        .with_member_id(s(member_id))
        .with_assignments(assignments);
    let response = tokio::time::timeout(wait, connection.call(request))
        .await
        .map_err(|_elapsed| Error::Timeout(format!("SyncGroup {group}")))??;
    if let Some(err) = Error::from_code(response.error_code, None, || {
        format!("SyncGroup {group} generation {}", generation.id)
    }) {
        return Err(err);
    }
    let assignment = decode_assignment(&response.assignment).map_err(|err| Error::Kafka {
        code: ErrorCode::InconsistentGroupProtocol.code(),
        message: Some(format!("undecodable assignment: {err}")),
        context: format!("SyncGroup {group}"),
    })?;
    Ok((generation, assignment))
}

/// The leader's part: every member's assignment under the chosen protocol.
async fn lead(
    shared: &Shared,
    response: &JoinGroupResponse,
) -> Result<Vec<SyncGroupRequestAssignment>> {
    let name = response.protocol_name.as_deref().unwrap_or_default();
    let assignor = Assignor::from_name(name).ok_or_else(|| Error::Kafka {
        code: ErrorCode::InconsistentGroupProtocol.code(),
        message: Some(format!("the group chose assignor {name:?}, unknown here")),
        context: "leading the group".to_owned(),
    })?;
    let mut members = BTreeMap::new();
    for member in &response.members {
        let topics = decode_subscription(&member.metadata).unwrap_or_else(|err| {
            tracing::warn!(
                member = %member.member_id.as_str(),
                error = %err,
                "undecodable subscription"
            );
            Vec::new()
        });
        members.insert(member.member_id.to_string(), topics);
    }
    let all: BTreeSet<&str> = members.values().flatten().map(String::as_str).collect();
    let all: Vec<&str> = all.into_iter().collect();
    let mut partitions = BTreeMap::new();
    for info in shared.cluster.refresh(Some(&all)).await? {
        if info.partitions.is_empty() {
            tracing::warn!(topic = %info.name, "subscribed topic not found");
            continue;
        }
        partitions.insert(
            info.name.clone(),
            i32::try_from(info.partitions.len()).unwrap_or(i32::MAX),
        );
    }
    assignor
        .assign(&members, &partitions)
        .into_iter()
        .map(|(member, tps)| {
            let assignment = encode_assignment(&tps).map_err(|err| {
                Error::InvalidArgument(format!("the assignment of {member}: {err}"))
            })?;
            Ok(SyncGroupRequestAssignment::default()
                .with_member_id(s(&member))
                .with_assignment(assignment))
        })
        .collect()
}

/// Heartbeats until the generation ends.
async fn heartbeat(shared: &Shared, generation: &Generation) -> Rejoin {
    let group = shared.config.group_id.as_deref().unwrap_or_default();
    loop {
        tokio::time::sleep(shared.config.heartbeat_interval).await;
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id(generation.id)
            .with_member_id(s(&generation.member_id));
        let result = match coordinator(shared).await {
            Ok(node) => shared.cluster.call(node, request).await,
            Err(err) => Err(err),
        };
        let code = match result {
            Ok(response) => response.error_code,
            Err(err) => {
                tracing::debug!(error = %err, "heartbeat failed");
                forget_coordinator_on(shared, &err);
                continue;
            }
        };
        match ErrorCode::from_code(code) {
            _ if code == 0 => {}
            Some(ErrorCode::RebalanceInProgress) => return Rejoin::Rebalance,
            Some(ErrorCode::IllegalGeneration) => return Rejoin::Generation,
            Some(ErrorCode::UnknownMemberId | ErrorCode::FencedInstanceId) => {
                return Rejoin::Member;
            }
            other => {
                tracing::debug!(code, error = ?other, "heartbeat error");
                if offsets::coordinator_moved(other) {
                    shared.lock().coordinator = None;
                }
            }
        }
    }
}

/// Gives up the assignment: with `commit` (and auto-commit on), first commits what the
/// application has processed, under the ending generation.
async fn revoke(shared: &Shared, generation: &Generation, commit: bool) {
    let offsets: BTreeMap<TopicPartition, i64> = {
        let mut state = shared.lock();
        state.generation = None;
        let offsets = state.uncommitted(Processed::EarlierPolls);
        state.assign(Vec::new());
        offsets
    };
    shared.fetch_wake.notify_one();
    if commit && shared.config.enable_auto_commit && !offsets.is_empty() {
        if let Err(err) = offsets::commit(shared, generation, &offsets).await {
            tracing::warn!(error = %err, "commit before revoking failed");
        }
    }
}

/// LeaveGroup for `member_id` (on close).
pub(crate) async fn leave(shared: &Shared, member_id: &str) -> Result<()> {
    let group = group_id(shared)?;
    let node = coordinator(shared).await?;
    let connection = shared.cluster.node(node).await?;
    let mut request = LeaveGroupRequest::default().with_group_id(GroupId(s(group)));
    if connection.version(ApiKey::LeaveGroup).unwrap_or(0) >= 3 {
        request =
            request.with_members(vec![MemberIdentity::default().with_member_id(s(member_id))]);
    } else {
        request = request.with_member_id(s(member_id));
    }
    let response = tokio::time::timeout(
        shared.config.client.request_timeout,
        connection.call(request),
    )
    .await
    .map_err(|_elapsed| Error::Timeout(format!("LeaveGroup {group}")))??;
    let code = if response.error_code != 0 {
        response.error_code
    } else {
        response.members.first().map_or(0, |m| m.error_code)
    };
    match Error::from_code(code, None, || format!("LeaveGroup {group} as {member_id}")) {
        Some(err) => Err(err),
        None => Ok(()),
    }
}
