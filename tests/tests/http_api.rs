//! The JSON admin API under `/v1/` against an in-process broker: the shapes of the cluster,
//! topic and group answers, lag equal to high watermark minus committed offset (as
//! `/metrics` says), the record browser from an offset and from a time with keys, values
//! (text, JSON pretty-printed, binary as base64) and headers, its bounds, and bad input
//! answered with a JSON 4xx.

use std::net::SocketAddr;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{GroupId, JoinGroupRequest, OffsetCommitRequest, SyncGroupRequest};
use kafka_protocol::protocol::StrBytes;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_broker::config::HttpListen;
use weir_protocol::compression::compress;
use weir_protocol::consumer_protocol::{Assignment, TopicPartitions, encode_assignment};
use weir_protocol::record_batch::{
    BatchBuilder, Compression, HEADER_LEN, RecordInput, with_compressed_records,
};
use weir_tests::{Client, TestBroker, batch, batch_at, req, within};

async fn http_broker() -> TestBroker {
    TestBroker::start_with(|c| {
        c.http_listen = Some(HttpListen::At(SocketAddr::from(([127, 0, 0, 1], 0))));
        c.group_initial_rebalance_delay_ms = 0;
    })
    .await
}

/// Status and body of `GET path`.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    within("http get", async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: weir\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("read");
        let answer = String::from_utf8(answer).expect("UTF-8 answer");
        let (head, body) = answer.split_once("\r\n\r\n").expect("headers end");
        let status = head[9..12].parse().expect("status code");
        (status, body.to_owned())
    })
    .await
}

/// The JSON of `GET path`, which must answer `status`.
async fn json(addr: SocketAddr, path: &str, status: u16) -> Value {
    let (got, body) = get(addr, path).await;
    assert_eq!(got, status, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|err| panic!("GET {path}: {err}: {body}"))
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// Who commits: a member of a generation, or a simple consumer (`None`).
type Committer<'a> = Option<(&'a str, i32)>;

/// Commits `offset` for `group` on `topic`/`partition`.
async fn commit(
    client: &mut Client,
    (group, by): (&str, Committer<'_>),
    topic: &str,
    partition: i32,
    offset: i64,
) {
    let (member, generation) = by.unwrap_or(("", -1));
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_retention_time_ms(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(req::topic(topic))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(partition)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(-1),
                ]),
        ]);
    let response = client.call(2, request).await;
    assert_eq!(
        response.topics[0].partitions[0].error_code, 0,
        "{response:?}"
    );
}

