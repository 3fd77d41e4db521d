//! The group APIs over the wire, at every version in their ranges: FindCoordinator, a whole
//! membership cycle (JoinGroup with the KIP-394 round trip from v4, SyncGroup, Heartbeat,
//! LeaveGroup), OffsetCommit/OffsetFetch round trips (durable across restarts),
//! DescribeGroups, ListGroups (with its v4 state and v5 type filters), DeleteGroups. The
//! state machine's every transition is unit-tested in `broker/src/groups/coordinator.rs`;
//! these check the wire translation.

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest,
    OffsetFetchRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_tests::{Client, TestBroker, req, versions};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn group(v: &str) -> GroupId {
    GroupId(s(v))
}

async fn broker() -> TestBroker {
    TestBroker::start_with(|c| c.group_initial_rebalance_delay_ms = 0).await
}

fn join_request(group_id: &str, member_id: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(group(group_id))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member_id))
        .with_group_instance_id(None)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(b"subscription")),
        ])
}

/// Joins as a new member (doing the KIP-394 round trip from v4) and returns (member id,
/// generation) after checking the single-member result.
async fn join_alone(client: &mut Client, v: i16, group_id: &str) -> (String, i32) {
    let mut response = client.call(v, join_request(group_id, "")).await;
    if v >= 4 {
        assert_eq!(
            response.error_code,
            ErrorCode::MemberIdRequired.code(),
            "v{v}"
        );
        assert!(!response.member_id.is_empty());
        let id = response.member_id.to_string();
        response = client.call(v, join_request(group_id, &id)).await;
        assert_eq!(response.member_id.to_string(), id, "v{v}");
    }
    assert_eq!(response.error_code, 0, "v{v}: {response:?}");
    assert_eq!(
        response.leader, response.member_id,
        "v{v}: alone, so the leader"
    );
    assert_eq!(response.protocol_name.as_deref(), Some("range"));
    assert_eq!(response.members.len(), 1);
    assert_eq!(
        response.members[0].metadata,
        Bytes::from_static(b"subscription")
    );
    (response.member_id.to_string(), response.generation_id)
}

