//! The coordinator's unit tests: every public call on [`Coordinator`] through [`Checked`],
//! which checks every group's invariants and that no generation goes back after each step;
//! and the state machine's own rules (`transition_to`, `check_invariants`).

use std::collections::HashMap;

use bytes::Bytes;

use super::group::{Group, IllegalTransition, InvariantViolation};
use super::*;

const DELAY: i64 = 3_000;
const SESSION: i32 = 10_000;
const REBALANCE: i32 = 30_000;

fn coordinator() -> Checked {
    Checked(Coordinator::new(
        GroupConfig {
            initial_rebalance_delay_ms: DELAY,
            ..GroupConfig::default()
        },
        "n",
    ))
}

/// A [`Coordinator`] whose every call is followed by the checks of every group: its
/// invariants hold, and no group that was there before went back a generation. The methods
/// have the coordinator's names and signatures, so the tests read as calls on it.
struct Checked(Coordinator);

impl Checked {
    fn step<R>(&mut self, call: impl FnOnce(&mut Coordinator) -> R) -> R {
        let before: HashMap<String, i32> = self
            .0
            .groups
            .iter()
            .map(|(id, g)| (id.clone(), g.generation))
            .collect();
        let result = call(&mut self.0);
        if let Err((id, violation)) = self.0.check_invariants() {
            panic!("group {id}: {violation}");
        }
        for (id, group) in &self.0.groups {
            if let Some(&generation) = before.get(id) {
                assert!(
                    group.generation >= generation,
                    "group {id}: generation {generation} -> {}",
                    group.generation
                );
            }
        }
        result
    }

    fn join(&mut self, now: i64, req: JoinRequest, reply: ReplyTo) -> Vec<Output> {
        self.step(|c| c.join(now, req, reply))
    }

    fn sync(&mut self, now: i64, req: SyncRequest, reply: ReplyTo) -> Vec<Output> {
        self.step(|c| c.sync(now, req, reply))
    }

