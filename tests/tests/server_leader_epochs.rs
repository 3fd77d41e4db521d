//! Leader epochs toward clients (KIP-101, KIP-320): OffsetForLeaderEpoch (key 23) answered
//! from the partition log's leader-epoch history, the epoch Metadata (v7+) and ListOffsets
//! (v4+) report, and the `current_leader_epoch` check of Fetch (v9+), ListOffsets (v4+) and
//! OffsetForLeaderEpoch: FENCED_LEADER_EPOCH for an older epoch, UNKNOWN_LEADER_EPOCH for a
//! newer one, -1 for none.
//!
//! A single broker writes epoch 0; the process test gives a log batches of a later epoch (as
//! a replicated partition's leader would have written them), restarts the real broker on it,
//! and checks that every API then answers that epoch.

use std::fs;
use std::path::Path;

use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{FetchRequest, ListOffsetsRequest, OffsetForLeaderEpochRequest};
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_protocol::record_batch::field;
use weir_tests::process::BrokerProcess;
use weir_tests::{Client, TestBroker, batch, req, versions};

/// OffsetForLeaderEpoch for `(partition, current_leader_epoch, leader_epoch)`s of `topic`.
fn epochs_request(topic: &str, parts: &[(i32, i32, i32)]) -> OffsetForLeaderEpochRequest {
    let partitions = parts
        .iter()
        .map(|&(partition, current, epoch)| {
            OffsetForLeaderPartition::default()
                .with_partition(partition)
                .with_current_leader_epoch(current)
                .with_leader_epoch(epoch)
        })
        .collect();
    OffsetForLeaderEpochRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![
            OffsetForLeaderTopic::default()
                .with_topic(req::topic(topic))
                .with_partitions(partitions),
        ])
}

/// `(error code, leader epoch, end offset)` per partition of the first topic.
async fn end_offsets(
    client: &mut Client,
    version: i16,
    topic: &str,
    parts: &[(i32, i32, i32)],
) -> Vec<(i16, i32, i64)> {
    let response = client.call(version, epochs_request(topic, parts)).await;
    assert_eq!(response.topics.len(), 1);
    response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.error_code, p.leader_epoch, p.end_offset))
        .collect()
}

const NONE: i16 = 0;
const FENCED: i16 = ErrorCode::FencedLeaderEpoch.code();
const UNKNOWN_EPOCH: i16 = ErrorCode::UnknownLeaderEpoch.code();
const UNKNOWN_PARTITION: i16 = ErrorCode::UnknownTopicOrPartition.code();

#[tokio::test]
async fn offset_for_leader_epoch_answers_from_the_log_at_every_version() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    client.create_topic("e", 2).await;
    client.produce_ok("e", 0, batch(3)).await;
    client.produce_ok("e", 0, batch(2)).await;
    assert_eq!(versions(ApiKey::OffsetForLeaderEpoch), 2..=4);
    for version in versions(ApiKey::OffsetForLeaderEpoch) {
        let got = end_offsets(
            &mut client,
            version,
            "e",
            &[
                (0, -1, 0), // the latest epoch: the log end
                (0, 0, 0),  // with the right current epoch
                (0, -1, 1), // an epoch above the latest: undefined
                (0, -1, -1),
                (0, 1, 0), // a current epoch newer than the leader's
                (1, 0, 0), // an empty log knows no epoch
                (7, -1, 0),
            ],
        )
        .await;
        assert_eq!(
            got,
            [
                (NONE, 0, 5),
                (NONE, 0, 5),
                (NONE, -1, -1),
                (NONE, -1, -1),
                (UNKNOWN_EPOCH, -1, -1),
                (NONE, -1, -1),
                (UNKNOWN_PARTITION, -1, -1),
            ],
            "v{version}"
        );
        let unknown = end_offsets(&mut client, version, "nope", &[(0, -1, 0)]).await;
        assert_eq!(unknown, [(UNKNOWN_PARTITION, -1, -1)], "v{version}");
    }
    broker.shutdown().await;
}

/// The byte length of each batch in a segment file, from the first.
fn batch_lengths(data: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 12 <= data.len() {
        let len = i32::from_be_bytes(data[at + 8..at + 12].try_into().unwrap());
        if len <= 0 {
            break;
        }
        let total = 12 + len as usize;
        if at + total > data.len() {
            break;
        }
        out.push(total);
        at += total;
    }
    out
}

