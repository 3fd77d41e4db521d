//! One group and its members: their state, the only way the state changes
//! ([`Group::transition_to`]), the rules that hold between the parts
//! ([`Group::check_invariants`]), and the steps shared by every request (member checks,
//! removal, emptying). The join phase is in `join.rs`.
//!
//! Does no I/O and reads no clock: every step that depends on time is given `now`; answers to
//! parked requests are returned as [`Output`]s for the shell to deliver.
//!
//! Invariants (checked by [`Group::check_invariants`]):
//! - members are stored under their own id; Empty and Dead groups have no members;
//! - Stable and CompletingRebalance groups have members, a leader among them, a protocol
//!   type and a chosen protocol; Empty groups have no leader and no chosen protocol;
//! - a parked JoinGroup exists only in PreparingRebalance, a parked SyncGroup only in
//!   CompletingRebalance;
//! - the rebalance deadline is set exactly in PreparingRebalance; the initial delay only
//!   there, and never after the rebalance deadline;
//! - every static instance id points to a member carrying that instance id;
//! - the generation is never negative, and only ever grows (each step adds one at most).

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use weir_protocol::error_code::ErrorCode;

use super::GroupState;
use super::messages::{JoinRequest, JoinResult, JoinedMember, Output, ReplyTo, SyncResult};

/// A member of a group, as the coordinator knows it.
#[derive(Debug, Clone)]
pub(super) struct Member {
    /// The key in [`Group::members`].
    pub(super) id: String,
    /// Static membership (KIP-345): survives restarts of the client under new member ids.
    pub(super) instance_id: Option<String>,
    /// For DescribeGroups.
    pub(super) client_id: String,
    /// For DescribeGroups.
    pub(super) client_host: String,
    /// How long the member may stay silent before it is removed.
    pub(super) session_timeout_ms: i32,
    /// How long a rebalance waits for this member to rejoin.
    pub(super) rebalance_timeout_ms: i32,
    /// Every member of a group must share it ("consumer" for consumers).
    pub(super) protocol_type: String,
    /// Assignors by preference, with their opaque metadata.
    pub(super) protocols: Vec<(String, Bytes)>,
    /// What the leader assigned it in the current generation.
    pub(super) assignment: Bytes,
    /// A parked JoinGroup.
    pub(super) awaiting_join: Option<ReplyTo>,
    /// A parked SyncGroup.
    pub(super) awaiting_sync: Option<ReplyTo>,
    /// When the session expires without a request.
    pub(super) session_deadline: i64,
    /// Order of first join (leader election picks the earliest).
    pub(super) joined_seq: u64,
}

impl Member {
    pub(super) fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    pub(super) fn renew(&mut self, now: i64) {
        self.session_deadline = now.saturating_add(i64::from(self.session_timeout_ms));
    }

    /// Takes what a rejoin may change: protocols, timeouts and client details.
    pub(super) fn update(&mut self, req: &JoinRequest) {
        self.protocols.clone_from(&req.protocols);
        self.protocol_type.clone_from(&req.protocol_type);
        self.session_timeout_ms = req.session_timeout_ms;
        self.rebalance_timeout_ms = req.rebalance_timeout_ms;
        self.client_id.clone_from(&req.client_id);
        self.client_host.clone_from(&req.client_host);
    }
}

/// A state change the state machine does not allow: a bug in the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal group state transition {from:?} -> {to:?}")]
pub(crate) struct IllegalTransition {
    /// The state the group is in (and stays in).
    pub(crate) from: GroupState,
    /// The state asked for.
    pub(crate) to: GroupState,
}

/// A broken rule between the parts of a group: a bug in the coordinator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[cfg_attr(not(debug_assertions), allow(dead_code))]
pub(crate) enum InvariantViolation {
    #[error("member {id:?} is stored under {key:?}")]
    MemberKey { key: String, id: String },
    #[error("a {0:?} group has members")]
    MembersWhenEmpty(GroupState),
    #[error("a {0:?} group has no members")]
    NoMembers(GroupState),
    #[error("leader {leader:?} of a {state:?} group is not a member")]
    LeaderNotMember {
        state: GroupState,
        leader: Option<String>,
    },
    #[error("an empty group has leader {0:?}")]
    LeaderWhenEmpty(String),
    #[error("a {0:?} group has no protocol type or chosen protocol")]
    NoProtocol(GroupState),
    #[error("an empty group has chosen protocol {0:?}")]
    ProtocolWhenEmpty(String),
    #[error("member {member:?} has a JoinGroup parked in state {state:?}")]
    JoinParked { state: GroupState, member: String },
    #[error("member {member:?} has a SyncGroup parked in state {state:?}")]
    SyncParked { state: GroupState, member: String },
    #[error("a {0:?} group has a rebalance deadline, or lacks one in PreparingRebalance")]
    RebalanceDeadline(GroupState),
    #[error("a {0:?} group has an initial delay, or one after its rebalance deadline")]
    InitialDelay(GroupState),
    #[error("static instance {instance:?} points to {member:?}, not a member with it")]
    Instance { instance: String, member: String },
    #[error("negative generation {0}")]
    NegativeGeneration(i32),
}

