//! A topic catalog holding a topic placed by a cluster (its `id` and `local` lines), opened by
//! the real `weir-broker` binary: only the local partitions get a log, directories of the
//! others are removed as orphans, and a rewrite of the file keeps the placement while topics
//! of the broker on its own are written as before. Offsets of a partition held by another
//! broker can still be committed and deleted here (a group's coordinator need not hold the
//! partitions its members read).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::{
    DescribeLogDirsRequest, GroupId, OffsetCommitRequest, OffsetDeleteRequest,
};
use kafka_protocol::protocol::StrBytes;
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_tests::process::{BrokerProcess, free_port};
use weir_tests::{Client, batch, req, versions};

const PLACED: &str = "topic spread 3\nid 6f1c2a4e-0d3b-4b8e-9a57-2f0e1d6c8b90\nlocal 1\n";

fn write_catalog(data: &Path, body: &str) {
    std::fs::create_dir_all(data).expect("data directory");
    let crc = crc32fast::hash(body.as_bytes());
    std::fs::write(data.join("topics"), format!("{body}crc32 {crc:08x}\n")).expect("catalog");
}

/// (topic, partition) of every partition DescribeLogDirs reports, sorted.
async fn described(client: &mut Client) -> Vec<(String, i32)> {
    let v = *versions(ApiKey::DescribeLogDirs).end();
    let response = client
        .call(v, DescribeLogDirsRequest::default().with_topics(None))
        .await;
    let mut out: Vec<(String, i32)> = response.results[0]
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index))
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn the_broker_opens_a_placed_topic_with_only_its_local_partitions() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    write_catalog(&data, PLACED);
    // A partition this broker does not hold (left by a crash, or held before).
    std::fs::create_dir_all(data.join("spread-0")).expect("orphan");
    std::fs::write(
        data.join("spread-0").join("00000000000000000000.log"),
        b"old",
    )
    .expect("file");
    let mut broker = BrokerProcess::start(&data, &dir.path().join("broker.log"), &[]);
    assert!(
        !data.join("spread-0").exists(),
        "orphan removed at start-up"
    );
    assert!(data.join("spread-1").is_dir());
    assert!(!data.join("spread-2").exists());

    let mut client = Client::connect(broker.addr()).await;
    let v = *versions(ApiKey::Metadata).end();
    let metadata = client.call(v, req::metadata(v, Some(&["spread"]))).await;
    assert_eq!(metadata.topics[0].error_code, 0);
    assert_eq!(
        metadata.topics[0].partitions.len(),
        3,
        "the count is the topic's"
    );
    assert_eq!(client.produce_ok("spread", 1, batch(2)).await, 0);
    let v = *versions(ApiKey::Produce).end();
    let elsewhere = client
        .call(v, req::produce("spread", 0, batch(1), -1))
        .await;
    assert_ne!(
        elsewhere.responses[0].partition_responses[0].error_code, 0,
        "a partition not held here takes no record"
    );
    assert_eq!(described(&mut client).await, [("spread".to_owned(), 1)]);

    // A create rewrites the file: the placement kept, the new topic as before clusters.
    client.create_topic("plain", 1).await;
    let text = std::fs::read_to_string(data.join("topics")).expect("catalog");
    let body = format!("topic plain 1\n{PLACED}");
    assert_eq!(
        text,
        format!("{body}crc32 {:08x}\n", crc32fast::hash(body.as_bytes()))
    );

    drop(client);
    broker.kill9();
    broker.restart();
    let mut client = Client::connect(broker.addr()).await;
    assert_eq!(client.produce_ok("spread", 1, batch(1)).await, 2);
    assert_eq!(
        described(&mut client).await,
        [("plain".to_owned(), 0), ("spread".to_owned(), 1)]
    );
    drop(client);
    assert!(broker.stop());
}

/// The code of each partition an OffsetCommit (simple: no generation) of `offset` to
/// `partitions` of `topic` gets, in order.
async fn commit(client: &mut Client, group: &str, topic: &str, partitions: &[i32]) -> Vec<i16> {
    let v = *versions(ApiKey::OffsetCommit).end();
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(req::topic(topic))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|&p| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(5)
                                .with_committed_leader_epoch(-1)
                        })
                        .collect(),
                ),
        ]);
    let response = client.call(v, request).await;
    response.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect()
}

#[tokio::test]
async fn offsets_of_partitions_held_elsewhere_are_committed_and_deleted() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    write_catalog(&data, PLACED);
    let mut broker = BrokerProcess::start(&data, &dir.path().join("broker.log"), &[]);
    let mut client = Client::connect(broker.addr()).await;
    let unknown = ErrorCode::UnknownTopicOrPartition.code();
    assert_eq!(
        commit(&mut client, "readers", "spread", &[0, 1, 2, 3]).await,
        [0, 0, 0, unknown],
        "every partition of the topic, held here or not; none past its count"
    );
    let v = *versions(ApiKey::OffsetDelete).end();
    let request = OffsetDeleteRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("readers")))
        .with_topics(vec![
            OffsetDeleteRequestTopic::default()
                .with_name(req::topic("spread"))
                .with_partitions(
                    [0, 3]
                        .into_iter()
                        .map(|p| OffsetDeleteRequestPartition::default().with_partition_index(p))
                        .collect(),
                ),
        ]);
    let response = client.call(v, request).await;
    assert_eq!(response.error_code, 0, "{response:?}");
    let codes: Vec<i16> = response.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, [0, unknown]);
    drop(client);
    assert!(broker.stop());
}

/// The JSON body of `GET path` on the HTTP port.
fn get_json(port: u16, path: &str) -> serde_json::Value {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the HTTP port");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: w\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("headers end");
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "GET {path}: {head}\n{body}"
    );
    serde_json::from_str(body).expect("JSON")
}

#[tokio::test]
async fn the_http_api_shows_a_placed_topic_by_its_count_and_its_local_partitions() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    let elsewhere = "topic elsewhere 2\nid 0b8f1e2d-3c4a-4f5e-8d6c-7b9a0e1f2c3d\nlocal -\n\
                     config retention.ms 1000\n";
    write_catalog(&data, &format!("{elsewhere}{PLACED}"));
    let http = free_port();
    let http_arg = format!("127.0.0.1:{http}");
    let mut broker = BrokerProcess::start(
        &data,
        &dir.path().join("broker.log"),
        &["--http-listen", &http_arg],
    );
    let list = get_json(http, "/v1/topics");
    let counts: Vec<(String, u64)> = list["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().expect("name").to_owned(),
                t["partitions"].as_u64().expect("count"),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [("elsewhere".to_owned(), 2), ("spread".to_owned(), 3)]
    );
    let spread = get_json(http, "/v1/topics/spread");
    let listed: Vec<i64> = spread["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| p["partition"].as_i64().expect("index"))
        .collect();
    assert_eq!(listed, [1], "only the partition held here");
    let held_elsewhere = get_json(http, "/v1/topics/elsewhere");
    assert_eq!(held_elsewhere["partitions"], serde_json::json!([]));
    assert_eq!(
        held_elsewhere["configs"]["retention.ms"], "1000",
        "the settings its logs would run with"
    );
    let cluster = get_json(http, "/v1/cluster");
    assert_eq!(cluster["partitions"], 1, "partitions held by this broker");
    assert!(broker.stop());
}
