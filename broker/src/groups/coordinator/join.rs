//! The join phase of a group: JoinGroup from new, pending (KIP-394), known and static
//! members; starting a rebalance; and completing it into a new generation.
//!
//! Does no I/O and reads no clock (`now` comes in [`JoinCall`]); answers go to `out` as
//! [`Output`]s. State changes go through [`Group::transition_to`]; the invariants are those
//! of `group.rs`.

use bytes::Bytes;
use weir_protocol::error_code::ErrorCode;

use super::GroupState;
use super::group::{Group, Member};
use super::messages::{JoinCall, JoinRequest, JoinResult, Output, ReplyTo, SyncResult};

impl Group {
    /// JoinGroup without a member id: `id` is the one generated for it.
    pub(super) fn join_unknown(
        &mut self,
        call: JoinCall,
        req: JoinRequest,
        id: String,
        out: &mut Vec<Output>,
    ) {
        if let Some(instance) = req.group_instance_id.clone() {
            if let Some(old_id) = self.instances.get(&instance).cloned() {
                if self.members.contains_key(&old_id) {
                    self.replace_static_member(call, req, &old_id, id, out);
                    return;
                }
            }
        } else if req.version >= 4 {
            // KIP-394: the client must come back with this id, so a client that crashes between
            // join and response cannot leave a ghost member behind.
            self.pending.insert(
                id.clone(),
                call.now.saturating_add(i64::from(req.session_timeout_ms)),
            );
            out.push(Output::Join(
                call.reply,
                JoinResult::error(ErrorCode::MemberIdRequired, &id),
            ));
            return;
        }
        if !self.accepts(&req.protocol_type, &req.protocols, None) {
            out.push(Output::Join(
                call.reply,
                JoinResult::error(ErrorCode::InconsistentGroupProtocol, ""),
            ));
            return;
        }
        self.add_member(call, req, id, out);
    }

    /// JoinGroup with a member id: a pending id becomes a member; a member rejoins.
    pub(super) fn join_known(&mut self, call: JoinCall, req: JoinRequest, out: &mut Vec<Output>) {
        let reply = call.reply;
        if self.pending.remove(&req.member_id).is_some() {
            if !self.accepts(&req.protocol_type, &req.protocols, None) {
                out.push(Output::Join(
                    reply,
                    JoinResult::error(ErrorCode::InconsistentGroupProtocol, &req.member_id),
                ));
                return;
            }
            let id = req.member_id.clone();
            self.add_member(call, req, id, out);
            return;
        }
        if let Err(error) = self.check_member(&req.member_id, req.group_instance_id.as_deref()) {
            out.push(Output::Join(
                reply,
                JoinResult::error(error, &req.member_id),
            ));
            return;
        }
        if !self.accepts(&req.protocol_type, &req.protocols, Some(&req.member_id)) {
            out.push(Output::Join(
                reply,
                JoinResult::error(ErrorCode::InconsistentGroupProtocol, &req.member_id),
            ));
            return;
        }
        let is_leader = self.leader.as_deref() == Some(req.member_id.as_str());
        let state = self.state();
        let Some(member) = self.members.get_mut(&req.member_id) else {
            return;
        };
        member.renew(call.now);
        let changed = member.protocols != req.protocols;
        // A leader rejoining a stable group asks for a new assignment (new topics, say).
        let must_rebalance = changed || (is_leader && state == GroupState::Stable);
        match state {
            GroupState::PreparingRebalance => {
                member.update(&req);
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
                out.push(Output::Join(reply, self.join_result(&member)));
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                member.update(&req);
                member.awaiting_join = Some(reply);
                self.prepare_rebalance(call.now, out);
            }
            GroupState::Empty | GroupState::Dead => {
                out.push(Output::Join(
                    reply,
                    JoinResult::error(ErrorCode::UnknownMemberId, &req.member_id),
                ));
            }
        }
    }

