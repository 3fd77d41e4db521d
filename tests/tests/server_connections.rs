//! Connections: pipelined requests answered in order (a long poll included), the connection
//! limit, the idle timeout, graceful shutdown with clients connected, and restarts.

use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
use weir_protocol::api::ApiKey;
use weir_tests::{Client, Sent, TestBroker, batch, req, stored, versions};

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let broker = TestBroker::start().await;
    let mut admin = broker.client().await;
    admin.create_topic("pipe", 1).await;
    let mut client = broker.client().await;

    enum Pending {
        Versions(Sent<ApiVersionsRequest>),
        Metadata(Sent<MetadataRequest>),
        Offsets(Sent<kafka_protocol::messages::ListOffsetsRequest>),
        Produce(Sent<kafka_protocol::messages::ProduceRequest>),
    }
    // More than the broker reads ahead (64), so its backpressure is exercised too.
    let mut pending = Vec::new();
    for i in 0..200i16 {
        pending.push(match i % 5 {
            0 => Pending::Versions(client.send(i % 4, ApiVersionsRequest::default()).await),
            1 => Pending::Metadata(
                client
                    .send(i % 7, req::metadata(i % 7, Some(&["pipe"])))
                    .await,
            ),
            2 => Pending::Offsets(
                client
                    .send(1 + i % 3, req::list_offsets("pipe", 0, -2))
                    .await,
            ),
            3 => Pending::Produce(
                client
                    .send(3 + i % 5, req::produce("pipe", 0, batch(1), 1))
                    .await,
            ),
            _ => {
                // acks=0 in the middle: no response takes its place.
                let _unanswered = client.send(7, req::produce("pipe", 0, batch(1), 0)).await;
                continue;
            }
        });
    }
    let mut produced = 0;
    for p in pending {
        match p {
            Pending::Versions(sent) => assert_eq!(client.recv(sent).await.error_code, 0),
            Pending::Metadata(sent) => assert_eq!(client.recv(sent).await.topics[0].error_code, 0),
            Pending::Offsets(sent) => {
                assert_eq!(client.recv(sent).await.topics[0].partitions[0].offset, 0);
            }
            Pending::Produce(sent) => {
                let response = client.recv(sent).await;
                assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
                produced += 1;
            }
        }
    }
    assert_eq!(produced, 40);
    assert_eq!(
        admin.list_offset("pipe", 0, -1).await,
        80,
        "acks=1 and acks=0 batches"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn a_long_poll_holds_back_the_responses_behind_it() {
    let broker = TestBroker::start_with(|c| c.auto_create_topics = false).await;
    let mut client = broker.client().await;
    client.create_topic("slow", 1).await;
    let v = *versions(ApiKey::Fetch).end();
    let started = Instant::now();
    let fetch = client.send(v, req::fetch("slow", 0, 0, 500, 1)).await;
    let metadata = client.send(1, req::metadata(1, None)).await;
    let versions_sent = client.send(3, ApiVersionsRequest::default()).await;
    // recv checks correlation ids: the fetch's response must come first.
    let response = client.recv(fetch).await;
    assert!(
        started.elapsed() >= Duration::from_millis(490),
        "{:?}",
        started.elapsed()
    );
    assert!(
        response.responses[0].partitions[0]
            .records
            .as_ref()
            .unwrap()
            .is_empty()
    );
    assert_eq!(client.recv(metadata).await.topics.len(), 1);
    assert_eq!(client.recv(versions_sent).await.error_code, 0);
    broker.shutdown().await;
}

/// Kafka handles one request per connection at a time, so pipelined produces to a partition
/// are appended in the order they were sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_produces_are_appended_in_order() {
    let broker = TestBroker::start_with(|c| c.flush = weir_broker::log::FlushPolicy::Os).await;
    let mut client = broker.client().await;
    client.create_topic("ordered", 1).await;
    let mut sent = Vec::new();
    for _ in 0..300 {
        sent.push(
            client
                .send(7, req::produce("ordered", 0, batch(1), 1))
                .await,
        );
    }
    let mut bases = Vec::new();
    for s in sent {
        let response = client.recv(s).await;
        bases.push(response.responses[0].partition_responses[0].base_offset);
    }
    assert_eq!(bases, (0..300).collect::<Vec<i64>>());
    broker.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait() {
    let broker = TestBroker::start_with(|c| c.max_connections = 2).await;
    let mut a = broker.client().await;
    let mut b = broker.client().await;
    assert_eq!(a.call(0, ApiVersionsRequest::default()).await.error_code, 0);
    assert_eq!(b.call(0, ApiVersionsRequest::default()).await.error_code, 0);
    let mut c = broker.client().await;
    let sent = c.send(0, ApiVersionsRequest::default()).await;
    assert!(
        !c.has_response_within(Duration::from_millis(300)).await,
        "a third connection is served with max_connections = 2"
    );
    drop(a);
    // A slot frees: the waiting connection is served.
    assert_eq!(c.recv(sent).await.error_code, 0);
    assert_eq!(b.call(1, ApiVersionsRequest::default()).await.error_code, 0);
    broker.shutdown().await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let broker = TestBroker::start_with(|c| c.idle_timeout_secs = 1).await;
    let mut idle = broker.client().await;
    let mut busy = broker.client().await;
    assert_eq!(
        idle.call(0, ApiVersionsRequest::default()).await.error_code,
        0
    );
    let started = Instant::now();
    let busy_task = tokio::spawn(async move {
        // A request every 300 ms keeps a connection open past the timeout.
        while started.elapsed() < Duration::from_millis(1_800) {
            assert_eq!(
                busy.call(0, ApiVersionsRequest::default()).await.error_code,
                0
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        busy
    });
    idle.expect_closed().await;
    let closed_after = started.elapsed();
    assert!(
        closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(3),
        "closed after {closed_after:?}"
    );
    let mut busy = busy_task.await.unwrap();
    assert_eq!(
        busy.call(3, ApiVersionsRequest::default()).await.error_code,
        0
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn shutdown_answers_in_flight_requests_and_closes_connections() {
    let broker = TestBroker::start_with(|c| c.auto_create_topics = false).await;
    let mut client: Client = broker.client().await;
    client.create_topic("t", 1).await;
    let mut idle = broker.client().await;
    let v = *versions(ApiKey::Fetch).end();
    let fetch = client.send(v, req::fetch("t", 0, 0, 300, 1)).await;
    // Let the fetch start waiting, then stop.
    assert!(!client.has_response_within(Duration::from_millis(100)).await);
    let stopping = tokio::spawn(broker.shutdown());
    let response = client.recv(fetch).await;
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
    client.expect_closed().await;
    idle.expect_closed().await;
    weir_tests::within("shutdown", stopping).await.unwrap();
}

#[tokio::test]
async fn a_restart_keeps_topics_and_records() {
    let mut broker = TestBroker::start_with(|c| c.auto_create_topics = false).await;
    let mut client = broker.client().await;
    client.create_topic("durable", 2).await;
    let (a, b) = (batch(4), batch(2));
    assert_eq!(client.produce_ok("durable", 1, a.clone()).await, 0);
    assert_eq!(client.produce_ok("durable", 1, b.clone()).await, 4);
    drop(client);
    broker.restart().await;
    let mut client = broker.client().await;
    let v = *versions(ApiKey::Metadata).end();
    let md = client.call(v, req::metadata(v, Some(&["durable"]))).await;
    assert_eq!(md.topics[0].partitions.len(), 2);
    assert_eq!(client.list_offset("durable", 1, -1).await, 6);
    let expected = [stored(&a, 0), stored(&b, 4)].concat();
    assert_eq!(&client.fetch_now("durable", 1, 0).await[..], &expected[..]);
    assert_eq!(client.produce_ok("durable", 1, batch(1)).await, 6);
    broker.shutdown().await;
}