#[tokio::test]
async fn find_coordinator_answers_this_broker_at_every_version() {
    let broker = broker().await;
    let mut client = broker.client().await;
    for v in versions(ApiKey::FindCoordinator) {
        let response = client
            .call(
                v,
                FindCoordinatorRequest::default().with_key(s("any-group")),
            )
            .await;
        assert_eq!(response.error_code, 0, "v{v}");
        assert_eq!(response.node_id.0, 0);
        assert_eq!(response.host.to_string(), broker.addr().ip().to_string());
        assert_eq!(response.port, i32::from(broker.addr().port()));
        if v >= 1 {
            let txn = client
                .call(
                    v,
                    FindCoordinatorRequest::default()
                        .with_key(s("tx"))
                        .with_key_type(1),
                )
                .await;
            // Refused at once with an error clients treat as fatal (librdkafka retries
            // COORDINATOR_NOT_AVAILABLE until init_transactions times out).
            assert_eq!(
                txn.error_code,
                ErrorCode::TransactionalIdAuthorizationFailed.code(),
                "v{v}"
            );
            assert_eq!(
                txn.error_message.as_deref(),
                Some("transactions are not supported by this broker (Weir)"),
                "v{v}"
            );
            assert_eq!(txn.node_id.0, -1, "v{v}");
        }
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn a_whole_membership_cycle_at_every_join_version() {
    let broker = broker().await;
    let mut client = broker.client().await;
    for v in versions(ApiKey::JoinGroup) {
        let g = format!("cycle-{v}");
        let (member, generation) = join_alone(&mut client, v, &g).await;
        let sync_v = (*versions(ApiKey::SyncGroup).end()).min(v.max(0));
        let sync = client
            .call(
                sync_v,
                SyncGroupRequest::default()
                    .with_group_id(group(&g))
                    .with_generation_id(generation)
                    .with_member_id(s(&member))
                    .with_assignments(vec![
                        SyncGroupRequestAssignment::default()
                            .with_member_id(s(&member))
                            .with_assignment(Bytes::from_static(b"all of it")),
                    ]),
            )
            .await;
        assert_eq!(
            (sync.error_code, sync.assignment.clone()),
            (0, Bytes::from_static(b"all of it")),
            "join v{v}"
        );
        for hv in versions(ApiKey::Heartbeat) {
            let beat = HeartbeatRequest::default()
                .with_group_id(group(&g))
                .with_generation_id(generation)
                .with_member_id(s(&member));
            assert_eq!(
                client.call(hv, beat.clone()).await.error_code,
                0,
                "heartbeat v{hv}"
            );
            let stale = beat.with_generation_id(generation + 1);
            assert_eq!(
                client.call(hv, stale).await.error_code,
                ErrorCode::IllegalGeneration.code(),
                "heartbeat v{hv}"
            );
        }
        let described = client
            .call(
                *versions(ApiKey::DescribeGroups).end(),
                DescribeGroupsRequest::default().with_groups(vec![group(&g)]),
            )
            .await;
        let d = &described.groups[0];
        assert_eq!(
            (
                d.group_state.to_string(),
                d.protocol_data.to_string(),
                d.members.len()
            ),
            ("Stable".into(), "range".into(), 1)
        );
        assert_eq!(
            d.members[0].member_assignment,
            Bytes::from_static(b"all of it")
        );
        // Leave at a version that matches (v3 names members in a list).
        let leave_v = v.min(*versions(ApiKey::LeaveGroup).end());
        let leave = if leave_v >= 3 {
            LeaveGroupRequest::default()
                .with_group_id(group(&g))
                .with_members(vec![MemberIdentity::default().with_member_id(s(&member))])
        } else {
            LeaveGroupRequest::default()
                .with_group_id(group(&g))
                .with_member_id(s(&member))
        };
        let left = client.call(leave_v, leave).await;
        assert_eq!(left.error_code, 0, "leave v{leave_v}");
        if leave_v >= 3 {
            assert_eq!(left.members[0].error_code, 0);
        }
        let beat = HeartbeatRequest::default()
            .with_group_id(group(&g))
            .with_generation_id(generation)
            .with_member_id(s(&member));
        assert_eq!(
            client.call(0, beat).await.error_code,
            ErrorCode::UnknownMemberId.code(),
            "after leaving"
        );
    }
    broker.shutdown().await;
}

fn commit_request(
    group_id: &str,
    topic: &str,
    partition: i32,
    offset: i64,
    metadata: &str,
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(group(group_id))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(s(""))
        .with_group_instance_id(None)
        .with_retention_time_ms(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(req::topic(topic))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(partition)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(-1)
                        .with_committed_metadata(Some(s(metadata))),
                ]),
        ])
}

fn fetch_request(group_id: &str, topic: &str, partitions: &[i32]) -> OffsetFetchRequest {
    OffsetFetchRequest::default()
        .with_group_id(group(group_id))
        .with_topics(Some(vec![
            OffsetFetchRequestTopic::default()
                .with_name(req::topic(topic))
                .with_partition_indexes(partitions.to_vec()),
        ]))
}

