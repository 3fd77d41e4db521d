//! OffsetDelete (key 47), v0, with Kafka's rules: an unknown group is GROUP_ID_NOT_FOUND; an
//! empty group loses the named partitions' offsets; a consumer group with members keeps the
//! offsets of topics a member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC) and loses the others;
//! a group of another protocol type with members is NON_EMPTY_GROUP; unknown partitions are
//! UNKNOWN_TOPIC_OR_PARTITION. The deletion is durable: the real binary keeps it across a
//! `kill -9`.

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    GroupId, JoinGroupRequest, OffsetCommitRequest, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest,
};
use kafka_protocol::protocol::StrBytes;
use weir_protocol::api::ApiKey;
use weir_protocol::consumer_protocol::{Subscription, encode_subscription};
use weir_protocol::error_code::ErrorCode;
use weir_tests::process::BrokerProcess;
use weir_tests::{Client, TestBroker, req, versions};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn commit(group: &str, parts: &[(&str, i32, i64)]) -> OffsetCommitRequest {
    let topics = parts
        .iter()
        .map(|&(topic, partition, offset)| {
            OffsetCommitRequestTopic::default()
                .with_name(req::topic(topic))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(partition)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(-1)
                        .with_committed_metadata(Some(s(""))),
                ])
        })
        .collect();
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(s(""))
        .with_retention_time_ms(-1)
        .with_topics(topics)
}

async fn commit_ok(client: &mut Client, group: &str, parts: &[(&str, i32, i64)]) {
    let v = *versions(ApiKey::OffsetCommit).end();
    let response = client.call(v, commit(group, parts)).await;
    for t in &response.topics {
        for p in &t.partitions {
            assert_eq!(p.error_code, 0, "{response:?}");
        }
    }
}

/// The committed offset of `topic`/`partition` (-1: none).
async fn committed(client: &mut Client, group: &str, topic: &str, partition: i32) -> i64 {
    let v = *versions(ApiKey::OffsetFetch).end();
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(Some(vec![
            OffsetFetchRequestTopic::default()
                .with_name(req::topic(topic))
                .with_partition_indexes(vec![partition]),
        ]));
    let response = client.call(v, request).await;
    response.topics[0].partitions[0].committed_offset
}

fn delete(group: &str, parts: &[(&str, i32)]) -> OffsetDeleteRequest {
    let mut topics: Vec<OffsetDeleteRequestTopic> = Vec::new();
    for &(name, partition) in parts {
        let p = OffsetDeleteRequestPartition::default().with_partition_index(partition);
        match topics.iter_mut().find(|t| &*t.name.0 == name) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                OffsetDeleteRequestTopic::default()
                    .with_name(req::topic(name))
                    .with_partitions(vec![p]),
            ),
        }
    }
    OffsetDeleteRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(topics)
}

/// (topic, partition, code) of each partition result.
fn codes(response: &OffsetDeleteResponse) -> Vec<(String, i32, i16)> {
    response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index, p.error_code))
        })
        .collect()
}

/// Joins `group` as its only member with `protocol_type` and `metadata`; the group then has
/// a member until it leaves or its session ends.
async fn join(client: &mut Client, group: &str, protocol_type: &str, metadata: Bytes) {
    let v = *versions(ApiKey::JoinGroup).end();
    let request = |member: &str| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(s(member))
            .with_protocol_type(s(protocol_type))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(metadata.clone()),
            ])
    };
    let first = client.call(v, request("")).await;
    assert_eq!(first.error_code, ErrorCode::MemberIdRequired.code());
    let joined = client.call(v, request(&first.member_id)).await;
    assert_eq!(joined.error_code, 0, "{joined:?}");
}

async fn broker() -> TestBroker {
    TestBroker::start_with(|c| c.group_initial_rebalance_delay_ms = 0).await
}

#[tokio::test]
async fn an_unknown_group_is_group_id_not_found() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("t", 1).await;
    let response = client.call(0, delete("nobody", &[("t", 0)])).await;
    assert_eq!(response.error_code, ErrorCode::GroupIdNotFound.code());
    assert!(response.topics.is_empty());
    broker.shutdown().await;
}