/// One group: its state, members and the current generation's choices.
#[derive(Debug, Clone)]
pub(super) struct Group {
    /// The group id, for error logs.
    id: String,
    /// Private so that every change goes through [`Group::transition_to`].
    state: GroupState,
    pub(super) generation: i32,
    pub(super) protocol_type: Option<String>,
    pub(super) protocol: Option<String>,
    pub(super) leader: Option<String>,
    pub(super) members: BTreeMap<String, Member>,
    /// KIP-394 member ids handed out and not yet used, with their expiry.
    pub(super) pending: HashMap<String, i64>,
    /// Static instance id -> member id.
    pub(super) instances: HashMap<String, String>,
    /// When PreparingRebalance completes even if members are missing.
    pub(super) rebalance_deadline: Option<i64>,
    /// The initial delay: PreparingRebalance does not complete before this.
    pub(super) not_before: Option<i64>,
    /// A member's commit was accepted. Such a group is kept when its members are gone (Kafka
    /// keeps a group while it has offsets), so that ListGroups and DescribeGroups still show
    /// it as a consumer group rather than one made by simple commits.
    pub(super) member_committed: bool,
}

impl Group {
    pub(super) fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
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

    pub(super) fn state(&self) -> GroupState {
        self.state
    }

    /// Moves to `to` if the state machine allows it from the current state
    /// ([`GroupState::valid_previous_states`]); otherwise the group stays where it is.
    ///
    /// # Errors
    /// [`IllegalTransition`] when `to` may not follow the current state.
    pub(super) fn try_transition_to(&mut self, to: GroupState) -> Result<(), IllegalTransition> {
        if !to.valid_previous_states().contains(&self.state) {
            return Err(IllegalTransition {
                from: self.state,
                to,
            });
        }
        self.state = to;
        Ok(())
    }

    /// The only way the state changes. An illegal transition is a bug: it fails debug builds
    /// and tests; a release build logs it and keeps the group in its state (as Kafka refuses
    /// it), rather than take the broker down for one group.
    pub(super) fn transition_to(&mut self, to: GroupState) {
        if let Err(error) = self.try_transition_to(to) {
            tracing::error!(group = %self.id, %error, "group coordinator bug");
            debug_assert!(false, "group {}: {error}", self.id);
        }
    }

    /// Checks the rules listed in the module docs.
    ///
    /// # Errors
    /// The first rule found broken.
    pub(crate) fn check_invariants(&self) -> Result<(), InvariantViolation> {
        use InvariantViolation as V;
        let state = self.state;
        if self.generation < 0 {
            return Err(V::NegativeGeneration(self.generation));
        }
        if let Some((key, m)) = self.members.iter().find(|(key, m)| **key != m.id) {
            return Err(V::MemberKey {
                key: key.clone(),
                id: m.id.clone(),
            });
        }
        self.check_state_needs()?;
        for m in self.members.values() {
            if m.awaiting_join.is_some() && state != GroupState::PreparingRebalance {
                return Err(V::JoinParked {
                    state,
                    member: m.id.clone(),
                });
            }
            if m.awaiting_sync.is_some() && state != GroupState::CompletingRebalance {
                return Err(V::SyncParked {
                    state,
                    member: m.id.clone(),
                });
            }
        }
        let preparing = state == GroupState::PreparingRebalance;
        if self.rebalance_deadline.is_some() != preparing {
            return Err(V::RebalanceDeadline(state));
        }
        if let Some(not_before) = self.not_before {
            if !preparing || self.rebalance_deadline.is_some_and(|d| not_before > d) {
                return Err(V::InitialDelay(state));
            }
        }
        for (instance, member) in &self.instances {
            let carried = self
                .members
                .get(member)
                .is_some_and(|m| m.instance_id.as_ref() == Some(instance));
            if !carried {
                return Err(V::Instance {
                    instance: instance.clone(),
                    member: member.clone(),
                });
            }
        }
        Ok(())
    }

    /// What the state needs: no members, leader or protocol when Empty or Dead; members, a
    /// leader among them and a protocol during and after a completed join.
    fn check_state_needs(&self) -> Result<(), InvariantViolation> {
        use InvariantViolation as V;
        let state = self.state;
        match state {
            GroupState::Empty | GroupState::Dead => {
                if !self.members.is_empty() {
                    return Err(V::MembersWhenEmpty(state));
                }
                if let Some(leader) = &self.leader {
                    return Err(V::LeaderWhenEmpty(leader.clone()));
                }
                if let Some(protocol) = &self.protocol {
                    return Err(V::ProtocolWhenEmpty(protocol.clone()));
                }
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                if self.members.is_empty() {
                    return Err(V::NoMembers(state));
                }
                if !self
                    .leader
                    .as_ref()
                    .is_some_and(|l| self.members.contains_key(l))
                {
                    return Err(V::LeaderNotMember {
                        state,
                        leader: self.leader.clone(),
                    });
                }
                if self.protocol_type.is_none() || self.protocol.is_none() {
                    return Err(V::NoProtocol(state));
                }
            }
            // Between generations: the old leader may have left, the old protocol stays
            // until the join completes.
            GroupState::PreparingRebalance => {}
        }
        Ok(())
    }

