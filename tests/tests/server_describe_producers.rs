//! DescribeProducers (key 61), v0: the idempotent producers of a partition from its producer
//! table (id, epoch, last sequence, the last batch's max timestamp; no transactions, so
//! coordinator epoch and transaction start -1); plain producers are not listed; unknown
//! partitions are UNKNOWN_TOPIC_OR_PARTITION.

use bytes::Bytes;
use kafka_protocol::messages::DescribeProducersRequest;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use weir_protocol::error_code::ErrorCode;
use weir_protocol::record_batch::{BatchBuilder, RecordInput};
use weir_tests::{TestBroker, batch, req};

fn idempotent_batch(id: i64, epoch: i16, seq: i32, count: usize, timestamp: i64) -> Bytes {
    let mut builder = BatchBuilder::new().with_producer(id, epoch, seq);
    for _ in 0..count {
        builder.push(RecordInput {
            value: Some(b"v"),
            timestamp,
            ..RecordInput::default()
        });
    }
    builder.build().expect("records")
}

#[tokio::test]
async fn idempotent_producers_are_described_per_partition() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    client.create_topic("p", 2).await;
    client
        .produce_ok("p", 0, idempotent_batch(7, 0, 0, 3, 1_000))
        .await;
    client
        .produce_ok("p", 0, idempotent_batch(7, 0, 3, 2, 2_000))
        .await;
    client
        .produce_ok("p", 0, idempotent_batch(9, 4, 0, 1, 3_000))
        .await;
    client.produce_ok("p", 0, batch(2)).await;
    let request = DescribeProducersRequest::default().with_topics(vec![
        TopicRequest::default()
            .with_name(req::topic("p"))
            .with_partition_indexes(vec![0, 1, 5]),
    ]);
    let response = client.call(0, request).await;
    let partitions = &response.topics[0].partitions;
    assert_eq!(partitions.len(), 3);
    assert_eq!(partitions[0].error_code, 0);
    let described: Vec<(i64, i32, i32, i64, i32, i64)> = partitions[0]
        .active_producers
        .iter()
        .map(|p| {
            (
                p.producer_id.0,
                p.producer_epoch,
                p.last_sequence,
                p.last_timestamp,
                p.coordinator_epoch,
                p.current_txn_start_offset,
            )
        })
        .collect();
    assert_eq!(
        described,
        [(7, 0, 4, 2_000, -1, -1), (9, 4, 0, 3_000, -1, -1)]
    );
    assert_eq!(partitions[1].error_code, 0);
    assert!(partitions[1].active_producers.is_empty());
    assert_eq!(
        partitions[2].error_code,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    broker.shutdown().await;
}
