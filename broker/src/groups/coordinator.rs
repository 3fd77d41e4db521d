//! The classic consumer-group protocol as a pure state machine: requests and the time in,
//! responses and deadlines out. No I/O, no clock, no runtime: the async shell
//! (`crate::server::groups`) owns the clock, parks replies and calls [`Coordinator::tick`] at
//! [`Coordinator::next_deadline`]. Committed offsets are stored elsewhere
//! ([`super::offsets`]); this module only decides whether a commit is allowed.
//!
//! States and transitions (Kafka's classic group coordinator):
//!
//! | State | JoinGroup | SyncGroup | Heartbeat | Leaves when |
//! |---|---|---|---|---|
//! | Empty | first member -> PreparingRebalance | UNKNOWN_MEMBER_ID | UNKNOWN_MEMBER_ID | a member joins |
//! | PreparingRebalance | parked until every member rejoined, or the rebalance timeout | REBALANCE_IN_PROGRESS | REBALANCE_IN_PROGRESS | all joined or timeout -> CompletingRebalance (Empty if nobody left) |
//! | CompletingRebalance | same protocols: current result again; changed: rebalance | parked until the leader's assignments arrive -> Stable | NONE | leader's sync -> Stable; a member leaves or dies -> PreparingRebalance |
//! | Stable | leader or changed protocols: rebalance; else current generation | the member's assignment | NONE | a member leaves, dies or changes -> PreparingRebalance |
//!
//! - Completing a join drops members that did not rejoin, keeps the leader if it rejoined
//!   (else elects the earliest member), bumps the generation, picks the protocol every member
//!   supports with the most votes, and answers every parked join; only the leader gets the
//!   member list.
//! - The first rebalance of an empty group waits the initial rebalance delay, extended by
//!   each new joiner up to the rebalance timeout, so a group starting up rebalances once.
//! - Session timeouts: any request from a member renews it; a member parked in a join or sync
//!   cannot expire; expiry removes the member and rebalances.
//! - KIP-394: JoinGroup v4+ without a member id gets a generated id and MEMBER_ID_REQUIRED; the
//!   id is pending until the client rejoins with it (or its session timeout passes).
//! - Static membership (JoinGroup v5): a known instance id rejoining replaces its member id
//!   without a rebalance when nothing changed; requests with the replaced id get
//!   FENCED_INSTANCE_ID.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use weir_protocol::error_code::ErrorCode;

