//! The classic consumer-group protocol as a pure state machine: requests and the time in,
//! responses and deadlines out. No I/O, no clock, no runtime: the async shell
//! (`super::service`) owns the clock, parks replies and calls [`Coordinator::tick`] at
//! [`Coordinator::next_deadline`]. Committed offsets are stored elsewhere
//! ([`super::offsets`]); this module only decides whether a commit is allowed.
//!
//! # Layout
//!
//! - `mod.rs`: [`Coordinator`], the public API over every group; [`GroupConfig`];
//!   [`GroupState`] and its legal transitions.
//! - `messages.rs`: requests, results, [`Output`]s and descriptions, in domain terms.
//! - `group.rs`: one group and its members; the only state change
//!   (`Group::transition_to`) and the invariants (`Group::check_invariants`); the steps
//!   shared by every request (member checks, sync, removal, expiry).
//! - `join.rs`: the join phase: new, pending, known and static members; starting and
//!   completing a rebalance.
//!
//! # Invariants
//!
//! - A group's state only changes to one whose valid previous states
//!   ([`GroupState::valid_previous_states`], as Kafka's `ClassicGroupState`) hold the current
//!   one. An illegal transition is a bug: debug builds panic, release builds log it and keep
//!   the state.
//! - The rules between a group's parts (listed in `group.rs`) hold after every public call;
//!   debug builds check them after join, sync, leave and tick (the calls that move members
//!   or states), on the touched group only (all groups for tick, which visits them anyway).
//!
//! # States and transitions (Kafka's classic group coordinator)
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

mod group;
mod join;
mod messages;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use weir_protocol::error_code::ErrorCode;