#[tokio::test]
async fn cluster_topics_and_partitions_have_their_shapes() {
    let broker = http_broker().await;
    let http = broker.http_addr().expect("an HTTP listener");
    let mut client = broker.client().await;
    client.create_topic("shapes", 3).await;
    let first = batch(7);
    client.produce_ok("shapes", 1, first.clone()).await;
    client.produce_ok("shapes", 1, batch(2)).await;

    let cluster = json(http, "/v1/cluster", 200).await;
    assert_eq!(cluster["broker_id"], 0);
    assert!(
        cluster["cluster_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert_eq!(cluster["advertised"]["port"], broker.addr().port());
    assert_eq!(cluster["version"], env!("CARGO_PKG_VERSION"));
    assert!(cluster["uptime_seconds"].as_f64().is_some());
    assert_eq!(
        (cluster["topics"].clone(), cluster["partitions"].clone()),
        (1.into(), 3.into())
    );
    assert_eq!(cluster["records_in_total"], 9);
    assert!(
        cluster["disk_bytes"]
            .as_i64()
            .is_some_and(|b| b > first.len() as i64)
    );
    let brokers = json(http, "/v1/brokers", 200).await;
    assert_eq!(brokers["brokers"][0]["id"], 0);
    assert_eq!(brokers["brokers"][0]["port"], broker.addr().port());

    let list = json(http, "/v1/topics", 200).await;
    assert_eq!(list["truncated"], false);
    let topic = &list["topics"][0];
    assert_eq!(
        (topic["name"].as_str(), topic["partitions"].as_i64()),
        (Some("shapes"), Some(3))
    );
    assert_eq!(topic["records"], 9);

    let detail = json(http, "/v1/topics/shapes", 200).await;
    assert_eq!(detail["truncated"], false);
    let partitions = detail["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 3);
    let p1 = &partitions[1];
    assert_eq!(p1["partition"], 1);
    assert_eq!(p1["log_start_offset"], 0);
    assert_eq!(p1["log_end_offset"], 9);
    assert_eq!(p1["high_watermark"], 9);
    assert_eq!(p1["segments"], 1);
    assert_eq!(p1["records_in_total"], 9);
    assert_eq!(partitions[0]["high_watermark"], 0);
    let stored = p1["size_bytes"].as_i64().expect("size");
    assert!(stored > first.len() as i64, "{p1}");
    assert_eq!(detail["configs"]["cleanup.policy"], "delete");
    assert!(detail["configs"]["segment.bytes"].is_string());

    let missing = json(http, "/v1/topics/none-such", 404).await;
    assert_eq!(missing["error"]["code"], "unknown_topic");
    let nowhere = json(http, "/v1/nowhere", 404).await;
    assert_eq!(nowhere["error"]["code"], "no_route");
    broker.shutdown().await;
}

/// Joins `group` alone as a consumer with client id "console-test" and syncs an assignment of
/// `topic` partitions 0 and 1 to itself; returns its member id and generation.
async fn join_and_sync(client: &mut Client, group: &str, topic: &str) -> (String, i32) {
    let join = |member: &str| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(s(member))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(Bytes::from_static(b"")),
            ])
    };
    // v4+: the first join hands out a member id to join with.
    let first = client.call(5, join("")).await;
    let member = first.member_id.to_string();
    let joined = client.call(5, join(&member)).await;
    assert_eq!(joined.error_code, 0, "{joined:?}");
    let assignment = Assignment {
        partitions: vec![TopicPartitions::new(topic, vec![0, 1])],
        user_data: None,
    };
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(joined.generation_id)
        .with_member_id(s(&member))
        .with_assignments(vec![
            SyncGroupRequestAssignment::default()
                .with_member_id(s(&member))
                .with_assignment(encode_assignment(&assignment, 0).expect("encodes")),
        ]);
    assert_eq!(client.call(3, sync).await.error_code, 0);
    (member, joined.generation_id)
}

