//! The admin client's partition and cluster operations against an in-process broker:
//! delete_records, create_partitions, delete_group_offsets, describe_cluster,
//! describe_log_dirs.

use std::net::SocketAddr;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use weir_broker::{Broker, BrokerConfig, RunningBroker};
use weir_client::admin::HIGH_WATERMARK;
use weir_client::protocol::error_code::ErrorCode;
use weir_client::{
    Admin, ClientConfig, Cluster, NewTopic, Producer, ProducerConfig, ProducerRecord,
};

async fn broker() -> (tempfile::TempDir, RunningBroker) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::for_tests(dir.path());
    config.auto_create_topics = false;
    let running = Broker::new(config).start().await.expect("broker starts");
    (dir, running)
}

/// `count` records into `topic`/`partition`, one at a time (so each is its own batch).
async fn produce(addr: SocketAddr, topic: &str, partition: i32, count: usize) {
    let producer = Producer::new(ProducerConfig::new([addr.to_string()])).unwrap();
    for i in 0..count {
        let delivery = producer
            .send(ProducerRecord::new(topic, format!("v{i}")).partition(partition))
            .await
            .unwrap();
        delivery.await.unwrap();
    }
    producer.close().await.unwrap();
}

#[tokio::test]
async fn records_are_deleted_per_partition() {
    let (_dir, broker) = broker().await;
    let admin = Admin::new(ClientConfig::new([broker.addr().to_string()]));
    admin
        .create_topics(&[NewTopic::new("trim", 2)])
        .await
        .unwrap();
    produce(broker.addr(), "trim", 0, 10).await;
    produce(broker.addr(), "trim", 1, 4).await;
    let outcomes = admin
        .delete_records(&[
            ("trim".to_owned(), 0, 6),
            ("trim".to_owned(), 1, HIGH_WATERMARK),
        ])
        .await
        .unwrap();
    assert_eq!(*outcomes[&("trim".to_owned(), 0)].as_ref().unwrap(), 6);
    assert_eq!(*outcomes[&("trim".to_owned(), 1)].as_ref().unwrap(), 4);
    let past = admin
        .delete_records(&[("trim".to_owned(), 0, 11)])
        .await
        .unwrap();
    assert_eq!(
        past[&("trim".to_owned(), 0)].as_ref().unwrap_err().code(),
        Some(ErrorCode::OffsetOutOfRange)
    );
    let cluster = Cluster::new(ClientConfig::new([broker.addr().to_string()]));
    let earliest = cluster
        .list_offsets(&[("trim".to_owned(), 0, -2), ("trim".to_owned(), 1, -2)])
        .await
        .unwrap();
    assert_eq!(*earliest[&("trim".to_owned(), 0)].as_ref().unwrap(), 6);
    assert_eq!(*earliest[&("trim".to_owned(), 1)].as_ref().unwrap(), 4);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn partitions_are_added() {
    let (_dir, broker) = broker().await;
    let admin = Admin::new(ClientConfig::new([broker.addr().to_string()]));
    admin
        .create_topics(&[NewTopic::new("grow", 1)])
        .await
        .unwrap();
    admin.create_partitions("grow", 4).await.unwrap();
    let described = admin.describe_topics(&["grow"]).await.unwrap();
    assert_eq!(described[0].partitions.len(), 4);
    let shrink = admin.create_partitions("grow", 2).await.unwrap_err();
    assert_eq!(shrink.code(), Some(ErrorCode::InvalidPartitions));
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn group_offsets_are_deleted() {
    let (_dir, broker) = broker().await;
    let cluster = Cluster::new(ClientConfig::new([broker.addr().to_string()]));
    let admin = Admin::with_cluster(cluster.clone());
    admin
        .create_topics(&[NewTopic::new("events", 2)])
        .await
        .unwrap();
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("billing")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("events")))
                .with_partitions(
                    (0..2)
                        .map(|p| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(0)
                        })
                        .collect(),
                ),
        ]);
    cluster.call_any(commit).await.unwrap();
    admin
        .delete_group_offsets("billing", &[("events".to_owned(), 0)])
        .await
        .unwrap();
    let left: Vec<(String, i32)> = admin
        .describe_group("billing")
        .await
        .unwrap()
        .offsets
        .into_iter()
        .map(|o| (o.topic, o.partition))
        .collect();
    assert_eq!(left, [("events".to_owned(), 1)]);
    let unknown = admin
        .delete_group_offsets("nobody", &[("events".to_owned(), 0)])
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Some(ErrorCode::GroupIdNotFound));
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_cluster_and_its_log_dirs_are_described() {
    let (dir, broker) = broker().await;
    let admin = Admin::new(ClientConfig::new([broker.addr().to_string()]));
    let cluster = admin.describe_cluster(true).await.unwrap();
    assert!(!cluster.cluster_id.is_empty());
    assert_eq!(cluster.controller_id, 0);
    assert_eq!(cluster.brokers.len(), 1);
    assert_eq!(cluster.brokers[0].port, i32::from(broker.addr().port()));
    assert!(cluster.authorized_operations.is_some_and(|ops| ops > 0));
    assert_eq!(
        admin
            .describe_cluster(false)
            .await
            .unwrap()
            .authorized_operations,
        None
    );

    admin
        .create_topics(&[NewTopic::new("sized", 1)])
        .await
        .unwrap();
    produce(broker.addr(), "sized", 0, 3).await;
    let dirs = admin.describe_log_dirs().await.unwrap();
    assert_eq!(dirs.len(), 1);
    let d = &dirs[0];
    assert_eq!(
        d.path,
        std::path::absolute(dir.path())
            .unwrap()
            .display()
            .to_string()
    );
    assert!(d.total_bytes > 0 && d.usable_bytes > 0);
    assert_eq!(d.partitions.len(), 1);
    assert_eq!(d.partitions[0].topic, "sized");
    assert!(d.partitions[0].size_bytes > 0);
    assert_eq!(d.partitions[0].offset_lag, 0);
    broker.shutdown().await.unwrap();
}