use group::{Group, InvariantViolation};
use messages::JoinCall;
pub use messages::{
    GroupDescription, JoinRequest, JoinResult, JoinedMember, MemberDescription, Output, ReplyTo,
    SyncRequest, SyncResult,
};

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

    /// The states a group may be in before it moves to `self`: Kafka's
    /// `ClassicGroupState.validPreviousStates`. `Group::transition_to` refuses any
    /// other transition.
    pub fn valid_previous_states(self) -> &'static [GroupState] {
        use GroupState::{CompletingRebalance, Dead, Empty, PreparingRebalance, Stable};
        match self {
            Empty => &[PreparingRebalance],
            PreparingRebalance => &[Stable, CompletingRebalance, Empty],
            CompletingRebalance => &[PreparingRebalance],
            Stable => &[CompletingRebalance],
            Dead => &[Stable, PreparingRebalance, CompletingRebalance, Empty, Dead],
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
        let group_id = req.group_id.clone();
        self.checked(&group_id, |c| c.join_unchecked(now, req, reply))
    }

    fn join_unchecked(&mut self, now: i64, req: JoinRequest, reply: ReplyTo) -> Vec<Output> {
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
            .or_insert_with_key(|id| Group::new(id.clone()));
        if group.state() == GroupState::Dead {
            return refuse(ErrorCode::CoordinatorNotAvailable);
        }
        let call = JoinCall {
            config: self.config,
            now,
            reply,
        };
        let mut out = Vec::new();
        match new_id {
            Some(id) => group.join_unknown(call, req, id, &mut out),
            None => group.join_known(call, req, &mut out),
        }
        out.extend(group.try_complete_join(now));
        out
    }

    /// SyncGroup.
    pub fn sync(&mut self, now: i64, req: SyncRequest, reply: ReplyTo) -> Vec<Output> {
        let group_id = req.group_id.clone();
        self.checked(&group_id, |c| c.sync_unchecked(now, req, reply))
    }

    fn sync_unchecked(&mut self, now: i64, req: SyncRequest, reply: ReplyTo) -> Vec<Output> {
        let refuse = |error| vec![Output::Sync(reply, SyncResult::error(error))];
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return refuse(ErrorCode::UnknownMemberId);
        };
        if let Err(error) = group.check_member(&req.member_id, req.group_instance_id.as_deref()) {
            return refuse(error);
        }
        if req.generation_id != group.generation {
            return refuse(ErrorCode::IllegalGeneration);
        }
        match group.state() {
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
                group.sync_completing(now, &req.member_id, req.assignments, reply)
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
        if let Err(error) = group.check_member(member_id, instance_id) {
            return error;
        }
        if let Some(member) = group.members.get_mut(member_id) {
            member.renew(now);
        }
        if generation_id != group.generation {
            return ErrorCode::IllegalGeneration;
        }
        match group.state() {
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
        self.checked(group_id, |c| {
            c.leave_unchecked(now, group_id, member_id, instance_id)
        })
    }

    fn leave_unchecked(
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
        if let Err(error) = group.check_member(&member_id, instance_id) {
            return (error, Vec::new());
        }
        let mut out = group.remove_member(&member_id, now);
        out.extend(group.try_complete_join(now));
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
                || !(g.state() == GroupState::Empty && g.members.is_empty() && g.pending.is_empty())
        });
    }

    /// Expires sessions, pending member ids and rebalance timeouts due at `now`.
    pub fn tick(&mut self, now: i64) -> Vec<Output> {
        let mut out = Vec::new();
        for group in self.groups.values_mut() {
            out.extend(group.tick(now));
        }
        self.forget_empty_groups();
        // Every group was visited anyway: checking them all costs no more than the tick.
        #[cfg(debug_assertions)]
        if let Err((id, violation)) = self.check_invariants() {
            panic!("group {id}: {violation}");
        }
        out
    }

    /// The earliest time [`Self::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<i64> {
        self.groups.values().filter_map(Group::next_deadline).min()
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
        if group.state() == GroupState::CompletingRebalance {
            return Err(ErrorCode::RebalanceInProgress);
        }
        group.check_member(member_id, instance_id)?;
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
            state: group.state(),
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
            generation: group.generation,
        })
    }

    /// Every group with members or state, with its state and protocol type.
    pub fn list(&self) -> Vec<(String, GroupState, String)> {
        let mut groups: Vec<_> = self
            .groups
            .iter()
            .filter(|(_, g)| g.state() != GroupState::Dead)
            .map(|(id, g)| {
                (
                    id.clone(),
                    g.state(),
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

    /// Forgets every group `unloaded` names, members and all, whatever their state: in a
    /// cluster, their offsets partition moved to another coordinator, where the members
    /// rejoin (Kafka unloads a partition's groups the same way). Their parked joins and
    /// syncs are answered NOT_COORDINATOR, so the clients look for the new coordinator at
    /// once. Returns how many groups went, and those answers.
    pub fn unload(&mut self, unloaded: impl Fn(&str) -> bool) -> (usize, Vec<Output>) {
        let gone: Vec<String> = self
            .groups
            .keys()
            .filter(|id| unloaded(id))
            .cloned()
            .collect();
        let mut outputs = Vec::new();
        for id in &gone {
            let Some(group) = self.groups.remove(id) else {
                continue;
            };
            for (member_id, member) in group.members {
                if let Some(to) = member.awaiting_join {
                    outputs.push(Output::Join(
                        to,
                        JoinResult::error(ErrorCode::NotCoordinator, &member_id),
                    ));
                }
                if let Some(to) = member.awaiting_sync {
                    outputs.push(Output::Sync(
                        to,
                        SyncResult::error(ErrorCode::NotCoordinator),
                    ));
                }
            }
        }
        (gone.len(), outputs)
    }

    /// Checks every group's invariants (see `group.rs`).
    ///
    /// # Errors
    /// The first group found broken, with the rule it breaks.
    // Called by the tests and, per call, by debug builds; release builds never check.
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    pub(crate) fn check_invariants(&self) -> Result<(), (String, InvariantViolation)> {
        for (id, group) in &self.groups {
            group.check_invariants().map_err(|v| (id.clone(), v))?;
        }
        Ok(())
    }

    /// Runs `call`, which changes at most the group `group_id`. In debug builds that group
    /// must keep its invariants and its generation must not go back; only that group is
    /// checked, so the cost stays that of the call. Release builds only run the call.
    fn checked<T>(&mut self, group_id: &str, call: impl FnOnce(&mut Self) -> T) -> T {
        #[cfg(debug_assertions)]
        let before = self.groups.get(group_id).map(|g| g.generation);
        let result = call(self);
        #[cfg(not(debug_assertions))]
        let _checked_in_debug_builds_only = group_id;
        #[cfg(debug_assertions)]
        if let Some(group) = self.groups.get(group_id) {
            if let Err(violation) = group.check_invariants() {
                panic!("group {group_id}: {violation}");
            }
            if let Some(before) = before {
                assert!(
                    group.generation >= before,
                    "group {group_id}: generation went back from {before} to {}",
                    group.generation
                );
            }
        }
        result
    }
}
