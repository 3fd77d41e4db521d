//! DeleteRecords (key 21) at every served version: the low watermark moves, reads below it
//! are OFFSET_OUT_OF_RANGE, ListOffsets earliest and the fetch and produce responses'
//! `log_start_offset` follow it, sealed segments wholly below it are deleted at once, and the
//! real binary keeps it across a clean restart and a `kill -9`.

use std::path::Path;

use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_tests::process::BrokerProcess;
use weir_tests::{Client, TestBroker, batch, req, versions};

fn request(parts: &[(&str, i32, i64)]) -> DeleteRecordsRequest {
    let mut topics: Vec<DeleteRecordsTopic> = Vec::new();
    for &(name, partition, offset) in parts {
        let p = DeleteRecordsPartition::default()
            .with_partition_index(partition)
            .with_offset(offset);
        match topics.iter_mut().find(|t| &*t.name.0 == name) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                DeleteRecordsTopic::default()
                    .with_name(req::topic(name))
                    .with_partitions(vec![p]),
            ),
        }
    }
    DeleteRecordsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(30_000)
}

/// (topic, partition, low watermark, error code) of each result, in order.
fn results(response: &DeleteRecordsResponse) -> Vec<(String, i32, i64, i16)> {
    response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    p.low_watermark,
                    p.error_code,
                )
            })
        })
        .collect()
}

async fn delete(
    client: &mut Client,
    version: i16,
    name: &str,
    partition: i32,
    offset: i64,
) -> (i64, i16) {
    let response = client
        .call(version, request(&[(name, partition, offset)]))
        .await;
    let r = &results(&response)[0];
    (r.2, r.3)
}

/// The error code and log start offset of a fetch at `offset`.
async fn fetch_at(client: &mut Client, name: &str, offset: i64) -> (i16, i64) {
    let v = *versions(ApiKey::Fetch).end();
    let response = client.call(v, req::fetch(name, 0, offset, 0, 0)).await;
    let p = &response.responses[0].partitions[0];
    (p.error_code, p.log_start_offset)
}

/// Produces 10 batches of 4 records: offsets 0..40.
async fn fill(client: &mut Client, name: &str) {
    client.create_topic(name, 1).await;
    for i in 0..10 {
        assert_eq!(client.produce_ok(name, 0, batch(4)).await, i * 4);
    }
}

#[tokio::test]
async fn the_low_watermark_moves_and_reads_follow_at_every_version() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    for v in versions(ApiKey::DeleteRecords) {
        let name = format!("trim-v{v}");
        fill(&mut client, &name).await;
        assert_eq!(delete(&mut client, v, &name, 0, 10).await, (10, 0));
        assert_eq!(client.list_offset(&name, 0, -2).await, 10);
        assert_eq!(
            fetch_at(&mut client, &name, 9).await.0,
            ErrorCode::OffsetOutOfRange.code()
        );
        assert_eq!(fetch_at(&mut client, &name, 10).await, (0, 10));
        assert!(!client.fetch_now(&name, 0, 10).await.is_empty());
        // Produce answers carry the start too.
        let pv = *versions(ApiKey::Produce).end();
        let produced = client.call(pv, req::produce(&name, 0, batch(1), -1)).await;
        assert_eq!(
            produced.responses[0].partition_responses[0].log_start_offset,
            10
        );
        // Below the start: a no-op answering the start.
        assert_eq!(delete(&mut client, v, &name, 0, 3).await, (10, 0));
        // Past the high watermark (41 now): out of range, nothing moves.
        assert_eq!(
            delete(&mut client, v, &name, 0, 42).await,
            (-1, ErrorCode::OffsetOutOfRange.code())
        );
        assert_eq!(client.list_offset(&name, 0, -2).await, 10);
        // -1: the high watermark.
        assert_eq!(delete(&mut client, v, &name, 0, -1).await, (41, 0));
        assert_eq!(client.list_offset(&name, 0, -2).await, 41);
        assert_eq!(client.list_offset(&name, 0, -1).await, 41);
        assert!(client.fetch_now(&name, 0, 41).await.is_empty());
        assert_eq!(client.produce_ok(&name, 0, batch(2)).await, 41);
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn unknown_topics_and_partitions_are_refused_per_partition() {
    let broker = TestBroker::start_with(|c| c.auto_create_topics = false).await;
    let mut client = broker.client().await;
    fill(&mut client, "known").await;
    let v = *versions(ApiKey::DeleteRecords).end();
    let response = client
        .call(
            v,
            request(&[("known", 0, 8), ("known", 1, 0), ("missing", 0, 0)]),
        )
        .await;
    let unknown = ErrorCode::UnknownTopicOrPartition.code();
    assert_eq!(
        results(&response),
        [
            ("known".to_owned(), 0, 8, 0),
            ("known".to_owned(), 1, -1, unknown),
            ("missing".to_owned(), 0, -1, unknown),
        ]
    );
    broker.shutdown().await;
}

fn segment_files(partition_dir: &Path) -> usize {
    std::fs::read_dir(partition_dir)
        .expect("partition directory")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "log"))
        })
        .count()
}

/// Many small segments (4 KiB): batches of 20 records of ~100 bytes each.
async fn fill_segments(client: &mut Client, name: &str) -> i64 {
    client.create_topic(name, 1).await;
    let mut end = 0;
    for _ in 0..30 {
        let records = weir_tests::batch_at(&[weir_tests::BASE_TIMESTAMP; 20], 100);
        end = client.produce_ok(name, 0, records).await + 20;
    }
    end
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_survives_a_restart_and_a_crash_of_the_real_binary() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    let log = tempfile::NamedTempFile::new().expect("log file");
    let mut broker = BrokerProcess::start(&data, log.path(), &["--segment-bytes", "4096"]);
    let mut client = Client::connect(broker.addr()).await;
    let v = *versions(ApiKey::DeleteRecords).end();
    let end = fill_segments(&mut client, "kept").await;
    let partition_dir = data.join("kept-0");
    let before = segment_files(&partition_dir);
    assert!(before > 4, "{before} segments");
    assert_eq!(delete(&mut client, v, "kept", 0, 250).await, (250, 0));
    let after = segment_files(&partition_dir);
    assert!(
        after < before,
        "segments below 250 deleted at once: {before} -> {after}"
    );
    drop(client);

    assert!(broker.stop(), "clean stop");
    broker.restart();
    let mut client = Client::connect(broker.addr()).await;
    assert_eq!(client.list_offset("kept", 0, -2).await, 250);
    assert_eq!(
        fetch_at(&mut client, "kept", 249).await.0,
        ErrorCode::OffsetOutOfRange.code()
    );
    assert_eq!(fetch_at(&mut client, "kept", 250).await, (0, 250));
    assert_eq!(delete(&mut client, v, "kept", 0, 480).await, (480, 0));
    drop(client);

    // Answered means on disk: a crash right after keeps it.
    broker.kill9();
    broker.restart();
    let mut client = Client::connect(broker.addr()).await;
    assert_eq!(client.list_offset("kept", 0, -2).await, 480);
    assert_eq!(client.list_offset("kept", 0, -1).await, end);
    assert_eq!(
        fetch_at(&mut client, "kept", 479).await.0,
        ErrorCode::OffsetOutOfRange.code()
    );
    assert_eq!(fetch_at(&mut client, "kept", 480).await, (0, 480));
    drop(client);
    assert!(broker.stop(), "clean stop");
}