/// Limits and delays, as in Kafka's broker configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms` (Kafka: 6 s).
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (Kafka: 30 min).
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms` (Kafka: 3 s).
    pub initial_rebalance_delay_ms: i64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
        }
    }
}

/// A group's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members (maybe committed offsets).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Waiting for the leader's assignments.
    CompletingRebalance,
    /// Everyone has an assignment.
    Stable,
    /// Deleted.
    Dead,
}

impl GroupState {
    /// Kafka's name for the state (DescribeGroups, ListGroups).
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }
}

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
    fn error(error: ErrorCode, member_id: &str) -> Self {
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
    fn error(error: ErrorCode) -> Self {
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
}

#[derive(Debug, Clone)]
struct Member {
    id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    /// A parked JoinGroup.
    awaiting_join: Option<ReplyTo>,
    /// A parked SyncGroup.
    awaiting_sync: Option<ReplyTo>,
    /// When the session expires without a request.
    session_deadline: i64,
    /// Order of first join (leader election picks the earliest).
    joined_seq: u64,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    fn renew(&mut self, now: i64) {
        self.session_deadline = now.saturating_add(i64::from(self.session_timeout_ms));
    }
}

#[derive(Debug, Clone)]
struct Group {
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// KIP-394 member ids handed out and not yet used, with their expiry.
    pending: HashMap<String, i64>,
    /// Static instance id -> member id.
    instances: HashMap<String, String>,
    /// When PreparingRebalance completes even if members are missing.
    rebalance_deadline: Option<i64>,
    /// The initial delay: PreparingRebalance does not complete before this.
    not_before: Option<i64>,
    /// A member's commit was accepted. Such a group is kept when its members are gone (Kafka
    /// keeps a group while it has offsets), so that ListGroups and DescribeGroups still show
    /// it as a consumer group rather than one made by simple commits.
    member_committed: bool,
}

impl Group {
    fn new() -> Self {
        Self {
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            instances: HashMap::new(),
            rebalance_deadline: None,
            not_before: None,
            member_committed: false,
        }
    }

    /// Whether `protocols` has one in common with every current member (and the type fits).
    fn accepts(
        &self,
        protocol_type: &str,
        protocols: &[(String, Bytes)],
        except: Option<&str>,
    ) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        let others: Vec<&Member> = self
            .members
            .values()
            .filter(|m| Some(m.id.as_str()) != except)
            .collect();
        if others.is_empty() {
            return true;
        }
        if others.iter().any(|m| m.protocol_type != protocol_type) {
            return false;
        }
        protocols.iter().any(|(name, _)| {
            others
                .iter()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    /// The protocol every member supports with the most votes (each member votes for its
    /// most preferred one among those), ties broken by name.
    fn select_protocol(&self) -> Option<String> {
        let members: Vec<&Member> = self.members.values().collect();
        let first = members.first()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(name, _)| name)
            .filter(|name| {
                members
                    .iter()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == *name))
            })
            .collect();
        let mut votes: BTreeMap<&String, usize> = candidates.iter().map(|c| (*c, 0)).collect();
        for m in &members {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(&n)) {
                *votes.entry(name).or_default() += 1;
            }
        }
        let best = votes.values().copied().max()?;
        votes
            .into_iter()
            .find(|(_, v)| *v == best)
            .map(|(name, _)| name.clone())
    }

    fn max_rebalance_timeout(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    fn join_result(&self, member: &Member) -> JoinResult {
        let protocol = self.protocol.clone();
        let is_leader = self.leader.as_deref() == Some(member.id.as_str());
        let members = if is_leader {
            let name = protocol.clone().unwrap_or_default();
            self.members
                .values()
                .map(|m| JoinedMember {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    metadata: m.metadata_for(&name),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: ErrorCode::None,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: protocol,
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member.id.clone(),
            members,
        }
    }
}

/// Every group of the broker.
#[derive(Debug)]
pub struct Coordinator {
    config: GroupConfig,
    groups: HashMap<String, Group>,
    /// Makes member ids unique across broker restarts (chosen by the shell at start-up).
    nonce: String,
    next_seq: u64,
}

impl Coordinator {
    /// A coordinator with no groups. `nonce` goes into generated member ids so that ids from
    /// before a restart never match new ones.
    pub fn new(config: GroupConfig, nonce: impl Into<String>) -> Self {
        Self {
            config,
            groups: HashMap::new(),
            nonce: nonce.into(),
            next_seq: 0,
        }
    }

    fn new_member_id(&mut self, client_id: &str) -> String {
        self.next_seq += 1;
        format!("{client_id}-{}-{}", self.nonce, self.next_seq)
    }

    /// JoinGroup. The answer for this request may be in the returned outputs (addressed to
    /// `reply`) or come later, from another call or a tick.
    pub fn join(&mut self, now: i64, req: JoinRequest, reply: ReplyTo) -> Vec<Output> {
        let refuse = |error| {
            vec![Output::Join(
                reply,
                JoinResult::error(error, &req.member_id),
            )]
        };
        if req.group_id.is_empty() {
            return refuse(ErrorCode::InvalidGroupId);
        }
        if !(self.config.min_session_timeout_ms..=self.config.max_session_timeout_ms)
            .contains(&req.session_timeout_ms)
        {
            return refuse(ErrorCode::InvalidSessionTimeout);
        }
        let new_id = if req.member_id.is_empty() {
            Some(self.new_member_id(&req.client_id))
        } else {
            None
        };
        let group = self
            .groups
            .entry(req.group_id.clone())
            .or_insert_with(Group::new);
        if group.state == GroupState::Dead {
            return refuse(ErrorCode::CoordinatorNotAvailable);
        }
        let mut out = Vec::new();
        match new_id {
            Some(id) => join_unknown(group, &self.config, now, req, reply, id, &mut out),
            None => join_known(group, &self.config, now, req, reply, &mut out),
        }
        out.extend(try_complete_join(group, now));
        out
    }

    /// SyncGroup.
    pub fn sync(&mut self, now: i64, req: SyncRequest, reply: ReplyTo) -> Vec<Output> {
        let refuse = |error| vec![Output::Sync(reply, SyncResult::error(error))];
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return refuse(ErrorCode::UnknownMemberId);
        };
        if let Err(error) = check_member(group, &req.member_id, req.group_instance_id.as_deref()) {
            return refuse(error);
        }
        if req.generation_id != group.generation {
            return refuse(ErrorCode::IllegalGeneration);
        }
        match group.state {
            GroupState::Empty | GroupState::Dead => refuse(ErrorCode::UnknownMemberId),
            GroupState::PreparingRebalance => refuse(ErrorCode::RebalanceInProgress),
            GroupState::Stable => {
                let member = group.members.get_mut(&req.member_id).map(|m| {
                    m.renew(now);
                    m.assignment.clone()
                });
                vec![Output::Sync(
                    reply,
                    SyncResult {
                        error: ErrorCode::None,
                        assignment: member.unwrap_or_default(),
                    },
                )]
            }
            GroupState::CompletingRebalance => {
                let mut out = Vec::new();
                if let Some(member) = group.members.get_mut(&req.member_id) {
                    if let Some(previous) = member.awaiting_sync.replace(reply) {
                        // A client retried; the first request gets nothing useful.
                        out.push(Output::Sync(
                            previous,
                            SyncResult::error(ErrorCode::RebalanceInProgress),
                        ));
                    }
                    member.renew(now);
                }
                if group.leader.as_deref() == Some(req.member_id.as_str()) {
                    let assigned: HashMap<String, Bytes> = req.assignments.into_iter().collect();
                    for member in group.members.values_mut() {
                        // Members the leader left out get an empty assignment, never a stale one.
                        member.assignment = assigned.get(&member.id).cloned().unwrap_or_default();
                    }
                    group.state = GroupState::Stable;
                    for member in group.members.values_mut() {
                        if let Some(to) = member.awaiting_sync.take() {
                            out.push(Output::Sync(
                                to,
                                SyncResult {
                                    error: ErrorCode::None,
                                    assignment: member.assignment.clone(),
                                },
                            ));
                        }
                        member.renew(now);
                    }
                }
                out
            }
        }
    }

    /// Heartbeat.
    pub fn heartbeat(
        &mut self,
        now: i64,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> ErrorCode {
        let Some(group) = self.groups.get_mut(group_id) else {
            return ErrorCode::UnknownMemberId;
        };
        if let Err(error) = check_member(group, member_id, instance_id) {
            return error;
        }
        if let Some(member) = group.members.get_mut(member_id) {
            member.renew(now);
        }
        if generation_id != group.generation {
            return ErrorCode::IllegalGeneration;
        }
        match group.state {
            GroupState::Empty | GroupState::Dead => ErrorCode::UnknownMemberId,
            GroupState::PreparingRebalance => ErrorCode::RebalanceInProgress,
            GroupState::CompletingRebalance | GroupState::Stable => ErrorCode::None,
        }
    }

    /// LeaveGroup for one member (v3 sends several; call once per member). A member may be
    /// named by its id, or (static members, v3) by its instance id with an empty member id.
    pub fn leave(
        &mut self,
        now: i64,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> (ErrorCode, Vec<Output>) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return (ErrorCode::UnknownMemberId, Vec::new());
        };
        let member_id = match (member_id.is_empty(), instance_id) {
            (true, Some(instance)) => match group.instances.get(instance) {
                Some(id) => id.clone(),
                None => return (ErrorCode::UnknownMemberId, Vec::new()),
            },
            _ => member_id.to_owned(),
        };
        if let Err(error) = check_member(group, &member_id, instance_id) {
            return (error, Vec::new());
        }
        let mut out = remove_member(group, &member_id, now);
        out.extend(try_complete_join(group, now));
        self.forget_empty_groups();
        (ErrorCode::None, out)
    }

    /// Drops groups with no members and nothing pending, so that the table does not grow
    /// with every group name ever used. Their committed offsets are kept by the store (which
    /// is how ListGroups and DescribeGroups still show them, as Empty). Groups whose members
    /// committed stay, with their protocol type, until DeleteGroups: one small entry per group
    /// whose members ever committed (the store holds their offsets anyway).
    fn forget_empty_groups(&mut self) {
        self.groups.retain(|_, g| {
            g.member_committed
                || !(g.state == GroupState::Empty && g.members.is_empty() && g.pending.is_empty())
        });
    }

    /// Expires sessions, pending member ids and rebalance timeouts due at `now`.
    pub fn tick(&mut self, now: i64) -> Vec<Output> {
        let mut out = Vec::new();
        for group in self.groups.values_mut() {
            group.pending.retain(|_, expiry| *expiry > now);
            let expired: Vec<String> = group
                .members
                .values()
                .filter(|m| {
                    m.awaiting_join.is_none()
                        && m.awaiting_sync.is_none()
                        && m.session_deadline <= now
                })
                .map(|m| m.id.clone())
                .collect();
            for id in expired {
                out.extend(remove_member(group, &id, now));
            }
            out.extend(try_complete_join(group, now));
        }
        self.forget_empty_groups();
        out
    }

    /// The earliest time [`Self::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<i64> {
        self.groups
            .values()
            .flat_map(|g| {
                let sessions = g
                    .members
                    .values()
                    .filter(|m| m.awaiting_join.is_none() && m.awaiting_sync.is_none())
                    .map(|m| m.session_deadline);
                let rebalance = (g.state == GroupState::PreparingRebalance)
                    .then(|| g.rebalance_deadline.into_iter().chain(g.not_before))
                    .into_iter()
                    .flatten();
                sessions.chain(rebalance).chain(g.pending.values().copied())
            })
            .min()
    }

    /// Whether an OffsetCommit from this member may be stored (Kafka's rules): "simple"
    /// commits (generation -1, no member id) only to groups without members; otherwise the
    /// member must be current, and not in the middle of a sync.
    ///
    /// # Errors
    /// The Kafka error to answer every partition of the commit with.
    pub fn check_commit(
        &mut self,
        now: i64,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ErrorCode> {
        if group_id.is_empty() {
            return Err(ErrorCode::InvalidGroupId);
        }
        let Some(group) = self.groups.get_mut(group_id) else {
            return if generation_id < 0 {
                Ok(())
            } else {
                Err(ErrorCode::IllegalGeneration)
            };
        };
        // Kafka's order: fencing, simple commits, the rebalance, then member and generation.
        if let Some(instance) = instance_id {
            if group
                .instances
                .get(instance)
                .is_some_and(|current| current != member_id)
            {
                return Err(ErrorCode::FencedInstanceId);
            }
        }
        if generation_id < 0 && group.members.is_empty() {
            return Ok(());
        }
        if group.state == GroupState::CompletingRebalance {
            return Err(ErrorCode::RebalanceInProgress);
        }
        check_member(group, member_id, instance_id)?;
        if let Some(member) = group.members.get_mut(member_id) {
            member.renew(now);
        }
        if generation_id != group.generation {
            return Err(ErrorCode::IllegalGeneration);
        }
        group.member_committed = true;
        Ok(())
    }

    /// A group's description; `None` when it does not exist.
    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let group = self.groups.get(group_id)?;
        let protocol = group.protocol.clone().unwrap_or_default();
        Some(GroupDescription {
            state: group.state,
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            members: group
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
            protocol,
        })
    }

    /// Every group with members or state, with its state and protocol type.
    pub fn list(&self) -> Vec<(String, GroupState, String)> {
        let mut groups: Vec<_> = self
            .groups
            .iter()
            .filter(|(_, g)| g.state != GroupState::Dead)
            .map(|(id, g)| {
                (
                    id.clone(),
                    g.state,
                    g.protocol_type.clone().unwrap_or_default(),
                )
            })
            .collect();
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        groups
    }

    /// Deletes a group that has no members (DeleteGroups); its offsets are the caller's.
    ///
    /// # Errors
    /// NON_EMPTY_GROUP when it has members.
    pub fn delete(&mut self, group_id: &str) -> Result<(), ErrorCode> {
        match self.groups.get(group_id) {
            Some(g) if !g.members.is_empty() => Err(ErrorCode::NonEmptyGroup),
            _ => {
                self.groups.remove(group_id);
                Ok(())
            }
        }
    }
}