    /// Whether `protocols` has one in common with every current member (and the type fits).
    pub(super) fn accepts(
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
    pub(super) fn select_protocol(&self) -> Option<String> {
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

    pub(super) fn max_rebalance_timeout(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    pub(super) fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    /// The current generation's JoinGroup answer for `member`; only the leader gets the
    /// member list.
    pub(super) fn join_result(&self, member: &Member) -> JoinResult {
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

    /// The member-id and static-instance checks shared by sync, heartbeat, leave and commit.
    ///
    /// # Errors
    /// FENCED_INSTANCE_ID when the instance id belongs to another member id;
    /// UNKNOWN_MEMBER_ID when the member is not in the group.
    pub(super) fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ErrorCode> {
        if let Some(instance) = instance_id {
            match self.instances.get(instance) {
                Some(current) if current != member_id => return Err(ErrorCode::FencedInstanceId),
                _ => {}
            }
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(ErrorCode::UnknownMemberId)
        }
    }

    /// SyncGroup in CompletingRebalance: parks the member's request; the leader's brings the
    /// assignments, makes the group Stable and answers every parked sync.
    pub(super) fn sync_completing(
        &mut self,
        now: i64,
        member_id: &str,
        assignments: Vec<(String, Bytes)>,
        reply: ReplyTo,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(member) = self.members.get_mut(member_id) {
            if let Some(previous) = member.awaiting_sync.replace(reply) {
                // A client retried; the first request gets nothing useful.
                out.push(Output::Sync(
                    previous,
                    SyncResult::error(ErrorCode::RebalanceInProgress),
                ));
            }
            member.renew(now);
        }
        if self.leader.as_deref() == Some(member_id) {
            let assigned: HashMap<String, Bytes> = assignments.into_iter().collect();
            for member in self.members.values_mut() {
                // Members the leader left out get an empty assignment, never a stale one.
                member.assignment = assigned.get(&member.id).cloned().unwrap_or_default();
            }
            self.transition_to(GroupState::Stable);
            for member in self.members.values_mut() {
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

    /// Removes a member; rebalances a group that had a generation in progress or in force.
    pub(super) fn remove_member(&mut self, id: &str, now: i64) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(member) = self.members.remove(id) else {
            return out;
        };
        if let Some(instance) = &member.instance_id {
            if self.instances.get(instance).map(String::as_str) == Some(id) {
                self.instances.remove(instance);
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
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance if self.members.is_empty() => {
                // As in Kafka, the last member gone starts a rebalance that completes at
                // once with nobody: Empty is only reached from PreparingRebalance.
                self.prepare_rebalance(now, &mut out);
                self.become_empty();
            }
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.not_before = None;
                self.prepare_rebalance(now, &mut out);
            }
            GroupState::PreparingRebalance | GroupState::Empty | GroupState::Dead => {}
        }
        out
    }

    /// A rebalance ended with no members: the group is Empty, in a new generation.
    pub(super) fn become_empty(&mut self) {
        self.transition_to(GroupState::Empty);
        self.generation += 1;
        self.protocol = None;
        // The protocol type is kept, as in Kafka: an empty group is still the kind of group
        // its members made it.
        self.leader = None;
        self.rebalance_deadline = None;
        self.not_before = None;
    }

    /// Expires pending member ids and sessions due at `now` (members parked in a join or a
    /// sync cannot expire), then completes a rebalance that is due.
    pub(super) fn tick(&mut self, now: i64) -> Vec<Output> {
        let mut out = Vec::new();
        self.pending.retain(|_, expiry| *expiry > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.awaiting_join.is_none() && m.awaiting_sync.is_none() && m.session_deadline <= now
            })
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            out.extend(self.remove_member(&id, now));
        }
        out.extend(self.try_complete_join(now));
        out
    }

    /// The earliest time [`Group::tick`] has something to do.
    pub(super) fn next_deadline(&self) -> Option<i64> {
        let sessions = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.awaiting_sync.is_none())
            .map(|m| m.session_deadline);
        let rebalance = (self.state == GroupState::PreparingRebalance)
            .then(|| self.rebalance_deadline.into_iter().chain(self.not_before))
            .into_iter()
            .flatten();
        sessions
            .chain(rebalance)
            .chain(self.pending.values().copied())
            .min()
    }
}