    fn add_member(&mut self, call: JoinCall, req: JoinRequest, id: String, out: &mut Vec<Output>) {
        let JoinCall { config, now, reply } = call;
        let joined_seq = self
            .members
            .values()
            .map(|m| m.joined_seq)
            .max()
            .map_or(0, |s| s + 1);
        if let Some(instance) = &req.group_instance_id {
            self.instances.insert(instance.clone(), id.clone());
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
        let was_empty = self.state() == GroupState::Empty;
        self.members.insert(id, member);
        if was_empty {
            // The initial delay: wait for the rest of a starting group, extended by each joiner
            // up to the rebalance timeout.
            self.not_before = Some(now.saturating_add(config.initial_rebalance_delay_ms));
            self.prepare_rebalance(now, out);
        } else if self.state() == GroupState::PreparingRebalance {
            if let (Some(not_before), Some(deadline)) = (self.not_before, self.rebalance_deadline) {
                self.not_before = Some(
                    not_before
                        .max(now.saturating_add(config.initial_rebalance_delay_ms))
                        .min(deadline),
                );
            }
        } else {
            self.prepare_rebalance(now, out);
        }
    }

    /// A static member came back under a new member id: the old id is fenced; the member
    /// keeps its place (and, if nothing changed in a stable group, its assignment).
    fn replace_static_member(
        &mut self,
        call: JoinCall,
        req: JoinRequest,
        old_id: &str,
        new_id: String,
        out: &mut Vec<Output>,
    ) {
        let Some(mut member) = self.members.remove(old_id) else {
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
        member.update(&req);
        member.renew(call.now);
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        if let Some(instance) = &req.group_instance_id {
            self.instances.insert(instance.clone(), new_id.clone());
        }
        match self.state() {
            GroupState::Stable if !changed => {
                // No rebalance: the member keeps its assignment, which it reads with SyncGroup.
                let mut result = self.join_result(&member);
                result.members.clear();
                self.members.insert(new_id, member);
                out.push(Output::Join(call.reply, result));
            }
            _ => {
                member.awaiting_join = Some(call.reply);
                self.members.insert(new_id, member);
                self.prepare_rebalance(call.now, out);
            }
        }
    }

    /// Moves the group to PreparingRebalance (if not there already) and sets its deadline.
    pub(super) fn prepare_rebalance(&mut self, now: i64, out: &mut Vec<Output>) {
        if self.state() == GroupState::PreparingRebalance {
            return;
        }
        // Syncs parked for the generation being abandoned are told to rejoin.
        for m in self.members.values_mut() {
            if let Some(to) = m.awaiting_sync.take() {
                out.push(Output::Sync(
                    to,
                    SyncResult::error(ErrorCode::RebalanceInProgress),
                ));
            }
        }
        self.transition_to(GroupState::PreparingRebalance);
        self.rebalance_deadline = Some(now.saturating_add(self.max_rebalance_timeout()));
        if let (Some(not_before), Some(deadline)) = (self.not_before, self.rebalance_deadline) {
            self.not_before = Some(not_before.min(deadline));
        }
    }

    /// Completes PreparingRebalance when everyone rejoined (and the initial delay passed), or
    /// when the rebalance timeout fired.
    pub(super) fn try_complete_join(&mut self, now: i64) -> Vec<Output> {
        let mut out = Vec::new();
        if self.state() != GroupState::PreparingRebalance {
            return out;
        }
        let timed_out = self.rebalance_deadline.is_some_and(|d| now >= d);
        let delay_over = self.not_before.is_none_or(|t| now >= t);
        if !(timed_out || (delay_over && self.all_joined())) {
            return out;
        }
        // Members that did not rejoin in time are out.
        let missing: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in missing {
            if let Some(member) = self.members.remove(&id) {
                if let Some(instance) = &member.instance_id {
                    self.instances.remove(instance);
                }
            }
        }
        self.pending.clear();
        self.not_before = None;
        self.rebalance_deadline = None;
        if self.members.is_empty() {
            self.become_empty();
            return out;
        }
        self.generation += 1;
        self.protocol_type = self
            .members
            .values()
            .next()
            .map(|m| m.protocol_type.clone());
        self.protocol = self.select_protocol();
        let leader_stays = self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l));
        if !leader_stays {
            self.leader = self
                .members
                .values()
                .min_by_key(|m| m.joined_seq)
                .map(|m| m.id.clone());
        }
        self.transition_to(GroupState::CompletingRebalance);
        let answers: Vec<(ReplyTo, JoinResult)> = self
            .members
            .values()
            .filter_map(|m| m.awaiting_join.map(|to| (to, self.join_result(m))))
            .collect();
        for member in self.members.values_mut() {
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
}