/// The member-id and static-instance checks shared by sync, heartbeat, leave and commit.
fn check_member(
    group: &Group,
    member_id: &str,
    instance_id: Option<&str>,
) -> Result<(), ErrorCode> {
    if let Some(instance) = instance_id {
        match group.instances.get(instance) {
            Some(current) if current != member_id => return Err(ErrorCode::FencedInstanceId),
            _ => {}
        }
    }
    if group.members.contains_key(member_id) {
        Ok(())
    } else {
        Err(ErrorCode::UnknownMemberId)
    }
}

fn join_unknown(
    group: &mut Group,
    config: &GroupConfig,
    now: i64,
    req: JoinRequest,
    reply: ReplyTo,
    id: String,
    out: &mut Vec<Output>,
) {
    if let Some(instance) = req.group_instance_id.clone() {
        if let Some(old_id) = group.instances.get(&instance).cloned() {
            if group.members.contains_key(&old_id) {
                replace_static_member(group, now, req, reply, &old_id, id, out);
                return;
            }
        }
    } else if req.version >= 4 {
        // KIP-394: the client must come back with this id, so a client that crashes between
        // join and response cannot leave a ghost member behind.
        group.pending.insert(
            id.clone(),
            now.saturating_add(i64::from(req.session_timeout_ms)),
        );
        out.push(Output::Join(
            reply,
            JoinResult::error(ErrorCode::MemberIdRequired, &id),
        ));
        return;
    }
    if !group.accepts(&req.protocol_type, &req.protocols, None) {
        out.push(Output::Join(
            reply,
            JoinResult::error(ErrorCode::InconsistentGroupProtocol, ""),
        ));
        return;
    }
    add_member(group, config, now, req, reply, id, out);
}

fn join_known(
    group: &mut Group,
    config: &GroupConfig,
    now: i64,
    req: JoinRequest,
    reply: ReplyTo,
    out: &mut Vec<Output>,
) {
    if group.pending.remove(&req.member_id).is_some() {
        if !group.accepts(&req.protocol_type, &req.protocols, None) {
            out.push(Output::Join(
                reply,
                JoinResult::error(ErrorCode::InconsistentGroupProtocol, &req.member_id),
            ));
            return;
        }
        let id = req.member_id.clone();
        add_member(group, config, now, req, reply, id, out);
        return;
    }
    if let Err(error) = check_member(group, &req.member_id, req.group_instance_id.as_deref()) {
        out.push(Output::Join(
            reply,
            JoinResult::error(error, &req.member_id),
        ));
        return;
    }
    if !group.accepts(&req.protocol_type, &req.protocols, Some(&req.member_id)) {
        out.push(Output::Join(
            reply,
            JoinResult::error(ErrorCode::InconsistentGroupProtocol, &req.member_id),
        ));
        return;
    }
    let is_leader = group.leader.as_deref() == Some(req.member_id.as_str());
    let Some(member) = group.members.get_mut(&req.member_id) else {
        return;
    };
    member.renew(now);
    let changed = member.protocols != req.protocols;
    // A leader rejoining a stable group asks for a new assignment (new topics, say).
    let must_rebalance = changed || (is_leader && group.state == GroupState::Stable);
    match group.state {
        GroupState::PreparingRebalance => {
            update_member(member, &req);
            if let Some(previous) = member.awaiting_join.replace(reply) {
                out.push(Output::Join(
                    previous,
                    JoinResult::error(ErrorCode::RebalanceInProgress, &req.member_id),
                ));
            }
        }
        GroupState::CompletingRebalance | GroupState::Stable if !must_rebalance => {
            // Nothing changed: the current generation's answer again.
            let member = member.clone();
            out.push(Output::Join(reply, group.join_result(&member)));
        }
        GroupState::CompletingRebalance | GroupState::Stable => {
            update_member(member, &req);
            member.awaiting_join = Some(reply);
            prepare_rebalance(group, now, out);
        }
        GroupState::Empty | GroupState::Dead => {
            out.push(Output::Join(
                reply,
                JoinResult::error(ErrorCode::UnknownMemberId, &req.member_id),
            ));
        }
    }
}