    fn heartbeat(
        &mut self,
        now: i64,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> ErrorCode {
        self.step(|c| c.heartbeat(now, group_id, member_id, instance_id, generation_id))
    }

    fn leave(
        &mut self,
        now: i64,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> (ErrorCode, Vec<Output>) {
        self.step(|c| c.leave(now, group_id, member_id, instance_id))
    }

    fn tick(&mut self, now: i64) -> Vec<Output> {
        self.step(|c| c.tick(now))
    }

    fn check_commit(
        &mut self,
        now: i64,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ErrorCode> {
        self.step(|c| c.check_commit(now, group_id, member_id, instance_id, generation_id))
    }

    fn delete(&mut self, group_id: &str) -> Result<(), ErrorCode> {
        self.step(|c| c.delete(group_id))
    }

    fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        self.0.describe(group_id)
    }

    fn list(&self) -> Vec<(String, GroupState, String)> {
        self.0.list()
    }

    fn next_deadline(&self) -> Option<i64> {
        self.0.next_deadline()
    }
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

fn state(c: &Checked) -> GroupState {
    c.describe("g").map_or(GroupState::Dead, |d| d.state)
}

/// Joins `n` members (v3, no KIP-394) at t=0, completes the initial delay, syncs with the
/// leader giving each member its own id as assignment. Returns the member ids (leader
/// first) and the generation.
fn stable_group(c: &mut Checked, n: u64) -> (Vec<String>, i32) {
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
    let assignments: Vec<(&str, &str)> = ids.iter().map(|id| (id.as_str(), id.as_str())).collect();
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

/// A group brought to `state` by legal transitions only (its other fields untouched).
fn group_in(state: GroupState) -> Group {
    let mut group = Group::new("g");
    let path: &[GroupState] = match state {
        GroupState::Empty => &[],
        GroupState::PreparingRebalance => &[GroupState::PreparingRebalance],
        GroupState::CompletingRebalance => &[
            GroupState::PreparingRebalance,
            GroupState::CompletingRebalance,
        ],
        GroupState::Stable => &[
            GroupState::PreparingRebalance,
            GroupState::CompletingRebalance,
            GroupState::Stable,
        ],
        GroupState::Dead => &[GroupState::Dead],
    };
    for step in path {
        group.try_transition_to(*step).unwrap();
    }
    assert_eq!(group.state(), state);
    group
}

#[test]
fn transitions_follow_kafkas_valid_previous_states_and_illegal_ones_are_refused() {
    use GroupState::{CompletingRebalance, Dead, Empty, PreparingRebalance, Stable};
    // Kafka's ClassicGroupState, written out (from, to) rather than read from the code.
    let legal = [
        (PreparingRebalance, Empty),
        (Stable, PreparingRebalance),
        (CompletingRebalance, PreparingRebalance),
        (Empty, PreparingRebalance),
        (PreparingRebalance, CompletingRebalance),
        (CompletingRebalance, Stable),
        (Stable, Dead),
        (PreparingRebalance, Dead),
        (CompletingRebalance, Dead),
        (Empty, Dead),
        (Dead, Dead),
    ];
    let all = [Empty, PreparingRebalance, CompletingRebalance, Stable, Dead];
    let mut refused = 0;
    for from in all {
        for to in all {
            let mut group = group_in(from);
            let result = group.try_transition_to(to);
            if legal.contains(&(from, to)) {
                assert_eq!(result, Ok(()), "{from:?} -> {to:?}");
                assert_eq!(group.state(), to);
            } else {
                assert_eq!(result, Err(IllegalTransition { from, to }));
                assert_eq!(group.state(), from, "a refused transition keeps the state");
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 25 - legal.len());
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "illegal group state transition Empty -> Stable")]
fn an_illegal_transition_fails_debug_builds() {
    Group::new("g").transition_to(GroupState::Stable);
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one table of rules, each broken on purpose in turn"
)]
fn check_invariants_finds_each_broken_rule() {
    use InvariantViolation as V;
    let mut c = coordinator();
    let (ids, _) = stable_group(&mut c, 2);
    let stable = c.0.groups["g"].clone();
    assert_eq!(stable.check_invariants(), Ok(()));
    let broken = |change: &dyn Fn(&mut Group)| {
        let mut group = stable.clone();
        change(&mut group);
        group.check_invariants().unwrap_err()
    };
    assert_eq!(
        broken(&|g| g.leader = Some("ghost".into())),
        V::LeaderNotMember {
            state: GroupState::Stable,
            leader: Some("ghost".into())
        }
    );
    assert_eq!(
        broken(&|g| g.protocol = None),
        V::NoProtocol(GroupState::Stable)
    );
    assert_eq!(
        broken(&|g| g.members.get_mut(&ids[1]).unwrap().awaiting_join = Some(7)),
        V::JoinParked {
            state: GroupState::Stable,
            member: ids[1].clone()
        }
    );
    assert_eq!(
        broken(&|g| g.members.get_mut(&ids[1]).unwrap().awaiting_sync = Some(7)),
        V::SyncParked {
            state: GroupState::Stable,
            member: ids[1].clone()
        }
    );
    assert_eq!(
        broken(&|g| g.rebalance_deadline = Some(1)),
        V::RebalanceDeadline(GroupState::Stable)
    );
    assert_eq!(
        broken(&|g| g.not_before = Some(1)),
        V::InitialDelay(GroupState::Stable)
    );
    assert_eq!(
        broken(&|g| {
            g.instances.insert("i".into(), ids[0].clone());
        }),
        V::Instance {
            instance: "i".into(),
            member: ids[0].clone()
        }
    );
    assert_eq!(broken(&|g| g.generation = -1), V::NegativeGeneration(-1));
    assert_eq!(
        broken(&|g| {
            let member = g.members.remove(&ids[1]).unwrap();
            g.members.insert("other".into(), member);
        }),
        V::MemberKey {
            key: "other".into(),
            id: ids[1].clone()
        }
    );
    let member = stable.members[&ids[0]].clone();
    let mut empty = group_in(GroupState::Empty);
    assert_eq!(empty.check_invariants(), Ok(()));
    empty.leader = Some(ids[0].clone());
    assert_eq!(
        empty.check_invariants(),
        Err(V::LeaderWhenEmpty(ids[0].clone()))
    );
    empty.members.insert(ids[0].clone(), member);
    assert_eq!(
        empty.check_invariants(),
        Err(V::MembersWhenEmpty(GroupState::Empty))
    );
    let mut preparing = group_in(GroupState::PreparingRebalance);
    assert_eq!(
        preparing.check_invariants(),
        Err(V::RebalanceDeadline(GroupState::PreparingRebalance)),
        "PreparingRebalance without a deadline would never complete"
    );
    preparing.rebalance_deadline = Some(10);
    preparing.not_before = Some(11);
    assert_eq!(
        preparing.check_invariants(),
        Err(V::InitialDelay(GroupState::PreparingRebalance))
    );
    assert_eq!(
        group_in(GroupState::CompletingRebalance).check_invariants(),
        Err(V::NoMembers(GroupState::CompletingRebalance))
    );
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "is not a member")]
fn debug_builds_check_the_group_after_each_call() {
    let mut c = coordinator();
    let (ids, generation) = stable_group(&mut c, 2);
    c.0.groups.get_mut("g").unwrap().leader = Some("ghost".into());
    // Bypasses the test wrapper: the coordinator's own check must catch it.
    c.0.sync(DELAY, sync_req(&ids[1], generation, &[]), 1);
}

#[test]
fn unloading_a_group_answers_its_parked_join_not_coordinator_and_forgets_it() {
    let mut c = coordinator();
    // group "g" (join_req's group) parked in its initial delay; another group untouched.
    assert!(c.join(0, join_req("", &["range"], 3), 1).is_empty());
    let other = JoinRequest {
        group_id: "other".to_owned(),
        ..join_req("", &["range"], 3)
    };
    assert!(c.join(0, other, 2).is_empty());
    let group = join_req("", &["range"], 3).group_id;
    let (gone, outputs) = c.step(|c| c.unload(|id| id == group));
    assert_eq!(gone, 1);
    let answered = joins(&outputs);
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].0, 1);
    assert_eq!(answered[0].1.error, ErrorCode::NotCoordinator);
    assert!(c.0.describe(&group).is_none());
    assert!(c.0.describe("other").is_some());
}
