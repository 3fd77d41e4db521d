//! The coordinator's vocabulary: requests and results in domain terms, the outputs that tell
//! the shell which parked request to answer, and the descriptions DescribeGroups shows.
//!
//! Owns only plain data: no state, no decisions. The wire types live in `weir_protocol`; the
//! handlers (`crate::server::handlers::groups`) translate between the two.

use bytes::Bytes;
use weir_protocol::error_code::ErrorCode;

use super::GroupState;

/// Who a parked reply goes to: an id the shell chose.
pub type ReplyTo = u64;

/// A JoinGroup request in domain terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// The group.
    pub group_id: String,
    /// Empty for a new member.
    pub member_id: String,
    /// Static membership (v5+).
    pub group_instance_id: Option<String>,
    /// Session timeout asked for.
    pub session_timeout_ms: i32,
    /// Rebalance timeout (v1+; v0 uses the session timeout).
    pub rebalance_timeout_ms: i32,
    /// "consumer" for consumers.
    pub protocol_type: String,
    /// Protocols (assignors) by preference, with their opaque metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// For DescribeGroups.
    pub client_id: String,
    /// For DescribeGroups.
    pub client_host: String,
    /// The request's version: v4+ takes part in KIP-394.
    pub version: i16,
}

/// One member in the leader's JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// Its metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// A JoinGroup response in domain terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    /// The error, or [`ErrorCode::None`].
    pub error: ErrorCode,
    /// The new generation (-1 on error).
    pub generation_id: i32,
    /// Chosen protocol type.
    pub protocol_type: Option<String>,
    /// Chosen protocol.
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// This member's id (also set with MEMBER_ID_REQUIRED).
    pub member_id: String,
    /// The members, for the leader only.
    pub members: Vec<JoinedMember>,
}

impl JoinResult {
    pub(super) fn error(error: ErrorCode, member_id: &str) -> Self {
        Self {
            error,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_owned(),
            members: Vec::new(),
        }
    }
}

/// A SyncGroup request in domain terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    /// The group.
    pub group_id: String,
    /// The member.
    pub member_id: String,
    /// Its static instance id.
    pub group_instance_id: Option<String>,
    /// Its generation.
    pub generation_id: i32,
    /// From the leader: each member's assignment.
    pub assignments: Vec<(String, Bytes)>,
}

/// A SyncGroup response in domain terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    /// The error, or [`ErrorCode::None`].
    pub error: ErrorCode,
    /// The member's assignment (empty when the leader gave it none).
    pub assignment: Bytes,
}

impl SyncResult {
    pub(super) fn error(error: ErrorCode) -> Self {
        Self {
            error,
            assignment: Bytes::new(),
        }
    }
}

/// What the shell must do: answer a parked request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Answer a JoinGroup.
    Join(ReplyTo, JoinResult),
    /// Answer a SyncGroup.
    Sync(ReplyTo, SyncResult),
}

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Metadata for the chosen protocol.
    pub metadata: Bytes,
    /// Current assignment.
    pub assignment: Bytes,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// State.
    pub state: GroupState,
    /// Protocol type ("" when none).
    pub protocol_type: String,
    /// Chosen protocol ("" when none).
    pub protocol: String,
    /// Members.
    pub members: Vec<MemberDescription>,
    /// The generation: raised by every completed rebalance.
    pub generation: i32,
}

/// What every step of one JoinGroup call needs besides the request.
#[derive(Debug, Clone, Copy)]
pub(super) struct JoinCall {
    /// The broker's group limits and delays.
    pub(super) config: super::GroupConfig,
    /// The time of the call.
    pub(super) now: i64,
    /// Where this request's answer goes.
    pub(super) reply: ReplyTo,
}