fn update_member(member: &mut Member, req: &JoinRequest) {
    member.protocols.clone_from(&req.protocols);
    member.protocol_type.clone_from(&req.protocol_type);
    member.session_timeout_ms = req.session_timeout_ms;
    member.rebalance_timeout_ms = req.rebalance_timeout_ms;
    member.client_id.clone_from(&req.client_id);
    member.client_host.clone_from(&req.client_host);
}

fn add_member(
    group: &mut Group,
    config: &GroupConfig,
    now: i64,
    req: JoinRequest,
    reply: ReplyTo,
    id: String,
    out: &mut Vec<Output>,
) {
    let joined_seq = group
        .members
        .values()
        .map(|m| m.joined_seq)
        .max()
        .map_or(0, |s| s + 1);
    if let Some(instance) = &req.group_instance_id {
        group.instances.insert(instance.clone(), id.clone());
    }
    let mut member = Member {
        id: id.clone(),
        instance_id: req.group_instance_id,
        client_id: req.client_id,
        client_host: req.client_host,
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        protocol_type: req.protocol_type,
        protocols: req.protocols,
        assignment: Bytes::new(),
        awaiting_join: Some(reply),
        awaiting_sync: None,
        session_deadline: 0,
        joined_seq,
    };
    member.renew(now);
    let was_empty = group.state == GroupState::Empty;
    group.members.insert(id, member);
    if was_empty {
        // The initial delay: wait for the rest of a starting group, extended by each joiner
        // up to the rebalance timeout.
        group.not_before = Some(now.saturating_add(config.initial_rebalance_delay_ms));
        prepare_rebalance(group, now, out);
    } else if group.state == GroupState::PreparingRebalance {
        if let (Some(not_before), Some(deadline)) = (group.not_before, group.rebalance_deadline) {
            group.not_before = Some(
                not_before
                    .max(now.saturating_add(config.initial_rebalance_delay_ms))
                    .min(deadline),
            );
        }
    } else {
        prepare_rebalance(group, now, out);
    }
}

fn replace_static_member(
    group: &mut Group,
    now: i64,
    req: JoinRequest,
    reply: ReplyTo,
    old_id: &str,
    new_id: String,
    out: &mut Vec<Output>,
) {
    let Some(mut member) = group.members.remove(old_id) else {
        return;
    };
    // Whatever the old incarnation was waiting for is answered: it is fenced.
    if let Some(to) = member.awaiting_join.take() {
        out.push(Output::Join(
            to,
            JoinResult::error(ErrorCode::FencedInstanceId, old_id),
        ));
    }
    if let Some(to) = member.awaiting_sync.take() {
        out.push(Output::Sync(
            to,
            SyncResult::error(ErrorCode::FencedInstanceId),
        ));
    }
    let changed = member.protocols != req.protocols;
    member.id.clone_from(&new_id);
    update_member(&mut member, &req);
    member.renew(now);
    if group.leader.as_deref() == Some(old_id) {
        group.leader = Some(new_id.clone());
    }
    if let Some(instance) = &req.group_instance_id {
        group.instances.insert(instance.clone(), new_id.clone());
    }
    match group.state {
        GroupState::Stable if !changed => {
            // No rebalance: the member keeps its assignment, which it reads with SyncGroup.
            let mut result = group.join_result(&member);
            result.members.clear();
            group.members.insert(new_id, member);
            out.push(Output::Join(reply, result));
        }
        _ => {
            member.awaiting_join = Some(reply);
            group.members.insert(new_id, member);
            prepare_rebalance(group, now, out);
        }
    }
}

/// Moves the group to PreparingRebalance (if not there already) and sets its deadline.
fn prepare_rebalance(group: &mut Group, now: i64, out: &mut Vec<Output>) {
    if group.state == GroupState::PreparingRebalance {
        return;
    }
    // Syncs parked for the generation being abandoned are told to rejoin.
    for m in group.members.values_mut() {
        if let Some(to) = m.awaiting_sync.take() {
            out.push(Output::Sync(
                to,
                SyncResult::error(ErrorCode::RebalanceInProgress),
            ));
        }
    }
    group.state = GroupState::PreparingRebalance;
    group.rebalance_deadline = Some(now.saturating_add(group.max_rebalance_timeout()));
    if let (Some(not_before), Some(deadline)) = (group.not_before, group.rebalance_deadline) {
        group.not_before = Some(not_before.min(deadline));
    }
}

/// Removes a member; rebalances a group that had a generation in progress or in force.
fn remove_member(group: &mut Group, id: &str, now: i64) -> Vec<Output> {
    let mut out = Vec::new();
    let Some(member) = group.members.remove(id) else {
        return out;
    };
    if let Some(instance) = &member.instance_id {
        if group.instances.get(instance).map(String::as_str) == Some(id) {
            group.instances.remove(instance);
        }
    }
    if let Some(to) = member.awaiting_join {
        out.push(Output::Join(
            to,
            JoinResult::error(ErrorCode::UnknownMemberId, id),
        ));
    }
    if let Some(to) = member.awaiting_sync {
        out.push(Output::Sync(
            to,
            SyncResult::error(ErrorCode::UnknownMemberId),
        ));
    }
    match group.state {
        GroupState::Stable | GroupState::CompletingRebalance if group.members.is_empty() => {
            become_empty(group)
        }
        GroupState::Stable | GroupState::CompletingRebalance => {
            group.not_before = None;
            prepare_rebalance(group, now, &mut out);
        }
        GroupState::PreparingRebalance | GroupState::Empty | GroupState::Dead => {}
    }
    out
}

fn become_empty(group: &mut Group) {
    group.state = GroupState::Empty;
    group.generation += 1;
    group.protocol = None;
    // Kept, as in Kafka: an empty group is still the kind of group its members made it.
    group.leader = None;
    group.rebalance_deadline = None;
    group.not_before = None;
}

