//! The admin client against an in-process broker: topics and consumer groups.

use weir_broker::{Broker, BrokerConfig, RunningBroker};
use weir_client::protocol::error_code::ErrorCode;
use weir_client::{Admin, ClientConfig, NewTopic};

async fn broker() -> (tempfile::TempDir, RunningBroker) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::for_tests(dir.path());
    config.auto_create_topics = false;
    let running = Broker::new(config).start().await.expect("broker starts");
    (dir, running)
}

fn admin(broker: &RunningBroker) -> Admin {
    Admin::new(ClientConfig::new([broker.addr().to_string()]).client_id("admin-test"))
}

#[tokio::test]
async fn topics_are_created_listed_described_and_deleted() {
    let (_dir, broker) = broker().await;
    let admin = admin(&broker);
    admin
        .create_topics(&[NewTopic::new("orders", 3), NewTopic::new("audit", 1)])
        .await
        .unwrap();
    let listed: Vec<(String, usize)> = admin
        .list_topics()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.partitions.len()))
        .collect();
    assert_eq!(listed, [("audit".to_owned(), 1), ("orders".to_owned(), 3)]);
    let described = admin.describe_topics(&["orders"]).await.unwrap();
    assert_eq!(
        described[0]
            .partitions
            .iter()
            .map(|p| (p.partition, p.leader))
            .collect::<Vec<_>>(),
        [(0, 0), (1, 0), (2, 0)]
    );

    let again = admin
        .create_topics(&[NewTopic::new("orders", 3)])
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some(ErrorCode::TopicAlreadyExists));
    assert!(!again.is_retriable());
    let bad = admin
        .create_topics(&[NewTopic::new("bad/name", 1)])
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Some(ErrorCode::InvalidTopicException));
    let config = admin
        .create_topics(&[NewTopic::new("shredded", 1).config("cleanup.policy", "shred")])
        .await
        .unwrap_err();
    assert_eq!(config.code(), Some(ErrorCode::InvalidConfig));

    admin.delete_topics(&["orders"]).await.unwrap();
    let missing = admin.describe_topics(&["orders"]).await.unwrap_err();
    assert_eq!(missing.code(), Some(ErrorCode::UnknownTopicOrPartition));
    let gone = admin.delete_topics(&["orders"]).await.unwrap_err();
    assert_eq!(gone.code(), Some(ErrorCode::UnknownTopicOrPartition));
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_cluster_is_a_retriable_error() {
    let (_dir, broker) = broker().await;
    let addr = broker.addr();
    broker.shutdown().await.unwrap();
    let admin = Admin::new(ClientConfig::new([addr.to_string()]));
    let err = admin.list_topics().await.unwrap_err();
    assert!(err.is_retriable(), "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[tokio::test]
async fn groups_are_listed_described_with_lag_and_deleted() {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{GroupId, OffsetCommitRequest, ProduceRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use weir_client::Cluster;
    use weir_client::protocol::record_batch::{BatchBuilder, RecordInput};

    let (_dir, broker) = broker().await;
    let cluster = Cluster::new(ClientConfig::new([broker.addr().to_string()]));
    let admin = Admin::with_cluster(cluster.clone());
    admin
        .create_topics(&[NewTopic::new("events", 2)])
        .await
        .unwrap();
    let name = || TopicName(StrBytes::from_static_str("events"));
    // Ten records in partition 1.
    let mut batch = BatchBuilder::new();
    for _ in 0..10 {
        batch.push(RecordInput {
            value: Some(b"e"),
            ..RecordInput::default()
        });
    }
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name())
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(1)
                        .with_records(batch.build()),
                ]),
        ]);
    let produced = cluster.call_any(produce).await.unwrap();
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    // A simple commit at offset 4 of partition 1, as an assign()-based consumer makes.
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("billing")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(name())
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(1)
                        .with_committed_offset(4)
                        .with_committed_metadata(Some(StrBytes::from_static_str("note"))),
                ]),
        ]);
    let committed = cluster.call_any(commit).await.unwrap();
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);

    let groups = admin.list_groups().await.unwrap();
    assert_eq!(
        groups
            .iter()
            .map(|g| g.group_id.as_str())
            .collect::<Vec<_>>(),
        ["billing"]
    );
    let described = admin.describe_group("billing").await.unwrap();
    assert_eq!(described.state, "Empty");
    assert!(described.members.is_empty());
    assert_eq!(described.offsets.len(), 1);
    let lag = &described.offsets[0];
    assert_eq!(
        (
            lag.topic.as_str(),
            lag.partition,
            lag.committed,
            lag.end,
            lag.lag
        ),
        ("events", 1, 4, 10, 6)
    );
    assert_eq!(lag.metadata.as_deref(), Some("note"));

    admin.delete_groups(&["billing"]).await.unwrap();
    assert!(admin.list_groups().await.unwrap().is_empty());
    let again = admin.delete_groups(&["billing"]).await.unwrap_err();
    assert_eq!(again.code(), Some(ErrorCode::GroupIdNotFound));
    broker.shutdown().await.unwrap();
}