#[tokio::test]
async fn simple_commits_round_trip_at_every_version_and_survive_restarts() {
    let mut broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("committed", 2).await;
    for cv in versions(ApiKey::OffsetCommit) {
        let g = format!("simple-{cv}");
        let response = client
            .call(
                cv,
                commit_request(
                    &g,
                    "committed",
                    1,
                    40 + i64::from(cv),
                    &format!("meta {cv}"),
                ),
            )
            .await;
        assert_eq!(
            response.topics[0].partitions[0].error_code, 0,
            "commit v{cv}"
        );
        let unknown = client
            .call(cv, commit_request(&g, "no-such-topic", 0, 1, ""))
            .await;
        assert_eq!(
            unknown.topics[0].partitions[0].error_code,
            ErrorCode::UnknownTopicOrPartition.code(),
            "commit v{cv}"
        );
        for fv in versions(ApiKey::OffsetFetch) {
            let fetched = client
                .call(fv, fetch_request(&g, "committed", &[0, 1]))
                .await;
            let parts = &fetched.topics[0].partitions;
            assert_eq!(
                (parts[0].committed_offset, parts[0].metadata.as_deref()),
                (-1, Some("")),
                "fetch v{fv}: never committed"
            );
            assert_eq!(parts[1].committed_offset, 40 + i64::from(cv), "fetch v{fv}");
            assert_eq!(
                parts[1].metadata.as_deref(),
                Some(format!("meta {cv}").as_str()),
                "fetch v{fv}"
            );
        }
    }
    // v2+ with a null topic list: everything the group committed.
    let all = client
        .call(
            2,
            OffsetFetchRequest::default()
                .with_group_id(group("simple-2"))
                .with_topics(None),
        )
        .await;
    assert_eq!(all.topics.len(), 1);
    assert_eq!(all.topics[0].partitions[0].partition_index, 1);

    broker.restart().await;
    let mut client = broker.client().await;
    for cv in versions(ApiKey::OffsetCommit) {
        let fetched = client
            .call(1, fetch_request(&format!("simple-{cv}"), "committed", &[1]))
            .await;
        assert_eq!(
            fetched.topics[0].partitions[0].committed_offset,
            40 + i64::from(cv),
            "after restart"
        );
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn member_commits_are_checked_against_the_generation() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("gen", 1).await;
    let (member, generation) = join_alone(&mut client, 5, "members").await;
    let commit = |generation: i32, member: &str| {
        commit_request("members", "gen", 0, 7, "")
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(s(member))
    };
    // Joined but not synced: the group is completing its rebalance.
    let early = client.call(7, commit(generation, &member)).await;
    assert_eq!(
        early.topics[0].partitions[0].error_code,
        ErrorCode::RebalanceInProgress.code()
    );
    let sync = SyncGroupRequest::default()
        .with_group_id(group("members"))
        .with_generation_id(generation)
        .with_member_id(s(&member));
    assert_eq!(client.call(3, sync).await.error_code, 0);
    for (generation_id, id, expected) in [
        (generation, member.as_str(), ErrorCode::None),
        (
            generation + 1,
            member.as_str(),
            ErrorCode::IllegalGeneration,
        ),
        (generation, "stranger", ErrorCode::UnknownMemberId),
        (-1, "", ErrorCode::UnknownMemberId),
    ] {
        let response = client.call(7, commit(generation_id, id)).await;
        assert_eq!(
            response.topics[0].partitions[0].error_code,
            expected.code(),
            "generation {generation_id} member {id:?}"
        );
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn list_describe_and_delete_groups_at_every_version() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("t", 1).await;
    let (member, generation) = join_alone(&mut client, 5, "active").await;
    let sync = SyncGroupRequest::default()
        .with_group_id(group("active"))
        .with_generation_id(generation)
        .with_member_id(s(&member));
    client.call(3, sync).await;
    client
        .call(2, commit_request("offsets-only", "t", 0, 3, ""))
        .await;
    for v in versions(ApiKey::ListGroups) {
        let listed = client.call(v, ListGroupsRequest::default()).await;
        let names: Vec<(String, String)> = listed
            .groups
            .iter()
            .map(|g| (g.group_id.to_string(), g.protocol_type.to_string()))
            .collect();
        assert_eq!(
            names,
            [
                ("active".to_owned(), "consumer".to_owned()),
                ("offsets-only".to_owned(), String::new())
            ],
            "v{v}"
        );
    }
    for v in versions(ApiKey::DescribeGroups) {
        let described = client
            .call(
                v,
                DescribeGroupsRequest::default().with_groups(vec![
                    group("active"),
                    group("offsets-only"),
                    group("nobody"),
                ]),
            )
            .await;
        let states: Vec<String> = described
            .groups
            .iter()
            .map(|g| g.group_state.to_string())
            .collect();
        assert_eq!(states, ["Stable", "Empty", "Dead"], "v{v}");
        assert!(described.groups.iter().all(|g| g.error_code == 0));
        assert_eq!(
            described.groups[0].members[0].client_id.to_string(),
            "weir-tests",
            "v{v}"
        );
    }
    for v in versions(ApiKey::DeleteGroups) {
        let name = format!("deletable-{v}");
        client.call(2, commit_request(&name, "t", 0, 3, "")).await;
        let deleted = client
            .call(
                v,
                DeleteGroupsRequest::default().with_groups_names(vec![
                    group(&name),
                    group("active"),
                    group("nobody"),
                ]),
            )
            .await;
        let codes: Vec<i16> = deleted.results.iter().map(|r| r.error_code).collect();
        assert_eq!(
            codes,
            [
                0,
                ErrorCode::NonEmptyGroup.code(),
                ErrorCode::GroupIdNotFound.code()
            ],
            "v{v}"
        );
        let fetched = client.call(1, fetch_request(&name, "t", &[0])).await;
        assert_eq!(
            fetched.topics[0].partitions[0].committed_offset, -1,
            "v{v}: offsets deleted with the group"
        );
    }
    broker.shutdown().await;
}

/// A consumer group whose members committed and then all left is still a consumer group
/// (protocol type "consumer", state Empty), as in Kafka; confluent-kafka listed it as a simple
/// group before. A group made only by simple commits has no protocol type.
#[tokio::test]
async fn a_consumer_group_whose_members_left_keeps_its_protocol_type() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("t", 1).await;
    let (member, generation) = join_alone(&mut client, 5, "left").await;
    let sync = SyncGroupRequest::default()
        .with_group_id(group("left"))
        .with_generation_id(generation)
        .with_member_id(s(&member));
    assert_eq!(client.call(3, sync).await.error_code, 0);
    let commit = commit_request("left", "t", 0, 5, "")
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(&member));
    let committed = client.call(7, commit).await;
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
    let leave = LeaveGroupRequest::default()
        .with_group_id(group("left"))
        .with_member_id(s(&member));
    assert_eq!(client.call(2, leave).await.error_code, 0);
    client
        .call(2, commit_request("simple-only", "t", 0, 3, ""))
        .await;
    for v in versions(ApiKey::ListGroups) {
        let listed = client.call(v, ListGroupsRequest::default()).await;
        let names: Vec<(String, String)> = listed
            .groups
            .iter()
            .map(|g| (g.group_id.to_string(), g.protocol_type.to_string()))
            .collect();
        assert_eq!(
            names,
            [
                ("left".to_owned(), "consumer".to_owned()),
                ("simple-only".to_owned(), String::new())
            ],
            "v{v}"
        );
    }
    for v in versions(ApiKey::DescribeGroups) {
        let described = client
            .call(
                v,
                DescribeGroupsRequest::default()
                    .with_groups(vec![group("left"), group("simple-only")]),
            )
            .await;
        let seen: Vec<(String, String, usize)> = described
            .groups
            .iter()
            .map(|g| {
                (
                    g.group_state.to_string(),
                    g.protocol_type.to_string(),
                    g.members.len(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("Empty".to_owned(), "consumer".to_owned(), 0),
                ("Empty".to_owned(), String::new(), 0)
            ],
            "v{v}"
        );
    }
    broker.shutdown().await;
}

/// DescribeGroups v3+: with `include_authorized_operations` every group operation (READ,
/// DELETE, DESCRIBE: bits 3, 6 and 8, as Kafka answers without an authorizer); without it,
/// Kafka's "not provided", i32::MIN. kafka-python's admin client always asks.
#[tokio::test]
async fn describe_groups_gives_authorized_operations_when_asked() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("t", 1).await;
    let (member, generation) = join_alone(&mut client, 5, "active").await;
    let sync = SyncGroupRequest::default()
        .with_group_id(group("active"))
        .with_generation_id(generation)
        .with_member_id(s(&member));
    client.call(3, sync).await;
    client
        .call(2, commit_request("offsets-only", "t", 0, 3, ""))
        .await;
    for v in versions(ApiKey::DescribeGroups).filter(|&v| v >= 3) {
        for (asked, expected) in [(true, 328), (false, i32::MIN)] {
            let described = client
                .call(
                    v,
                    DescribeGroupsRequest::default()
                        .with_groups(vec![
                            group("active"),
                            group("offsets-only"),
                            group("nobody"),
                        ])
                        .with_include_authorized_operations(asked),
                )
                .await;
            let ops: Vec<i32> = described
                .groups
                .iter()
                .map(|g| g.authorized_operations)
                .collect();
            assert_eq!(ops, [expected; 3], "v{v} asked {asked}");
        }
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn deleting_a_topic_deletes_its_committed_offsets() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("doomed", 1).await;
    client
        .call(2, commit_request("g", "doomed", 0, 9, ""))
        .await;
    let deleted = client.call(3, req::delete_topics(&["doomed"])).await;
    assert_eq!(deleted.responses[0].error_code, 0);
    client.create_topic("doomed", 1).await;
    let fetched = client.call(1, fetch_request("g", "doomed", &[0])).await;
    assert_eq!(fetched.topics[0].partitions[0].committed_offset, -1);
    broker.shutdown().await;
}

/// ListGroups v4 filters by state and v5 by type (the Java admin's `listConsumerGroups` with
/// states, `kafka-consumer-groups --list --state`), ignoring case as Kafka does; every Weir
/// group is a classic group.
#[tokio::test]
async fn list_groups_filters_by_state_and_type() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("t", 1).await;
    let (member, generation) = join_alone(&mut client, 5, "active").await;
    let sync = SyncGroupRequest::default()
        .with_group_id(group("active"))
        .with_generation_id(generation)
        .with_member_id(s(&member));
    client.call(3, sync).await;
    client
        .call(2, commit_request("offsets-only", "t", 0, 3, ""))
        .await;
    let list = |states: &[&str], types: &[&str]| {
        ListGroupsRequest::default()
            .with_states_filter(states.iter().map(|v| s(v)).collect())
            .with_types_filter(types.iter().map(|v| s(v)).collect())
    };
    let names = |listed: &kafka_protocol::messages::ListGroupsResponse| {
        listed
            .groups
            .iter()
            .map(|g| format!("{}:{}", g.group_id.as_str(), g.group_state.as_str()))
            .collect::<Vec<_>>()
    };
    assert!(
        versions(ApiKey::ListGroups).contains(&5),
        "ListGroups v4-5 served"
    );
    let (active, idle) = ("active:Stable", "offsets-only:Empty");
    for v in 4..=*versions(ApiKey::ListGroups).end() {
        let all = client.call(v, list(&[], &[])).await;
        assert_eq!(all.error_code, 0, "v{v}");
        assert_eq!(names(&all), [active, idle], "v{v}");
        let stable = client.call(v, list(&["stable"], &[])).await;
        assert_eq!(names(&stable), [active], "v{v}");
        let empty = client.call(v, list(&[" Empty", "Dead"], &[])).await;
        assert_eq!(names(&empty), [idle], "v{v}");
        let rebalancing = client.call(v, list(&["PreparingRebalance"], &[])).await;
        assert!(names(&rebalancing).is_empty(), "v{v}");
    }
    for v in 5..=*versions(ApiKey::ListGroups).end() {
        let classic = client.call(v, list(&[], &["Classic"])).await;
        assert_eq!(names(&classic), [active, idle], "v{v}");
        assert!(
            classic
                .groups
                .iter()
                .all(|g| g.group_type.as_str() == "classic"),
            "v{v}"
        );
        let consumer = client.call(v, list(&[], &["consumer"])).await;
        assert!(names(&consumer).is_empty(), "v{v}: no KIP-848 groups");
        let both = client
            .call(v, list(&["empty"], &["consumer", "classic"]))
            .await;
        assert_eq!(names(&both), [idle], "v{v}: both filters apply");
    }
    broker.shutdown().await;
}

/// OffsetFetch v7 with `require_stable` (what a read_committed Java consumer sends) answers
/// the committed offsets: without transactions no offset is ever pending.
#[tokio::test]
async fn offset_fetch_with_require_stable_answers_the_committed_offsets() {
    let broker = broker().await;
    let mut client = broker.client().await;
    assert!(
        versions(ApiKey::OffsetFetch).contains(&7),
        "OffsetFetch v7 served"
    );
    client.create_topic("stable", 1).await;
    client
        .call(7, commit_request("rc", "stable", 0, 17, "m"))
        .await;
    for v in 7..=*versions(ApiKey::OffsetFetch).end() {
        let fetched = client
            .call(
                v,
                fetch_request("rc", "stable", &[0]).with_require_stable(true),
            )
            .await;
        assert_eq!(fetched.error_code, 0, "v{v}");
        let p = &fetched.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.committed_offset, p.metadata.as_deref()),
            (0, 17, Some("m")),
            "v{v}"
        );
    }
    broker.shutdown().await;
}
