//! Bad input on a connection: garbage, truncated and oversized frames, negative sizes, unknown
//! API keys, unsupported versions and undecodable bodies. Each closes that connection (read
//! gives end of stream, no reply), while a connection opened before it and new connections
//! are still served and the log is intact.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
use weir_broker::BrokerConfig;
use weir_protocol::api::{ApiKey, supported_range};
use weir_protocol::message::encode_request;
use weir_tests::{Client, TestBroker, batch, raw_request, req, stored};

/// A broker whose topic `kept` holds one batch, and a connection opened before any bad input.
struct Scene {
    broker: TestBroker,
    bystander: Client,
    batch: Bytes,
}

impl Scene {
    async fn new(configure: impl FnOnce(&mut BrokerConfig)) -> Self {
        let broker = TestBroker::start_with(configure).await;
        let mut bystander = broker.client().await;
        bystander.create_topic("kept", 1).await;
        let batch = batch(3);
        assert_eq!(bystander.produce_ok("kept", 0, batch.clone()).await, 0);
        Self {
            broker,
            bystander,
            batch,
        }
    }

    /// Sends `bytes` on a new connection (then ends the stream if `then_eof`) and checks that
    /// the broker closes it without a reply and is unharmed.
    async fn closes(&mut self, what: &str, bytes: &[u8], then_eof: bool) {
        let mut client = self.broker.client().await;
        client.send_raw(bytes).await;
        if then_eof {
            client.shutdown_write().await;
        }
        client.expect_closed().await;
        self.unharmed(what).await;
    }

    /// The old connection and a new one are served, and the log holds what it held.
    async fn unharmed(&mut self, what: &str) {
        let response = self.bystander.call(3, ApiVersionsRequest::default()).await;
        assert_eq!(response.error_code, 0, "after {what}");
        let mut fresh = self.broker.client().await;
        assert_eq!(fresh.list_offset("kept", 0, -1).await, 3, "after {what}");
        assert_eq!(
            &fresh.fetch_now("kept", 0, 0).await[..],
            &stored(&self.batch, 0)[..],
            "after {what}"
        );
    }

    async fn shutdown(self) {
        self.broker.shutdown().await;
    }
}