#[tokio::test]
async fn an_empty_group_loses_the_named_offsets_only() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("t", 2).await;
    client.create_topic("u", 1).await;
    commit_ok(&mut client, "g", &[("t", 0, 5), ("t", 1, 6), ("u", 0, 7)]).await;
    let response = client
        .call(
            0,
            delete("g", &[("t", 0), ("u", 0), ("t", 9), ("nowhere", 0)]),
        )
        .await;
    assert_eq!(response.error_code, 0);
    let unknown = ErrorCode::UnknownTopicOrPartition.code();
    assert_eq!(
        codes(&response),
        [
            ("t".to_owned(), 0, 0),
            ("t".to_owned(), 9, unknown),
            ("u".to_owned(), 0, 0),
            ("nowhere".to_owned(), 0, unknown),
        ]
    );
    assert_eq!(committed(&mut client, "g", "t", 0).await, -1);
    assert_eq!(committed(&mut client, "g", "u", 0).await, -1);
    assert_eq!(committed(&mut client, "g", "t", 1).await, 6);
    broker.shutdown().await;
}

#[tokio::test]
async fn a_consumer_group_keeps_the_offsets_of_subscribed_topics() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("sub", 1).await;
    client.create_topic("other", 1).await;
    commit_ok(&mut client, "cg", &[("sub", 0, 3), ("other", 0, 4)]).await;
    let subscription = encode_subscription(&Subscription::new(vec!["sub".to_owned()]), 0)
        .expect("subscription bytes");
    join(&mut client, "cg", "consumer", subscription).await;
    let response = client
        .call(0, delete("cg", &[("sub", 0), ("other", 0)]))
        .await;
    assert_eq!(response.error_code, 0);
    assert_eq!(
        codes(&response),
        [
            (
                "sub".to_owned(),
                0,
                ErrorCode::GroupSubscribedToTopic.code()
            ),
            ("other".to_owned(), 0, 0),
        ]
    );
    assert_eq!(committed(&mut client, "cg", "sub", 0).await, 3);
    assert_eq!(committed(&mut client, "cg", "other", 0).await, -1);
    broker.shutdown().await;
}

#[tokio::test]
async fn another_protocol_with_members_is_non_empty_group() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("t", 1).await;
    commit_ok(&mut client, "connect", &[("t", 0, 9)]).await;
    join(
        &mut client,
        "connect",
        "connect",
        Bytes::from_static(b"worker"),
    )
    .await;
    let response = client.call(0, delete("connect", &[("t", 0)])).await;
    assert_eq!(response.error_code, ErrorCode::NonEmptyGroup.code());
    assert_eq!(committed(&mut client, "connect", "t", 0).await, 9);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_survives_a_crash_of_the_real_binary() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    let log = tempfile::NamedTempFile::new().expect("log file");
    let mut broker = BrokerProcess::start(&data, log.path(), &[]);
    let mut client = Client::connect(broker.addr()).await;
    client.create_topic("t", 2).await;
    commit_ok(&mut client, "g", &[("t", 0, 11), ("t", 1, 12)]).await;
    let response = client.call(0, delete("g", &[("t", 0)])).await;
    assert_eq!(codes(&response), [("t".to_owned(), 0, 0)]);
    drop(client);
    // Answered means synced.
    broker.kill9();
    broker.restart();
    let mut client = Client::connect(broker.addr()).await;
    assert_eq!(committed(&mut client, "g", "t", 0).await, -1);
    assert_eq!(committed(&mut client, "g", "t", 1).await, 12);
    drop(client);
    assert!(broker.stop(), "clean stop");
    broker.restart();
    let mut client = Client::connect(broker.addr()).await;
    assert_eq!(committed(&mut client, "g", "t", 0).await, -1);
    drop(client);
    assert!(broker.stop(), "clean stop");
}