#[tokio::test]
async fn groups_show_members_assignments_and_the_lag_metrics_report() {
    let broker = http_broker().await;
    let http = broker.http_addr().expect("an HTTP listener");
    let mut client = broker.client().await;
    client.create_topic("lagged", 2).await;
    client.produce_ok("lagged", 0, batch(10)).await;
    client.produce_ok("lagged", 1, batch(4)).await;
    let (member, generation) = join_and_sync(&mut client, "live", "lagged").await;
    let live = ("live", Some((member.as_str(), generation)));
    commit(&mut client, live, "lagged", 0, 3).await;
    commit(&mut client, live, "lagged", 1, 4).await;
    commit(&mut client, ("simple", None), "lagged", 0, 9).await;

    let list = json(http, "/v1/groups", 200).await;
    let groups = list["groups"].as_array().expect("groups");
    let names: Vec<_> = groups
        .iter()
        .map(|g| g["group"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["live", "simple"]);
    assert_eq!(
        (groups[0]["state"].as_str(), groups[0]["members"].as_i64()),
        (Some("Stable"), Some(1))
    );
    assert_eq!(groups[1]["state"], "Empty");

    let live = json(http, "/v1/groups/live", 200).await;
    assert_eq!(live["state"], "Stable");
    assert_eq!(live["protocol"], "range");
    let m = &live["members"][0];
    assert_eq!(m["member_id"], member.as_str());
    assert!(
        m["client_host"]
            .as_str()
            .is_some_and(|h| h.contains("127.0.0.1")),
        "{m}"
    );
    assert_eq!(m["assignment"][0]["topic"], "lagged");
    assert_eq!(m["assignment"][0]["partitions"], serde_json::json!([0, 1]));
    let offsets = live["offsets"].as_array().expect("offsets");
    assert_eq!(offsets.len(), 2);
    for (o, (hw, committed)) in offsets.iter().zip([(10, 3), (4, 4)]) {
        assert_eq!(o["high_watermark"], hw, "{o}");
        assert_eq!(o["committed_offset"], committed, "{o}");
        assert_eq!(o["lag"], hw - committed, "{o}");
    }
    assert_eq!(live["total_lag"], 7);
    assert_eq!(live["truncated"], false);

    // The same figure as the metric.
    let (_, metrics) = get(http, "/metrics").await;
    let metric = "weir_consumer_group_lag{group=\"live\",topic=\"lagged\",partition=\"0\"} ";
    let line = metrics
        .lines()
        .find(|l| l.starts_with(metric))
        .expect("lag metric");
    assert_eq!(line[metric.len()..].trim(), "7");

    let simple = json(http, "/v1/groups/simple", 200).await;
    assert_eq!(simple["state"], "Empty");
    assert_eq!(simple["members"], serde_json::json!([]));
    assert_eq!(simple["offsets"][0]["lag"], 1);
    let missing = json(http, "/v1/groups/none-such", 404).await;
    assert_eq!(missing["error"]["code"], "unknown_group");
    broker.shutdown().await;
}

/// One record with key `key`, `value` and `headers`, at `timestamp`.
fn one_record(
    key: &[u8],
    value: &[u8],
    headers: &[(&[u8], Option<&[u8]>)],
    timestamp: i64,
) -> Bytes {
    let mut builder = BatchBuilder::new();
    builder.push(RecordInput {
        key: Some(key),
        value: Some(value),
        headers,
        timestamp,
    });
    builder.build().expect("one record")
}

#[tokio::test]
async fn the_record_browser_reads_by_offset_and_by_time_with_every_kind_of_value() {
    let broker = http_broker().await;
    let http = broker.http_addr().expect("an HTTP listener");
    let mut client = broker.client().await;
    client.create_topic("browse", 1).await;
    let t0 = 1_700_000_000_000;
    client
        .produce_ok("browse", 0, batch_at(&[t0, t0 + 1, t0 + 2], 4))
        .await; // 0..=2
    let headers: &[(&[u8], Option<&[u8]>)] = &[(b"trace", Some(b"abc")), (b"none", None)];
    client
        .produce_ok(
            "browse",
            0,
            one_record(b"json", br#"{"n":1,"list":[true]}"#, headers, t0 + 10),
        )
        .await; // 3
    client
        .produce_ok(
            "browse",
            0,
            one_record(b"bin", &[0, 159, 255], &[], t0 + 20),
        )
        .await; // 4
    let path = "/v1/topics/browse/partitions/0/records";

    let page = json(http, &format!("{path}?offset=1&limit=2"), 200).await;
    assert_eq!(
        (page["start_offset"].as_i64(), page["next_offset"].as_i64()),
        (Some(1), Some(3))
    );
    assert_eq!(page["high_watermark"], 5);
    let records = page["records"].as_array().expect("records");
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["offset"], 1);
    assert_eq!(records[0]["timestamp"], t0 + 1);
    assert_eq!(records[0]["timestamp_type"], "CreateTime");
    assert_eq!(records[0]["key"]["text"], "k1");
    assert_eq!(records[0]["value"]["text"], "v1..");
    assert_eq!(records[0]["value"]["encoding"], "utf8");

    let page = json(http, &format!("{path}?offset=3"), 200).await;
    let records = page["records"].as_array().expect("records");
    assert_eq!(records.len(), 2, "to the end of the log");
    let json_record = &records[0];
    assert_eq!(json_record["value"]["encoding"], "json");
    assert_eq!(
        json_record["value"]["text"],
        "{\n  \"n\": 1,\n  \"list\": [\n    true\n  ]\n}"
    );
    assert_eq!(json_record["headers"][0]["key"], "trace");
    assert_eq!(json_record["headers"][0]["value"]["text"], "abc");
    assert_eq!(json_record["headers"][1]["value"], Value::Null);
    let binary = &records[1];
    assert_eq!(binary["value"]["encoding"], "base64");
    assert_eq!(binary["value"]["text"], "AJ//");
    assert_eq!(binary["value"]["size"], 3);
    assert_eq!(page["next_offset"], 5);

    // By time: the first record at or after it; past every record, an empty page at the end.
    let page = json(http, &format!("{path}?timestamp={}", t0 + 5), 200).await;
    assert_eq!(page["start_offset"], 3);
    assert_eq!(page["records"][0]["key"]["text"], "json");
    let page = json(http, &format!("{path}?timestamp={}", t0 + 999), 200).await;
    assert_eq!(
        (
            page["start_offset"].as_i64(),
            page["records"].as_array().map(Vec::len)
        ),
        (Some(5), Some(0))
    );
    // No start given: the log start.
    let page = json(http, path, 200).await;
    assert_eq!(page["records"][0]["offset"], 0);
    broker.shutdown().await;
}

#[tokio::test]
async fn the_record_browser_is_bounded_and_refuses_bad_input() {
    let broker = http_broker().await;
    let http = broker.http_addr().expect("an HTTP listener");
    let mut client = broker.client().await;
    client.create_topic("bounded", 1).await;
    client
        .produce_ok("bounded", 0, batch_at(&[1, 2, 3, 4], 1000))
        .await;
    let path = "/v1/topics/bounded/partitions/0/records";

    // 1,000-byte values and a 2,500-byte budget: two whole records, then stop.
    let page = json(http, &format!("{path}?max_bytes=2500"), 200).await;
    assert_eq!(page["records"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["truncated"], true);
    assert_eq!(page["next_offset"], 2);
    // A budget smaller than one record: that record, cut.
    let page = json(http, &format!("{path}?offset=2&max_bytes=10"), 200).await;
    let value = &page["records"][0]["value"];
    assert_eq!(
        (value["truncated"].as_bool(), value["size"].as_i64()),
        (Some(true), Some(1000))
    );
    assert_eq!(
        value["text"].as_str().map(str::len),
        Some(10 - 2),
        "key k2 took 2 bytes"
    );

    for (query, code) in [
        ("?limit=0", "bad_query"),
        ("?limit=501", "bad_query"),
        ("?max_bytes=999999999", "bad_query"),
        ("?offset=1&timestamp=1", "bad_query"),
        ("?offset=abc", "bad_query"),
        ("?ofset=1", "bad_query"),
    ] {
        let answer = json(http, &format!("{path}{query}"), 400).await;
        assert_eq!(answer["error"]["code"], code, "{query}");
        assert!(answer["error"]["message"].is_string());
    }
    let answer = json(http, &format!("{path}?offset=99"), 416).await;
    assert_eq!(answer["error"]["code"], "offset_out_of_range");
    let answer = json(http, "/v1/topics/bounded/partitions/7/records", 404).await;
    assert_eq!(answer["error"]["code"], "unknown_partition");
    let answer = json(http, "/v1/topics/bounded/partitions/x/records", 400).await;
    assert_eq!(answer["error"]["code"], "bad_query");
    let answer = json(http, "/v1/topics/nope/partitions/0/records", 404).await;
    assert_eq!(answer["error"]["code"], "unknown_topic");
    // The Kafka port is untouched by all that.
    assert_eq!(client.produce_ok("bounded", 0, batch(1)).await, 4);
    broker.shutdown().await;
}

#[tokio::test]
async fn compressed_batches_are_opened_when_the_codec_is_built_in() {
    // The test crate links weir-protocol's codecs (through weir-client), so this in-process
    // broker has gzip; the bare binary may not (see tests/tests/http_api_process.rs).
    let broker = http_broker().await;
    let http = broker.http_addr().expect("an HTTP listener");
    let mut client = broker.client().await;
    client.create_topic("zipped", 1).await;
    let plain = one_record(b"zk", b"zipped value", &[], 5);
    let records = compress(Compression::Gzip, &plain[HEADER_LEN..]).expect("gzip built in");
    let zipped = with_compressed_records(&plain, Compression::Gzip, &records).expect("batch");
    client.produce_ok("zipped", 0, zipped).await;
    let page = json(http, "/v1/topics/zipped/partitions/0/records", 200).await;
    assert_eq!(page["records"][0]["value"]["text"], "zipped value");
    assert_eq!(page["compressed_batches"], serde_json::json!([]));
    broker.shutdown().await;
}

#[tokio::test]
async fn the_grafana_dashboard_uses_only_metrics_the_broker_exports() {
    let dashboard = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana/weir.json"),
    )
    .expect("docs/grafana/weir.json");
    let dashboard: Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let mut names = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("an expression");
            let mut rest = expr;
            while let Some(at) = rest.find("weir_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                names.insert(name);
            }
        }
    }
    assert!(names.len() > 20, "{names:?}");

    // Every family has samples once the broker has done some of everything.
    let broker = http_broker().await;
    let http = broker.http_addr().expect("an HTTP listener");
    let mut client = broker.client().await;
    client.create_topic("dash", 1).await;
    client.produce_ok("dash", 0, batch(3)).await;
    client.fetch_now("dash", 0, 0).await;
    commit(&mut client, ("dashboard-group", None), "dash", 0, 1).await;
    let (_, metrics) = get(http, "/metrics").await;
    for name in &names {
        assert!(
            metrics.lines().any(|l| l.starts_with(name.as_str())),
            "the dashboard uses {name}, which /metrics does not report"
        );
    }
    broker.shutdown().await;
}