fn frame(size: i32, payload: &[u8]) -> Vec<u8> {
    let mut out = size.to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

#[tokio::test]
async fn garbage_closes_the_connection() {
    let mut scene = Scene::new(|_| {}).await;
    scene
        .closes(
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: weir\r\n\r\n",
            false,
        )
        .await;
    scene
        .closes("a frame too short for a header", &frame(5, b"hello"), false)
        .await;
    scene
        .closes("random bytes in a frame", &frame(16, &[0xAB; 16]), false)
        .await;
    scene.closes("an empty frame", &frame(0, b""), false).await;
    scene
        .closes(
            "a TLS client hello",
            &[
                0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
            ],
            false,
        )
        .await;
    scene.shutdown().await;
}

#[tokio::test]
async fn truncated_frame_then_end_of_stream_closes() {
    let mut scene = Scene::new(|_| {}).await;
    let whole = raw_request(ApiKey::ApiVersions.code(), 0, 7, b"");
    scene.closes("half a size prefix", &whole[..2], true).await;
    scene.closes("a size prefix alone", &whole[..4], true).await;
    scene
        .closes(
            "a frame missing its last byte",
            &whole[..whole.len() - 1],
            true,
        )
        .await;
    scene
        .closes(
            "a frame announcing 100 bytes, 10 sent",
            &frame(100, &[0; 10]),
            true,
        )
        .await;
    scene.shutdown().await;
}

#[tokio::test]
async fn oversized_and_negative_sizes_close() {
    let mut scene = Scene::new(|c| c.max_frame_bytes = 1024).await;
    // Only the prefix is sent: the broker must refuse before waiting for the body.
    scene
        .closes("a frame of max + 1 bytes", &frame(1025, b""), false)
        .await;
    scene
        .closes("a frame of 2 GiB", &frame(i32::MAX, b""), false)
        .await;
    scene.closes("size -1", &frame(-1, b""), false).await;
    scene
        .closes("size i32::MIN", &frame(i32::MIN, &[0; 8]), false)
        .await;
    scene.shutdown().await;
}

#[tokio::test]
async fn a_frame_of_exactly_max_frame_bytes_is_served() {
    // Longer than every request `Scene` sends while setting up.
    let name = "t".repeat(240);
    let request = |name: &str| req::metadata(1, Some(&[name]));
    let encoded = encode_request(
        ApiKey::Metadata,
        1,
        1,
        Some("weir-tests"),
        &request(&name).into(),
    )
    .unwrap();
    let max = encoded.len() - 4;
    let mut scene = Scene::new(|c| {
        c.max_frame_bytes = max;
        c.auto_create_topics = false;
    })
    .await;
    let mut client = scene.broker.client().await;
    let response = client.call(1, request(&name)).await;
    assert_eq!(
        response.topics.len(),
        1,
        "a frame of exactly {max} bytes is served"
    );
    // One byte more closes.
    let one_more = format!("{name}t");
    let _refused = client.send(1, request(&one_more)).await;
    client.expect_closed().await;
    scene.unharmed("a frame of max + 1 bytes").await;
    scene.shutdown().await;
}

#[tokio::test]
async fn unknown_api_keys_close() {
    let mut scene = Scene::new(|_| {}).await;
    // 4 is LeaderAndIsr (inter-broker), 99 unassigned.
    for key in [4, 99, 1000, -1, i16::MIN, i16::MAX] {
        let what = format!("API key {key}");
        scene
            .closes(&what, &raw_request(key, 0, 1, b""), false)
            .await;
    }
    scene.shutdown().await;
}

#[tokio::test]
async fn unsupported_versions_of_served_apis_close() {
    let mut scene = Scene::new(|_| {}).await;
    for key in [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::Metadata,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
    ] {
        let range = supported_range(key).unwrap();
        for version in [range.min - 1, range.max + 1, i16::MAX, -1] {
            let what = format!("{key} v{version}");
            scene
                .closes(&what, &raw_request(key.code(), version, 1, b""), false)
                .await;
        }
    }
    // A well-formed request, only its version is unsupported.
    let v = supported_range(ApiKey::Metadata).unwrap().max + 1;
    let encoded = encode_request(
        ApiKey::Metadata,
        v,
        1,
        Some("weir-tests"),
        &MetadataRequest::default().with_topics(None).into(),
    )
    .unwrap();
    scene
        .closes("a well-formed Metadata v7", &encoded, false)
        .await;
    scene.shutdown().await;
}

#[tokio::test]
async fn undecodable_bodies_close() {
    let mut scene = Scene::new(|_| {}).await;
    let metadata = ApiKey::Metadata.code();
    scene
        .closes(
            "an array of 5 topics with none sent",
            &raw_request(metadata, 1, 1, &5i32.to_be_bytes()),
            false,
        )
        .await;
    scene
        .closes(
            "an array of i32::MAX topics",
            &raw_request(metadata, 1, 1, &i32::MAX.to_be_bytes()),
            false,
        )
        .await;
    scene
        .closes(
            "an array of -2 topics",
            &raw_request(metadata, 1, 1, &(-2i32).to_be_bytes()),
            false,
        )
        .await;
    // A topic name claiming more bytes than the frame has.
    let mut body = BytesMut::new();
    body.put_i32(1);
    body.put_i16(200);
    body.put_slice(b"abc");
    scene
        .closes(
            "a string longer than the frame",
            &raw_request(metadata, 1, 1, &body),
            false,
        )
        .await;
    // Trailing bytes after a complete body.
    scene
        .closes(
            "a byte after an ApiVersions v0 body",
            &raw_request(ApiKey::ApiVersions.code(), 0, 1, b"x"),
            false,
        )
        .await;
    let mut produce = encode_request(
        ApiKey::Produce,
        3,
        1,
        None,
        &req::produce("kept", 0, batch(1), 1).into(),
    )
    .unwrap();
    produce.put_u8(0);
    let size = i32::try_from(produce.len() - 4).unwrap();
    produce[..4].copy_from_slice(&size.to_be_bytes());
    scene
        .closes("a byte after a Produce body", &produce, false)
        .await;
    // The refused produce appended nothing (checked by `unharmed`: still 3 records).
    scene.shutdown().await;
}

#[tokio::test]
async fn requests_before_the_bad_frame_are_answered() {
    let scene = Scene::new(|_| {}).await;
    let mut client = scene.broker.client().await;
    let first = client.send(0, ApiVersionsRequest::default()).await;
    let second = client.send(1, req::metadata(1, Some(&["kept"]))).await;
    client.send_raw(&frame(-5, b"")).await;
    let response = client.recv(first).await;
    assert_eq!(response.error_code, 0);
    let response = client.recv(second).await;
    assert_eq!(response.topics[0].error_code, 0);
    client.expect_closed().await;
    scene.shutdown().await;
}
