//! Group membership APIs: FindCoordinator 0-2, JoinGroup 0-5, SyncGroup 0-3, Heartbeat 0-3,
//! LeaveGroup 0-3, DescribeGroups 0-4, ListGroups 0-5. Each translates between the wire
//! messages and the coordinator's domain types; the rules live in
//! [`crate::groups::coordinator`].
//!
//! Every group here is a classic group (Kafka's `GroupType.CLASSIC`): the KIP-848 `consumer`
//! protocol is not served, so ListGroups v5 reports `classic` as each group's type and a types
//! filter without `classic` matches nothing.

use std::net::SocketAddr;
use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    BrokerId, DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, RequestHeader, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio_util::sync::CancellationToken;
use weir_protocol::error_code::ErrorCode;

use super::offsets_replicated::committed;
use super::{Context, NO_TRANSACTIONS, wire_str};
use crate::groups::coordinator::{GroupState, JoinRequest, SyncRequest};
use crate::server::context::NODE_ID;

/// FindCoordinator key type for transactions (not supported: see [`NO_TRANSACTIONS`]).
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Kafka's `AclOperation` codes for what can be done to a group (`AclEntry.supportedOperations`
/// for GROUP: READ, DESCRIBE, DELETE).
const ACL_READ: u8 = 3;
const ACL_DELETE: u8 = 6;
const ACL_DESCRIBE: u8 = 8;

/// DescribeGroups' `authorized_operations` when the client asks for them: every group
/// operation, since there is no authorizer (Kafka's `AuthHelper.authorizedOperations` without
/// one), as a bit field with bit `code` set for each (Kafka's `Utils.to32BitField`): 328.
pub(crate) const GROUP_AUTHORIZED_OPERATIONS: i32 =
    1 << ACL_READ | 1 << ACL_DELETE | 1 << ACL_DESCRIBE;

pub(crate) fn find_coordinator(
    ctx: &Arc<Context>,
    request: &FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let response = FindCoordinatorResponse::default()
        .with_node_id(BrokerId(-1))
        .with_host(wire_str(""))
        .with_port(-1);
    if request.key_type == KEY_TYPE_TRANSACTION {
        return response
            .with_error_code(ErrorCode::TransactionalIdAuthorizationFailed.code())
            .with_error_message(Some(wire_str(NO_TRANSACTIONS)));
    }
    let Some(state) = ctx.metadata() else {
        // One broker: it coordinates every group.
        return response
            .with_node_id(BrokerId(NODE_ID))
            .with_host(wire_str(ctx.advertised_host.clone()))
            .with_port(ctx.advertised_port);
    };
    // A cluster: the group's coordinator (by hash, or the leader of its offsets partition),
    // if it is up.
    let coordinator = ctx
        .coordinator_of(&request.key)
        .and_then(|id| u64::try_from(id).ok())
        .and_then(|id| Some((id, state.brokers.get(&id).filter(|b| !b.fenced)?)));
    match coordinator {
        Some((id, broker)) => response
            .with_node_id(BrokerId(i32::try_from(id).unwrap_or(-1)))
            .with_host(wire_str(broker.host.clone()))
            .with_port(i32::from(broker.port)),
        None => response
            .with_error_code(ErrorCode::CoordinatorNotAvailable.code())
            .with_error_message(Some(wire_str(format!(
                "the coordinator of group {} is not available",
                &*request.key
            )))),
    }
}

pub(crate) async fn join(
    ctx: &Arc<Context>,
    header: &RequestHeader,
    peer: SocketAddr,
    request: JoinGroupRequest,
    version: i16,
    cancel: &CancellationToken,
) -> JoinGroupResponse {
    let domain = JoinRequest {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|s| s.to_string()),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        client_id: header
            .client_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        client_host: format!("/{}", peer.ip()),
        version,
    };
    if let Some(code) = ctx.not_coordinator(&domain.group_id) {
        return JoinGroupResponse::default()
            .with_error_code(code.code())
            .with_member_id(wire_str(domain.member_id))
            .with_generation_id(-1);
    }
    let result = ctx.groups.join(domain, cancel).await;
    JoinGroupResponse::default()
        .with_error_code(result.error.code())
        .with_generation_id(result.generation_id)
        // Non-nullable before v7: an empty string stands for "none".
        .with_protocol_type(Some(wire_str(result.protocol_type.unwrap_or_default())))
        .with_protocol_name(Some(wire_str(result.protocol_name.unwrap_or_default())))
        .with_leader(wire_str(result.leader))
        .with_member_id(wire_str(result.member_id))
        .with_members(
            result
                .members
                .into_iter()
                .map(|m| {
                    JoinGroupResponseMember::default()
                        .with_member_id(wire_str(m.member_id))
                        .with_group_instance_id(m.group_instance_id.map(wire_str))
                        .with_metadata(m.metadata)
                })
                .collect(),
        )
}

