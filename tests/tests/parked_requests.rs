//! Parked requests (long-polling fetches, JoinGroup waiting for a rebalance) end with their
//! connection, and an append wakes only the fetches parked on its partition.
//!
//! - A client that disconnects with a fetch parked for `i32::MAX` ms, or a JoinGroup parked
//!   for a ten-minute rebalance, frees its connection slot at once: with one slot, the next
//!   client is served within seconds (it used to wait for the parked request's deadline).
//! - 1,024 fetches parked on 64 partitions of an idle topic are not woken at all by 200
//!   produces to another topic, and a produce to one idle partition wakes exactly the
//!   fetches parked on it (counted by the broker: `RunningBroker::stats`).

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::{ApiVersionsRequest, GroupId, JoinGroupRequest};
use kafka_protocol::protocol::StrBytes;
use weir_protocol::api::ApiKey;
use weir_tests::{TestBroker, batch, req, stored, versions, within};

/// Waits until `check` holds, failing with `what` after 5 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_client_gone_with_a_parked_fetch_frees_its_slot() {
    let broker = TestBroker::start_with(|c| c.max_connections = 1).await;
    let mut admin = broker.client().await;
    admin.create_topic("quiet", 1).await;
    drop(admin);
    let mut gone = broker.client().await;
    let v = *versions(ApiKey::Fetch).end();
    let _never_read = gone.send(v, req::fetch("quiet", 0, 0, i32::MAX, 1)).await;
    eventually("the fetch to park", || broker.stats().parked_fetches == 1).await;
    drop(gone);
    // The only slot is free again: the parked fetch ended with its connection.
    let mut next = broker.client().await;
    let response = within(
        "a new client while a gone client's fetch was parked",
        next.call(3, ApiVersionsRequest::default()),
    )
    .await;
    assert_eq!(response.error_code, 0);
    assert_eq!(broker.stats().parked_fetches, 0);
    broker.shutdown().await;
}

#[tokio::test]
async fn a_client_gone_with_a_parked_join_frees_its_slot() {
    let broker = TestBroker::start_with(|c| {
        c.max_connections = 1;
        c.group_initial_rebalance_delay_ms = 600_000;
    })
    .await;
    let mut gone = broker.client().await;
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g")))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(i32::MAX)
        .with_member_id(StrBytes::from_static_str(""))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(Bytes::from_static(b"subscription")),
        ]);
    let _never_read = gone.send(3, join).await;
    assert!(!gone.has_response_within(Duration::from_millis(300)).await);
    drop(gone);
    let mut next = broker.client().await;
    let response = within(
        "a new client while a gone client's JoinGroup was parked",
        next.call(3, ApiVersionsRequest::default()),
    )
    .await;
    assert_eq!(response.error_code, 0);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_wakes_only_the_fetches_parked_on_its_partition() {
    const CONNECTIONS: usize = 16;
    const PARTITIONS: i32 = 64;
    let broker = TestBroker::start_with(|c| c.flush = weir_broker::log::FlushPolicy::Os).await;
    let mut admin = broker.client().await;
    admin.create_topic("idle", PARTITIONS).await;
    admin.create_topic("busy", 1).await;
    let v = *versions(ApiKey::Fetch).end();
    // 16 connections x 64 fetches, one per partition of "idle", each at the log end.
    let mut consumers = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut client = broker.client().await;
        let mut sent = Vec::new();
        for p in 0..PARTITIONS {
            sent.push(client.send(v, req::fetch("idle", p, 0, i32::MAX, 1)).await);
        }
        consumers.push((client, sent));
    }
    let all = u64::try_from(CONNECTIONS).unwrap() * u64::try_from(PARTITIONS).unwrap();
    eventually("every fetch to park", || {
        broker.stats().parked_fetches == all
    })
    .await;
    // Produces elsewhere wake none of them.
    for _ in 0..200 {
        admin.produce_ok("busy", 0, batch(1)).await;
    }
    let stats = broker.stats();
    assert_eq!(
        stats.fetch_wakeups, 0,
        "200 produces to another topic woke parked fetches"
    );
    assert_eq!(stats.parked_fetches, all);
    // A produce to partition 5 wakes the 16 fetches parked on it, and they answer.
    admin.produce_ok("idle", 5, batch(1)).await;
    let per_partition = u64::try_from(CONNECTIONS).unwrap();
    eventually("the fetches on partition 5 to answer", || {
        broker.stats().parked_fetches == all - per_partition
    })
    .await;
    assert_eq!(broker.stats().fetch_wakeups, per_partition);
    for (client, _sent) in &mut consumers {
        // Responses go out in request order: partitions 0-4's fetches are still parked, so
        // partition 5's answer waits behind them.
        assert!(!client.has_response_within(Duration::from_millis(1)).await);
    }
    drop(consumers);
    eventually("the gone clients' fetches to end", || {
        broker.stats().parked_fetches == 0
    })
    .await;
    broker.shutdown().await;
}

#[tokio::test]
async fn a_parked_fetch_counts_min_bytes_across_its_partitions() {
    let broker = TestBroker::start_with(|c| c.flush = weir_broker::log::FlushPolicy::Os).await;
    let mut admin = broker.client().await;
    admin.create_topic("acc", 2).await;
    let one = batch(1);
    let len = stored(&one, 0).len();
    let v = *versions(ApiKey::Fetch).end();
    let mut consumer = broker.client().await;
    // Enough for three batches, not two.
    let min_bytes = i32::try_from(2 * len + 1).unwrap();
    let fetch = consumer
        .send(
            v,
            req::fetch_many(&[("acc", 0, 0), ("acc", 1, 0)], 20_000, min_bytes),
        )
        .await;
    eventually("the fetch to park", || broker.stats().parked_fetches == 1).await;
    // Two batches to partition 0, each its own wake-up: still short of min_bytes (each
    // append is counted once, from where the previous count stopped), so only partition 0's
    // new batches are read, never the whole request.
    for wakeups in 1..=2 {
        admin.produce_ok("acc", 0, one.clone()).await;
        eventually("the wake-up", || broker.stats().fetch_wakeups == wakeups).await;
    }
    assert!(
        !consumer
            .has_response_within(Duration::from_millis(300))
            .await,
        "answered with two batches, below min_bytes"
    );
    assert_eq!(
        broker.stats().fetch_rereads,
        0,
        "a wake-up below min_bytes read the whole request again"
    );
    // The third batch, on the other partition, makes it enough.
    admin.produce_ok("acc", 1, one.clone()).await;
    let response = consumer.recv(fetch).await;
    let records: Vec<usize> = response.responses[0]
        .partitions
        .iter()
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .collect();
    assert_eq!(records, [2 * len, len]);
    let stats = broker.stats();
    assert_eq!((stats.fetch_wakeups, stats.fetch_rereads), (3, 1));
    assert_eq!(stats.parked_fetches, 0);
    broker.shutdown().await;
}
