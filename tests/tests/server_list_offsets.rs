//! ListOffsets (key 2) at every served version: earliest, latest, and lookups by timestamp
//! over records whose timestamps are known.

use kafka_protocol::messages::ListOffsetsResponse;
use kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse;
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_tests::{Client, TestBroker, batch_at, req, versions};

const EARLIEST: i64 = -2;
const LATEST: i64 = -1;

fn only(response: &ListOffsetsResponse) -> &ListOffsetsPartitionResponse {
    assert_eq!(response.throttle_time_ms, 0);
    assert_eq!(response.topics.len(), 1, "{response:?}");
    assert_eq!(response.topics[0].partitions.len(), 1, "{response:?}");
    &response.topics[0].partitions[0]
}

/// `(timestamp, offset)` answered for `timestamp`, after checking there is no error.
async fn lookup(client: &mut Client, v: i16, name: &str, timestamp: i64) -> (i64, i64) {
    let mut request = req::list_offsets(name, 0, timestamp);
    if v >= 2 {
        request.isolation_level = 1; // read_committed, as librdkafka and kafkajs send
    }
    let response = client.call(v, request).await;
    assert_eq!(response.topics[0].name.0.as_str(), name);
    let p = only(&response);
    assert_eq!(p.partition_index, 0);
    assert_eq!(p.error_code, 0, "v{v} {name} at {timestamp}: {p:?}");
    (p.timestamp, p.offset)
}

/// Two batches: offsets 0-4 at 1000, 1010, ..., 1040 and 5-9 at 2000, 2010, ..., 2040.
async fn two_batches(client: &mut Client, name: &str) {
    client.create_topic(name, 1).await;
    let first: Vec<i64> = (0..5).map(|i| 1000 + 10 * i).collect();
    let second: Vec<i64> = (0..5).map(|i| 2000 + 10 * i).collect();
    assert_eq!(client.produce_ok(name, 0, batch_at(&first, 8)).await, 0);
    assert_eq!(client.produce_ok(name, 0, batch_at(&second, 8)).await, 5);
}

#[tokio::test]
async fn earliest_and_latest() {
    let broker = TestBroker::start_with(|c| c.auto_create_topics = false).await;
    let mut client = broker.client().await;
    client.create_topic("empty", 1).await;
    two_batches(&mut client, "full").await;
    for v in versions(ApiKey::ListOffsets) {
        assert_eq!(
            lookup(&mut client, v, "empty", EARLIEST).await,
            (-1, 0),
            "v{v}"
        );
        assert_eq!(
            lookup(&mut client, v, "empty", LATEST).await,
            (-1, 0),
            "v{v}"
        );
        assert_eq!(
            lookup(&mut client, v, "full", EARLIEST).await,
            (-1, 0),
            "v{v}"
        );
        assert_eq!(
            lookup(&mut client, v, "full", LATEST).await,
            (-1, 10),
            "v{v}"
        );
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn by_timestamp_finds_the_first_record_at_or_after() {
    let broker = TestBroker::start_with(|c| c.auto_create_topics = false).await;
    let mut client = broker.client().await;
    two_batches(&mut client, "timed").await;
    client.create_topic("empty", 1).await;
    for v in versions(ApiKey::ListOffsets) {
        // Exact hits: the record's own offset, even inside a batch.
        for (timestamp, offset) in [
            (0, 0),
            (1000, 0),
            (1020, 2),
            (1040, 4),
            (2000, 5),
            (2030, 8),
            (2040, 9),
        ] {
            let (_, found) = lookup(&mut client, v, "timed", timestamp).await;
            assert_eq!(found, offset, "v{v} at {timestamp}");
        }
        // Between records: the next one.
        for (timestamp, offset) in [(1001, 1), (1035, 4), (1041, 5), (1999, 5), (2039, 9)] {
            let (_, found) = lookup(&mut client, v, "timed", timestamp).await;
            assert_eq!(found, offset, "v{v} at {timestamp}");
        }
        // After every record, or nothing at all: -1.
        assert_eq!(
            lookup(&mut client, v, "timed", 2041).await,
            (-1, -1),
            "v{v}"
        );
        assert_eq!(
            lookup(&mut client, v, "timed", i64::MAX).await,
            (-1, -1),
            "v{v}"
        );
        assert_eq!(
            lookup(&mut client, v, "empty", 1000).await,
            (-1, -1),
            "v{v}"
        );
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn by_timestamp_answers_the_found_records_timestamp() {
    let broker = TestBroker::start_with(|c| c.auto_create_topics = false).await;
    let mut client = broker.client().await;
    two_batches(&mut client, "timed").await;
    for v in versions(ApiKey::ListOffsets) {
        for (timestamp, expected) in [
            (1000, (1000, 0)),
            (1001, (1010, 1)),
            (1041, (2000, 5)),
            (0, (1000, 0)),
        ] {
            assert_eq!(
                lookup(&mut client, v, "timed", timestamp).await,
                expected,
                "v{v} at {timestamp}"
            );
        }
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn unknown_topic_or_partition() {
    let broker = TestBroker::start_with(|c| c.auto_create_topics = false).await;
    let mut client = broker.client().await;
    client.create_topic("one", 1).await;
    for v in versions(ApiKey::ListOffsets) {
        for (name, partition) in [("one", 1), ("one", -1), ("missing", 0)] {
            for timestamp in [EARLIEST, LATEST, 1000] {
                let response = client
                    .call(v, req::list_offsets(name, partition, timestamp))
                    .await;
                let p = only(&response);
                assert_eq!(p.partition_index, partition);
                assert_eq!(
                    p.error_code,
                    ErrorCode::UnknownTopicOrPartition.code(),
                    "v{v} {name}/{partition}"
                );
            }
        }
    }
    broker.shutdown().await;
}

/// v7+: MAX_TIMESTAMP (-3, KIP-734) answers the first record with the largest timestamp and
/// that timestamp; before v7 -3 is an ordinary timestamp (the first record at or after it).
#[tokio::test]
async fn max_timestamp_from_v7() {
    const MAX_TIMESTAMP: i64 = -3;
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    client.create_topic("mt", 1).await;
    for v in versions(ApiKey::ListOffsets) {
        let (timestamp, offset) = lookup(&mut client, v, "mt", MAX_TIMESTAMP).await;
        assert_eq!((timestamp, offset), (-1, -1), "empty log, v{v}");
    }
    client
        .produce_ok("mt", 0, batch_at(&[100, 500, 300], 4))
        .await;
    client
        .produce_ok("mt", 0, batch_at(&[200, 500, 400], 4))
        .await;
    for v in versions(ApiKey::ListOffsets) {
        let expected = if v >= 7 { (500, 1) } else { (100, 0) };
        assert_eq!(
            lookup(&mut client, v, "mt", MAX_TIMESTAMP).await,
            expected,
            "v{v}"
        );
    }
    broker.shutdown().await;
}