pub(crate) async fn sync(
    ctx: &Arc<Context>,
    request: SyncGroupRequest,
    cancel: &CancellationToken,
) -> SyncGroupResponse {
    let domain = SyncRequest {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|s| s.to_string()),
        generation_id: request.generation_id,
        assignments: request
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    if let Some(code) = ctx.not_coordinator(&domain.group_id) {
        return SyncGroupResponse::default().with_error_code(code.code());
    }
    let result = ctx.groups.sync(domain, cancel).await;
    SyncGroupResponse::default()
        .with_error_code(result.error.code())
        .with_assignment(result.assignment)
}

pub(crate) fn heartbeat(ctx: &Arc<Context>, request: &HeartbeatRequest) -> HeartbeatResponse {
    if let Some(code) = ctx.not_coordinator(&request.group_id.0) {
        return HeartbeatResponse::default().with_error_code(code.code());
    }
    let error = ctx.groups.heartbeat(
        &request.group_id.0,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
    );
    HeartbeatResponse::default().with_error_code(error.code())
}

pub(crate) fn leave(
    ctx: &Arc<Context>,
    request: &LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group = &request.group_id.0;
    if let Some(code) = ctx.not_coordinator(group) {
        return LeaveGroupResponse::default().with_error_code(code.code());
    }
    if version < 3 {
        let error = ctx.groups.leave(group, &request.member_id, None);
        return LeaveGroupResponse::default().with_error_code(error.code());
    }
    let members = request
        .members
        .iter()
        .map(|m| {
            let error = ctx
                .groups
                .leave(group, &m.member_id, m.group_instance_id.as_deref());
            MemberResponse::default()
                .with_member_id(m.member_id.clone())
                .with_group_instance_id(m.group_instance_id.clone())
                .with_error_code(error.code())
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}

pub(crate) fn describe(
    ctx: &Arc<Context>,
    request: &DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    // Left at the schema's default (i32::MIN, "not provided") unless asked for, as Kafka
    // does; the flag exists from v3, and decodes as false before.
    let authorized_operations = if request.include_authorized_operations {
        GROUP_AUTHORIZED_OPERATIONS
    } else {
        i32::MIN
    };
    let groups = request
        .groups
        .iter()
        .map(|id| {
            let described = DescribedGroup::default()
                .with_group_id(id.clone())
                .with_authorized_operations(authorized_operations);
            if let Some(code) = ctx.not_coordinator(&id.0) {
                return described.with_error_code(code.code());
            }
            match ctx.groups.describe(&id.0) {
                Some(d) => described
                    .with_group_state(wire_str(d.state.name()))
                    .with_protocol_type(wire_str(d.protocol_type))
                    .with_protocol_data(wire_str(d.protocol))
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(wire_str(m.member_id))
                                    .with_group_instance_id(m.group_instance_id.map(wire_str))
                                    .with_client_id(wire_str(m.client_id))
                                    .with_client_host(wire_str(m.client_host))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment)
                            })
                            .collect(),
                    ),
                // Only committed offsets: an empty group, as Kafka shows it.
                None if committed(ctx).has_group(&id.0) => described
                    .with_group_state(wire_str(GroupState::Empty.name()))
                    .with_protocol_type(wire_str("")),
                // Kafka describes a group it does not know as Dead, without an error.
                None => described.with_group_state(wire_str(GroupState::Dead.name())),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

/// The type ListGroups v5 reports for every group (Kafka's `Group.GroupType.CLASSIC`).
const CLASSIC_GROUP_TYPE: &str = "classic";

pub(crate) fn list(ctx: &Arc<Context>, request: &ListGroupsRequest) -> ListGroupsResponse {
    let mut groups: Vec<(String, GroupState, String)> = ctx.groups.list();
    // Groups known only by their committed offsets (simple commits) are listed too.
    for id in committed(ctx).groups() {
        if !groups.iter().any(|(g, _, _)| *g == id) {
            groups.push((id, GroupState::Empty, String::new()));
        }
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    let listed = groups
        .into_iter()
        .filter(|(_, state, _)| matches_filter(&request.states_filter, state.name()))
        .filter(|_| matches_filter(&request.types_filter, CLASSIC_GROUP_TYPE))
        .map(|(id, state, protocol_type)| {
            ListedGroup::default()
                .with_group_id(GroupId(wire_str(id)))
                .with_protocol_type(wire_str(protocol_type))
                .with_group_state(wire_str(state.name()))
                .with_group_type(wire_str(CLASSIC_GROUP_TYPE))
        })
        .collect();
    ListGroupsResponse::default().with_groups(listed)
}

/// ListGroups' states (v4+) and types (v5+) filters: an empty filter matches every group;
/// otherwise one entry must name `value`, ignoring case and surrounding blanks as Kafka's
/// `GroupMetadataManager.listGroups` does (the Java admin sends `Stable`, the CLI `stable`).
fn matches_filter(filter: &[StrBytes], value: &str) -> bool {
    filter.is_empty() || filter.iter().any(|f| f.trim().eq_ignore_ascii_case(value))
}