/// Rewrites the partition-leader-epoch of every batch of `partition_dir` from the
/// `from`-th on to `epoch`, and removes the epoch history (so the broker rebuilds it).
fn raise_epochs(partition_dir: &Path, from: usize, epoch: i32) {
    let path = partition_dir.join("00000000000000000000.log");
    let mut data = fs::read(&path).unwrap();
    let lens = batch_lengths(&data);
    let mut at: usize = lens[..from].iter().sum();
    for len in &lens[from..] {
        let field_at = at + field::PARTITION_LEADER_EPOCH;
        data[field_at..field_at + 4].copy_from_slice(&epoch.to_be_bytes());
        at += len;
    }
    fs::write(&path, data).unwrap();
    fs::remove_file(partition_dir.join("leader-epoch-checkpoint")).unwrap();
}

fn fetch_at(offset: i64, current_epoch: i32) -> FetchRequest {
    let mut request = req::fetch("e", 0, offset, 0, 1);
    request.topics[0].partitions[0].current_leader_epoch = current_epoch;
    request
}

fn list_latest(current_epoch: i32) -> ListOffsetsRequest {
    let mut request = req::list_offsets("e", 0, -1);
    request.topics[0].partitions[0].current_leader_epoch = current_epoch;
    request
}

#[tokio::test]
async fn a_log_written_at_a_later_epoch_is_served_at_that_epoch_by_every_api() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut broker = BrokerProcess::start(&data, &dir.path().join("broker.log"), &[]);
    let mut client = Client::connect(broker.addr()).await;
    client.create_topic("e", 2).await;
    client.produce_ok("e", 0, batch(3)).await;
    let second = client.produce_ok("e", 0, batch(2)).await;
    assert_eq!(second, 3);
    drop(client);
    assert!(broker.stop());
    // As if a leader of epoch 3 had written the second batch.
    raise_epochs(&data.join("e-0"), 1, 3);
    broker.restart();
    let mut client = Client::connect(broker.addr()).await;

    // Metadata v7+ carries the epoch; before v7 there is no field.
    for version in versions(ApiKey::Metadata).filter(|&v| v >= 7) {
        let response = client
            .call(version, req::metadata(version, Some(&["e"])))
            .await;
        let epochs: Vec<(i32, i32)> = response.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.leader_epoch))
            .collect();
        assert_eq!(epochs, [(0, 3), (1, 0)], "Metadata v{version}");
    }

    // OffsetForLeaderEpoch: epoch 0 ended where epoch 3 began.
    let got = end_offsets(
        &mut client,
        4,
        "e",
        &[(0, 3, 0), (0, 3, 2), (0, 3, 3), (0, 2, 3), (0, 4, 3)],
    )
    .await;
    assert_eq!(
        got,
        [
            (NONE, 0, 3),
            (NONE, 0, 3),
            (NONE, 3, 5),
            (FENCED, -1, -1),
            (UNKNOWN_EPOCH, -1, -1)
        ]
    );

    // Fetch v9+ checks the client's epoch; older versions cannot send one.
    for version in versions(ApiKey::Fetch) {
        let checks: &[(i32, i16)] = if version >= 9 {
            &[(3, NONE), (-1, NONE), (2, FENCED), (4, UNKNOWN_EPOCH)]
        } else {
            &[(-1, NONE)]
        };
        for &(epoch, code) in checks {
            let response = client.call(version, fetch_at(0, epoch)).await;
            let p = &response.responses[0].partitions[0];
            assert_eq!(p.error_code, code, "Fetch v{version} epoch {epoch}");
            let records = p.records.as_ref().map_or(0, |r| r.len());
            assert_eq!(records > 0, code == NONE, "Fetch v{version} epoch {epoch}");
        }
    }

    // ListOffsets v4+ checks the epoch and answers it with the offset.
    for version in versions(ApiKey::ListOffsets) {
        let checks: &[(i32, i16)] = if version >= 4 {
            &[(3, NONE), (-1, NONE), (2, FENCED), (4, UNKNOWN_EPOCH)]
        } else {
            &[(-1, NONE)]
        };
        for &(epoch, code) in checks {
            let response = client.call(version, list_latest(epoch)).await;
            let p = &response.topics[0].partitions[0];
            assert_eq!(p.error_code, code, "ListOffsets v{version} epoch {epoch}");
            if code == NONE {
                assert_eq!(p.offset, 5, "ListOffsets v{version}");
                let expected_epoch = if version >= 4 { 3 } else { -1 };
                assert_eq!(p.leader_epoch, expected_epoch, "ListOffsets v{version}");
            }
        }
    }
    drop(client);
    assert!(broker.stop());
}
