//! The JSON admin API and the console of the real `weir-broker` binary: the console's files
//! are served from the binary, `/v1` answers with the records produced, and a compressed
//! batch is named by its codec when the binary has no codec for it (the bare binary is built
//! without weir-protocol's codecs), or opened when it has.

use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::Value;
use weir_protocol::compression::compress;
use weir_protocol::record_batch::{
    BatchBuilder, Compression, HEADER_LEN, RecordInput, with_compressed_records,
};
use weir_tests::process::{BrokerProcess, free_port};
use weir_tests::{Client, batch};

/// Status line, headers and body of `GET path`.
fn get(port: u16, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the HTTP port");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: w\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("headers end");
    let status = head[9..12].parse().expect("status code");
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn json(port: u16, path: &str) -> Value {
    let (status, _, body) = get(port, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

fn gzip_batch(value: &[u8]) -> bytes::Bytes {
    let mut builder = BatchBuilder::new();
    builder.push(RecordInput {
        key: Some(b"gz"),
        value: Some(value),
        headers: &[],
        timestamp: 1,
    });
    let plain = builder.build().expect("one record");
    let records = compress(Compression::Gzip, &plain[HEADER_LEN..]).expect("gzip");
    with_compressed_records(&plain, Compression::Gzip, &records).expect("a batch")
}

#[tokio::test]
async fn the_binary_serves_the_console_and_the_api_and_names_compressed_batches() {
    let dir = tempfile::tempdir().expect("temp dir");
    let http = free_port();
    let http_arg = format!("127.0.0.1:{http}");
    let mut broker = BrokerProcess::start(
        &dir.path().join("data"),
        &dir.path().join("broker.log"),
        &["--http-listen", &http_arg],
    );

    let (status, head, body) = get(http, "/");
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(body.contains("<script src=\"/console.js\">"), "{body}");
    for asset in [
        "/console.js",
        "/console.css",
        "/vendor/uPlot.iife.min.js",
        "/vendor/uPlot.LICENSE",
    ] {
        let (status, _, body) = get(http, asset);
        assert_eq!(status, 200, "{asset}");
        assert!(body.len() > 100, "{asset}");
    }

    let mut client = Client::connect(broker.addr()).await;
    client.create_topic("proc", 1).await;
    client.produce_ok("proc", 0, batch(3)).await;
    client
        .produce_ok("proc", 0, gzip_batch(b"inside gzip"))
        .await;
    client.produce_ok("proc", 0, batch(1)).await;

    let cluster = json(http, "/v1/cluster");
    assert_eq!(cluster["advertised"]["port"], broker.addr().port());
    assert_eq!(cluster["records_in_total"], 5);
    let page = json(http, "/v1/topics/proc/partitions/0/records?offset=0");
    let offsets: Vec<i64> = page["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["offset"].as_i64())
        .collect();
    let compressed = page["compressed_batches"].as_array().expect("a list");
    if compressed.is_empty() {
        // A binary built with the codecs opens the batch.
        assert_eq!(offsets, [0, 1, 2, 3, 4]);
        assert_eq!(page["records"][3]["value"]["text"], "inside gzip");
    } else {
        // Without them: named, with its offsets, and the page goes on past it.
        assert_eq!(offsets, [0, 1, 2, 4]);
        assert_eq!(compressed[0]["codec"], "gzip");
        assert_eq!(compressed[0]["base_offset"], 3);
        assert_eq!(compressed[0]["records"], 1);
    }
    assert_eq!(page["next_offset"], 5);
    assert!(broker.stop(), "clean exit");
}