/// Completes PreparingRebalance when everyone rejoined (and the initial delay passed), or
/// when the rebalance timeout fired.
fn try_complete_join(group: &mut Group, now: i64) -> Vec<Output> {
    let mut out = Vec::new();
    if group.state != GroupState::PreparingRebalance {
        return out;
    }
    let timed_out = group.rebalance_deadline.is_some_and(|d| now >= d);
    let delay_over = group.not_before.is_none_or(|t| now >= t);
    if !(timed_out || (delay_over && group.all_joined())) {
        return out;
    }
    // Members that did not rejoin in time are out.
    let missing: Vec<String> = group
        .members
        .values()
        .filter(|m| m.awaiting_join.is_none())
        .map(|m| m.id.clone())
        .collect();
    for id in missing {
        if let Some(member) = group.members.remove(&id) {
            if let Some(instance) = &member.instance_id {
                group.instances.remove(instance);
            }
        }
    }
    group.pending.clear();
    group.not_before = None;
    group.rebalance_deadline = None;
    if group.members.is_empty() {
        become_empty(group);
        return out;
    }
    group.generation += 1;
    group.protocol_type = group
        .members
        .values()
        .next()
        .map(|m| m.protocol_type.clone());
    group.protocol = group.select_protocol();
    let leader_stays = group
        .leader
        .as_ref()
        .is_some_and(|l| group.members.contains_key(l));
    if !leader_stays {
        group.leader = group
            .members
            .values()
            .min_by_key(|m| m.joined_seq)
            .map(|m| m.id.clone());
    }
    group.state = GroupState::CompletingRebalance;
    let answers: Vec<(ReplyTo, JoinResult)> = group
        .members
        .values()
        .filter_map(|m| m.awaiting_join.map(|to| (to, group.join_result(m))))
        .collect();
    for member in group.members.values_mut() {
        member.awaiting_join = None;
        member.assignment = Bytes::new();
        member.renew(now);
    }
    out.extend(
        answers
            .into_iter()
            .map(|(to, result)| Output::Join(to, result)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELAY: i64 = 3_000;
    const SESSION: i32 = 10_000;
    const REBALANCE: i32 = 30_000;

    fn coordinator() -> Coordinator {
        Coordinator::new(
            GroupConfig {
                initial_rebalance_delay_ms: DELAY,
                ..GroupConfig::default()
            },
            "n",
        )
    }

    fn join_req(member_id: &str, protocols: &[&str], version: i16) -> JoinRequest {
        JoinRequest {
            group_id: "g".into(),
            member_id: member_id.into(),
            group_instance_id: None,
            session_timeout_ms: SESSION,
            rebalance_timeout_ms: REBALANCE,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|p| ((*p).to_owned(), Bytes::from(format!("meta-{p}"))))
                .collect(),
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            version,
        }
    }

    fn sync_req(member_id: &str, generation_id: i32, assignments: &[(&str, &str)]) -> SyncRequest {
        SyncRequest {
            group_id: "g".into(),
            member_id: member_id.into(),
            group_instance_id: None,
            generation_id,
            assignments: assignments
                .iter()
                .map(|(m, a)| ((*m).to_owned(), Bytes::from((*a).to_owned())))
                .collect(),
        }
    }

    fn joins(out: &[Output]) -> Vec<(ReplyTo, JoinResult)> {
        out.iter()
            .filter_map(|o| {
                if let Output::Join(to, r) = o {
                    Some((*to, r.clone()))
                } else {
                    None
                }
            })
            .collect()
    }

    fn syncs(out: &[Output]) -> Vec<(ReplyTo, SyncResult)> {
        out.iter()
            .filter_map(|o| {
                if let Output::Sync(to, r) = o {
                    Some((*to, r.clone()))
                } else {
                    None
                }
            })
            .collect()
    }

    fn state(c: &Coordinator) -> GroupState {
        c.describe("g").map_or(GroupState::Dead, |d| d.state)
    }

    /// Joins `n` members (v3, no KIP-394) at t=0, completes the initial delay, syncs with the
    /// leader giving each member its own id as assignment. Returns the member ids (leader
    /// first) and the generation.
    fn stable_group(c: &mut Coordinator, n: u64) -> (Vec<String>, i32) {
        let mut out = Vec::new();
        for i in 0..n {
            out.extend(c.join(0, join_req("", &["range"], 3), i));
        }
        assert!(joins(&out).is_empty(), "parked during the initial delay");
        let done = joins(&c.tick(DELAY));
        assert_eq!(done.len() as u64, n);
        let leader = done[0].1.leader.clone();
        let generation = done[0].1.generation_id;
        let mut ids: Vec<String> = done.iter().map(|(_, r)| r.member_id.clone()).collect();
        ids.sort_by_key(|id| id != &leader);
        let assignments: Vec<(&str, &str)> =
            ids.iter().map(|id| (id.as_str(), id.as_str())).collect();
        for (i, id) in ids.iter().enumerate().skip(1) {
            assert!(
                c.sync(DELAY, sync_req(id, generation, &[]), 100 + i as u64)
                    .is_empty(),
                "followers wait for the leader"
            );
        }
        let out = c.sync(DELAY, sync_req(&ids[0], generation, &assignments), 100);
        assert_eq!(syncs(&out).len() as u64, n);
        for (_, r) in syncs(&out) {
            assert_eq!(r.error, ErrorCode::None);
        }
        assert_eq!(state(c), GroupState::Stable);
        (ids, generation)
    }

    #[test]
    fn a_single_member_joins_after_the_initial_delay_and_syncs() {
        let mut c = coordinator();
        assert!(
            c.join(0, join_req("", &["range", "roundrobin"], 3), 1)
                .is_empty()
        );
        assert_eq!(state(&c), GroupState::PreparingRebalance);
        assert_eq!(c.next_deadline(), Some(DELAY));
        assert!(c.tick(DELAY - 1).is_empty());
        let done = joins(&c.tick(DELAY));
        let (to, r) = &done[0];
        assert_eq!(*to, 1);
        assert_eq!(r.error, ErrorCode::None);
        assert_eq!(r.generation_id, 1);
        assert_eq!(r.leader, r.member_id);
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
        assert_eq!(r.members.len(), 1);
        assert_eq!(r.members[0].metadata, Bytes::from("meta-range"));
        assert_eq!(state(&c), GroupState::CompletingRebalance);
        let id = r.member_id.clone();
        assert_eq!(c.heartbeat(DELAY, "g", &id, None, 1), ErrorCode::None);
        let out = syncs(&c.sync(DELAY, sync_req(&id, 1, &[(&id, "mine")]), 2));
        assert_eq!(
            out,
            [(
                2,
                SyncResult {
                    error: ErrorCode::None,
                    assignment: Bytes::from("mine")
                }
            )]
        );
        assert_eq!(state(&c), GroupState::Stable);
        // Stable: a sync returns the stored assignment at once.
        assert_eq!(
            syncs(&c.sync(DELAY + 1, sync_req(&id, 1, &[]), 3))[0]
                .1
                .assignment,
            Bytes::from("mine")
        );
    }

    #[test]
    fn kip_394_member_id_round_trip() {
        let mut c = coordinator();
        let first = joins(&c.join(0, join_req("", &["range"], 4), 1));
        assert_eq!(first[0].1.error, ErrorCode::MemberIdRequired);
        let id = first[0].1.member_id.clone();
        assert!(!id.is_empty());
        // The pending id holds the group's first rebalance back until it comes back.
        assert!(c.join(10, join_req(&id, &["range"], 4), 2).is_empty());
        let done = joins(&c.tick(DELAY + 10));
        assert_eq!(done[0].1.member_id, id);
        assert_eq!(done[0].1.error, ErrorCode::None);
        // An id nobody handed out is unknown.
        let bogus = joins(&c.join(DELAY + 20, join_req("made-up", &["range"], 4), 3));
        assert_eq!(bogus[0].1.error, ErrorCode::UnknownMemberId);
    }

    #[test]
    fn pending_member_ids_expire_after_the_session_timeout() {
        let mut c = coordinator();
        let (ids, generation) = stable_group(&mut c, 1);
        let pending = joins(&c.join(DELAY, join_req("", &["range"], 4), 5))[0]
            .1
            .member_id
            .clone();
        assert_eq!(
            state(&c),
            GroupState::Stable,
            "a pending id is not a member yet"
        );
        let expiry = DELAY + i64::from(SESSION);
        assert_eq!(
            c.heartbeat(expiry - 1, "g", &ids[0], None, generation),
            ErrorCode::None
        );
        assert!(c.tick(expiry).is_empty());
        let late = joins(&c.join(expiry + 1, join_req(&pending, &["range"], 4), 6));
        assert_eq!(late[0].1.error, ErrorCode::UnknownMemberId);
    }

    #[test]
    fn only_the_leader_gets_the_members_and_left_out_members_get_empty_assignments() {
        let mut c = coordinator();
        for i in 0..3 {
            c.join(i, join_req("", &["range"], 3), i as u64);
        }
        let done = joins(&c.tick(DELAY + 2));
        assert_eq!(done.len(), 3);
        let leader = done[0].1.leader.clone();
        for (_, r) in &done {
            assert_eq!(r.generation_id, 1);
            assert_eq!(r.leader, leader);
            assert_eq!(r.members.len(), if r.member_id == leader { 3 } else { 0 });
        }
        let followers: Vec<String> = done
            .iter()
            .map(|(_, r)| r.member_id.clone())
            .filter(|m| *m != leader)
            .collect();
        assert!(
            c.sync(DELAY + 3, sync_req(&followers[0], 1, &[]), 10)
                .is_empty()
        );
        assert!(
            c.sync(DELAY + 3, sync_req(&followers[1], 1, &[]), 11)
                .is_empty()
        );
        let out = syncs(&c.sync(
            DELAY + 4,
            sync_req(&leader, 1, &[(&leader, "L"), (&followers[0], "F0")]),
            12,
        ));
        let by_reply: HashMap<ReplyTo, Bytes> =
            out.into_iter().map(|(to, r)| (to, r.assignment)).collect();
        assert_eq!(by_reply[&12], Bytes::from("L"));
        assert_eq!(by_reply[&10], Bytes::from("F0"));
        assert_eq!(
            by_reply[&11],
            Bytes::new(),
            "left out by the leader: empty, not absent"
        );
    }

    #[test]
    fn the_initial_delay_is_extended_by_joiners_up_to_the_rebalance_timeout() {
        let mut c = coordinator();
        c.join(0, join_req("", &["range"], 3), 1);
        c.join(2_000, join_req("", &["range"], 3), 2);
        assert!(
            c.tick(DELAY).is_empty(),
            "the second joiner pushed the delay to 5000"
        );
        assert_eq!(joins(&c.tick(5_000)).len(), 2);
        // A trickle of joiners cannot hold the group back past the rebalance timeout.
        let mut c = coordinator();
        for i in 0..15 {
            assert!(joins(&c.join(i * 2_000, join_req("", &["range"], 3), i as u64)).is_empty());
        }
        assert_eq!(joins(&c.tick(i64::from(REBALANCE))).len(), 15);
    }

    #[test]
    fn heartbeat_errors() {
        let mut c = coordinator();
        assert_eq!(
            c.heartbeat(0, "nope", "m", None, 1),
            ErrorCode::UnknownMemberId
        );
        let (ids, generation) = stable_group(&mut c, 2);
        assert_eq!(
            c.heartbeat(DELAY, "g", "stranger", None, generation),
            ErrorCode::UnknownMemberId
        );
        assert_eq!(
            c.heartbeat(DELAY, "g", &ids[1], None, generation + 1),
            ErrorCode::IllegalGeneration
        );
        assert_eq!(
            c.heartbeat(DELAY, "g", &ids[1], None, generation),
            ErrorCode::None
        );
        // A new member starts a rebalance: the others learn it from their heartbeat.
        c.join(DELAY + 1, join_req("", &["range"], 3), 9);
        assert_eq!(state(&c), GroupState::PreparingRebalance);
        assert_eq!(
            c.heartbeat(DELAY + 2, "g", &ids[1], None, generation),
            ErrorCode::RebalanceInProgress
        );
        assert_eq!(
            syncs(&c.sync(DELAY + 2, sync_req(&ids[1], generation, &[]), 8))[0]
                .1
                .error,
            ErrorCode::RebalanceInProgress
        );
    }

    #[test]
    fn a_clean_leave_rebalances_the_rest_at_once() {
        let mut c = coordinator();
        let (ids, generation) = stable_group(&mut c, 3);
        let (error, out) = c.leave(5_000, "g", &ids[2], None);
        assert_eq!(error, ErrorCode::None);
        assert!(out.is_empty());
        assert_eq!(state(&c), GroupState::PreparingRebalance);
        assert!(
            c.join(5_001, join_req(&ids[1], &["range"], 3), 21)
                .is_empty()
        );
        // The last one back completes the join without waiting for any delay.
        let done = joins(&c.join(5_002, join_req(&ids[0], &["range"], 3), 20));
        assert_eq!(done.len(), 2);
        for (_, r) in &done {
            assert_eq!(r.generation_id, generation + 1);
            assert_eq!(r.leader, ids[0], "the old leader rejoined and stays leader");
        }
        assert_eq!(
            c.leave(5_003, "g", &ids[2], None).0,
            ErrorCode::UnknownMemberId
        );
    }

    #[test]
    fn a_dead_member_is_removed_after_its_session_timeout() {
        let mut c = coordinator();
        let (ids, generation) = stable_group(&mut c, 2);
        let expiry = DELAY + i64::from(SESSION);
        // Member 0 keeps heartbeating, member 1 goes silent.
        assert_eq!(
            c.heartbeat(expiry - 1, "g", &ids[0], None, generation),
            ErrorCode::None
        );
        assert!(c.next_deadline() <= Some(expiry));
        c.tick(expiry);
        assert_eq!(state(&c), GroupState::PreparingRebalance);
        assert_eq!(c.describe("g").unwrap().members.len(), 1);
        let done = joins(&c.join(expiry + 1, join_req(&ids[0], &["range"], 3), 30));
        assert_eq!(done[0].1.generation_id, generation + 1);
        assert_eq!(done[0].1.members.len(), 1);
    }

    #[test]
    fn members_that_do_not_rejoin_in_time_are_dropped_at_the_rebalance_timeout() {
        let mut c = coordinator();
        let (ids, generation) = stable_group(&mut c, 2);
        let out = c.join(4_000, join_req(&ids[0], &["range"], 3), 40);
        assert!(
            joins(&out).is_empty(),
            "the leader rejoining starts a rebalance and waits"
        );
        // Member 1 keeps heartbeating but never rejoins.
        for t in (4_001..4_000 + i64::from(REBALANCE)).step_by(3_000) {
            assert_eq!(
                c.heartbeat(t, "g", &ids[1], None, generation),
                ErrorCode::RebalanceInProgress
            );
            assert!(c.tick(t).is_empty());
        }
        let done = joins(&c.tick(4_000 + i64::from(REBALANCE)));
        assert_eq!(done.len(), 1);
        assert_eq!(
            done[0]
                .1
                .members
                .iter()
                .map(|m| m.member_id.clone())
                .collect::<Vec<_>>(),
            [ids[0].clone()]
        );
        assert_eq!(
            c.heartbeat(40_000, "g", &ids[1], None, generation + 1),
            ErrorCode::UnknownMemberId
        );
    }

    #[test]
    fn the_protocol_every_member_supports_with_the_most_votes_wins() {
        let mut c = coordinator();
        c.join(0, join_req("", &["range", "roundrobin"], 3), 1);
        c.join(0, join_req("", &["roundrobin", "range"], 3), 2);
        c.join(0, join_req("", &["roundrobin", "sticky"], 3), 3);
        let refused = joins(&c.join(0, join_req("", &["cooperative-sticky"], 3), 4));
        assert_eq!(refused[0].1.error, ErrorCode::InconsistentGroupProtocol);
        let done = joins(&c.tick(DELAY));
        assert!(
            done.iter()
                .all(|(_, r)| r.protocol_name.as_deref() == Some("roundrobin"))
        );
        let leader = done.iter().find(|(_, r)| !r.members.is_empty()).unwrap();
        assert!(
            leader
                .1
                .members
                .iter()
                .all(|m| m.metadata == "meta-roundrobin")
        );
        let mut other_type = join_req("", &["roundrobin"], 3);
        other_type.protocol_type = "connect".into();
        assert_eq!(
            joins(&c.join(DELAY, other_type, 5))[0].1.error,
            ErrorCode::InconsistentGroupProtocol
        );
    }

    #[test]
    fn follower_rejoins_with_the_same_metadata_get_the_current_generation_and_leader_rejoins_rebalance()
     {
        let mut c = coordinator();
        let (ids, generation) = stable_group(&mut c, 2);
        let again = joins(&c.join(4_000, join_req(&ids[1], &["range"], 3), 50));
        assert_eq!(again[0].1.generation_id, generation);
        assert!(again[0].1.members.is_empty());
        assert_eq!(state(&c), GroupState::Stable);
        let changed = c.join(4_001, join_req(&ids[1], &["roundrobin", "range"], 3), 51);
        assert!(joins(&changed).is_empty());
        assert_eq!(state(&c), GroupState::PreparingRebalance);
    }

    #[test]
    fn static_members_rejoin_without_a_rebalance_and_fence_their_old_id() {
        let mut c = coordinator();
        let mut req = join_req("", &["range"], 5);
        req.group_instance_id = Some("instance-a".into());
        assert!(
            c.join(0, req.clone(), 1).is_empty(),
            "static members skip KIP-394"
        );
        let mut other = join_req("", &["range"], 5);
        other.group_instance_id = Some("instance-b".into());
        c.join(0, other, 2);
        let done = joins(&c.tick(DELAY));
        let a = done.iter().find(|(to, _)| *to == 1).unwrap().1.clone();
        let leader = a.leader.clone();
        let b_id = done
            .iter()
            .find(|(to, _)| *to == 2)
            .unwrap()
            .1
            .member_id
            .clone();
        c.sync(DELAY, sync_req(&b_id, 1, &[]), 3);
        c.sync(
            DELAY,
            sync_req(&leader, 1, &[(&a.member_id, "A"), (&b_id, "B")]),
            4,
        );
        assert_eq!(state(&c), GroupState::Stable);

        // instance-a restarts: a new member id, same generation, no rebalance.
        let rejoined = joins(&c.join(5_000, req, 5));
        let new_a = rejoined[0].1.clone();
        assert_eq!(new_a.error, ErrorCode::None);
        assert_ne!(new_a.member_id, a.member_id);
        assert_eq!(new_a.generation_id, 1);
        assert_eq!(state(&c), GroupState::Stable);
        let mut sync = sync_req(&new_a.member_id, 1, &[]);
        sync.group_instance_id = Some("instance-a".into());
        assert_eq!(
            syncs(&c.sync(5_001, sync, 6))[0].1.assignment,
            Bytes::from("A")
        );
        assert_eq!(
            c.heartbeat(5_002, "g", &a.member_id, Some("instance-a"), 1),
            ErrorCode::FencedInstanceId
        );
        assert_eq!(
            c.heartbeat(5_002, "g", &new_a.member_id, Some("instance-a"), 1),
            ErrorCode::None
        );
        // Leaving by instance id (LeaveGroup v3).
        assert_eq!(
            c.leave(5_003, "g", "", Some("instance-a")).0,
            ErrorCode::None
        );
        assert_eq!(state(&c), GroupState::PreparingRebalance);
    }

    #[test]
    fn commit_rules() {
        let mut c = coordinator();
        assert_eq!(
            c.check_commit(0, "simple", "", None, -1),
            Ok(()),
            "unknown group, simple commit"
        );
        assert_eq!(
            c.check_commit(0, "simple", "m", None, 3),
            Err(ErrorCode::IllegalGeneration)
        );
        assert_eq!(
            c.check_commit(0, "", "", None, -1),
            Err(ErrorCode::InvalidGroupId)
        );
        c.join(0, join_req("", &["range"], 3), 1);
        let done = joins(&c.tick(DELAY));
        let id = done[0].1.member_id.clone();
        assert_eq!(
            c.check_commit(DELAY, "g", &id, None, 1),
            Err(ErrorCode::RebalanceInProgress)
        );
        c.sync(DELAY, sync_req(&id, 1, &[(&id, "x")]), 2);
        assert_eq!(c.check_commit(DELAY, "g", &id, None, 1), Ok(()));
        assert_eq!(
            c.check_commit(DELAY, "g", &id, None, 2),
            Err(ErrorCode::IllegalGeneration)
        );
        assert_eq!(
            c.check_commit(DELAY, "g", "", None, -1),
            Err(ErrorCode::UnknownMemberId),
            "a group with members"
        );
        c.leave(DELAY, "g", &id, None);
        assert_eq!(
            c.check_commit(DELAY, "g", "", None, -1),
            Ok(()),
            "empty again"
        );
    }

    #[test]
    fn invalid_joins() {
        let mut c = coordinator();
        let mut req = join_req("", &["range"], 3);
        req.session_timeout_ms = 100;
        assert_eq!(
            joins(&c.join(0, req, 1))[0].1.error,
            ErrorCode::InvalidSessionTimeout
        );
        let mut req = join_req("", &["range"], 3);
        req.group_id = String::new();
        assert_eq!(
            joins(&c.join(0, req, 2))[0].1.error,
            ErrorCode::InvalidGroupId
        );
        assert_eq!(
            joins(&c.join(0, join_req("", &[], 3), 3))[0].1.error,
            ErrorCode::InconsistentGroupProtocol
        );
    }

    #[test]
    fn delete_list_and_describe() {
        let mut c = coordinator();
        let (ids, _) = stable_group(&mut c, 1);
        assert_eq!(
            c.list(),
            [("g".to_owned(), GroupState::Stable, "consumer".to_owned())]
        );
        let d = c.describe("g").unwrap();
        assert_eq!((d.protocol.as_str(), d.members.len()), ("range", 1));
        assert_eq!(d.members[0].assignment, Bytes::from(ids[0].clone()));
        assert_eq!(c.delete("g"), Err(ErrorCode::NonEmptyGroup));
        c.leave(DELAY, "g", &ids[0], None);
        assert_eq!(c.delete("g"), Ok(()));
        assert!(c.describe("g").is_none());
    }

    #[test]
    fn completing_rebalance_rules() {
        let mut c = coordinator();
        for i in 0..2 {
            c.join(0, join_req("", &["range"], 3), i);
        }
        let done = joins(&c.tick(DELAY));
        let leader = done[0].1.leader.clone();
        let follower = done
            .iter()
            .map(|(_, r)| r.member_id.clone())
            .find(|m| *m != leader)
            .unwrap();
        assert_eq!(state(&c), GroupState::CompletingRebalance);
        // Same metadata: the same result again; heartbeats are fine.
        let again = joins(&c.join(DELAY + 1, join_req(&follower, &["range"], 3), 10));
        assert_eq!(
            (again[0].1.error, again[0].1.generation_id),
            (ErrorCode::None, 1)
        );
        assert_eq!(
            c.heartbeat(DELAY + 1, "g", &follower, None, 1),
            ErrorCode::None
        );
        // Sync errors.
        assert_eq!(
            syncs(&c.sync(DELAY + 1, sync_req(&follower, 2, &[]), 11))[0]
                .1
                .error,
            ErrorCode::IllegalGeneration
        );
        assert_eq!(
            syncs(&c.sync(DELAY + 1, sync_req("nobody", 1, &[]), 12))[0]
                .1
                .error,
            ErrorCode::UnknownMemberId
        );
        assert_eq!(
            syncs(&c.sync(
                DELAY + 1,
                SyncRequest {
                    group_id: "other".into(),
                    ..sync_req(&follower, 1, &[])
                },
                13
            ))[0]
                .1
                .error,
            ErrorCode::UnknownMemberId
        );
        // The follower waits for the leader; the leader leaves instead: the follower is told to
        // rejoin, and the group rebalances without the leader.
        assert!(
            c.sync(DELAY + 2, sync_req(&follower, 1, &[]), 14)
                .is_empty()
        );
        let (error, out) = c.leave(DELAY + 3, "g", &leader, None);
        assert_eq!(error, ErrorCode::None);
        assert_eq!(
            syncs(&out),
            [(14, SyncResult::error(ErrorCode::RebalanceInProgress))]
        );
        assert_eq!(state(&c), GroupState::PreparingRebalance);
        let rejoined = joins(&c.join(DELAY + 4, join_req(&follower, &["range"], 3), 15));
        assert_eq!(
            (rejoined[0].1.generation_id, rejoined[0].1.leader.clone()),
            (2, follower.clone()),
            "a new leader is elected"
        );
    }

    #[test]
    fn empty_groups_refuse_members_and_the_last_leave_empties_a_group() {
        let mut c = coordinator();
        let (ids, generation) = stable_group(&mut c, 1);
        let (error, _) = c.leave(DELAY + 1, "g", &ids[0], None);
        assert_eq!(error, ErrorCode::None);
        assert_eq!(
            state(&c),
            GroupState::Dead,
            "an empty group is forgotten (its offsets are not)"
        );
        assert!(c.list().is_empty());
        assert_eq!(
            c.heartbeat(DELAY + 2, "g", &ids[0], None, generation),
            ErrorCode::UnknownMemberId
        );
        assert_eq!(
            joins(&c.join(DELAY + 2, join_req(&ids[0], &["range"], 3), 1))[0]
                .1
                .error,
            ErrorCode::UnknownMemberId
        );
        assert_eq!(
            syncs(&c.sync(DELAY + 2, sync_req(&ids[0], generation + 1, &[]), 2))[0]
                .1
                .error,
            ErrorCode::UnknownMemberId
        );
        assert_eq!(
            c.leave(DELAY + 2, "nope", "m", None).0,
            ErrorCode::UnknownMemberId
        );
        assert_eq!(c.next_deadline(), None, "nothing left to time");
    }

    #[test]
    fn a_group_whose_members_committed_stays_a_consumer_group_when_empty() {
        let mut c = coordinator();
        let (ids, generation) = stable_group(&mut c, 1);
        assert_eq!(
            c.check_commit(DELAY + 1, "g", &ids[0], None, generation),
            Ok(())
        );
        c.leave(DELAY + 2, "g", &ids[0], None);
        assert_eq!(
            c.list(),
            [("g".to_owned(), GroupState::Empty, "consumer".to_owned())]
        );
        let d = c.describe("g").unwrap();
        assert_eq!(
            (d.state, d.protocol_type.as_str(), d.protocol.as_str()),
            (GroupState::Empty, "consumer", "")
        );
        assert!(d.members.is_empty());
        // Simple commits are still allowed; a stale member's are not.
        assert_eq!(c.check_commit(DELAY + 3, "g", "", None, -1), Ok(()));
        assert_eq!(
            c.check_commit(DELAY + 3, "g", &ids[0], None, generation),
            Err(ErrorCode::UnknownMemberId)
        );
        // A new member starts the next generation, not generation 1 again.
        let (ids, next) = stable_group(&mut c, 1);
        assert!(next > generation, "{next} after {generation}");
        c.leave(DELAY + 4, "g", &ids[0], None);
        // DeleteGroups forgets it.
        assert_eq!(c.delete("g"), Ok(()));
        assert!(c.list().is_empty());
        assert!(c.describe("g").is_none());
    }

    #[test]
    fn static_member_errors() {
        let mut c = coordinator();
        let mut req = join_req("", &["range"], 5);
        req.group_instance_id = Some("i".into());
        c.join(0, req.clone(), 1);
        let first = joins(&c.tick(DELAY))[0].1.clone();
        // Rejoining with a member id that is not the instance's current one is fenced.
        let mut stale = req.clone();
        stale.member_id = "someone-else".into();
        c.join(DELAY, req, 2); // replaces first.member_id (the group is completing: rebalance)
        stale.member_id.clone_from(&first.member_id);
        assert_eq!(
            joins(&c.join(DELAY + 1, stale, 3))[0].1.error,
            ErrorCode::FencedInstanceId
        );
        assert_eq!(
            c.leave(DELAY + 1, "g", &first.member_id, Some("i")).0,
            ErrorCode::FencedInstanceId
        );
        assert_eq!(
            c.check_commit(DELAY + 1, "g", &first.member_id, Some("i"), 1),
            Err(ErrorCode::FencedInstanceId)
        );
    }
}
