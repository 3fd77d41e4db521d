//! Fetch (key 1) at every served version: the produced batches byte for byte, whole batches
//! from the middle of one, the first batch past the byte limits (only in the first partition
//! with data, KIP-74), long polls woken by appends or ending at `max_wait_ms`, offsets and
//! errors.
//!
//! The timing tests run every version at once (one task per version) to stay fast.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::FetchResponse;
use kafka_protocol::messages::fetch_response::PartitionData;
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_tests::{TestBroker, batch, batch_at, req, stored, versions};

async fn broker() -> TestBroker {
    TestBroker::start_with(|c| c.auto_create_topics = false).await
}

fn only(response: &FetchResponse) -> &PartitionData {
    assert_eq!(response.responses.len(), 1, "{response:?}");
    assert_eq!(response.responses[0].partitions.len(), 1, "{response:?}");
    &response.responses[0].partitions[0]
}

fn records(p: &PartitionData) -> Bytes {
    p.records
        .clone()
        .expect("an empty record set is empty bytes, not null")
}

/// Checks the per-version fields of a successful fetch.
fn check_offsets(response: &FetchResponse, v: i16, high_watermark: i64) {
    assert_eq!(response.throttle_time_ms, 0, "v{v}");
    if v >= 7 {
        assert_eq!(response.error_code, 0, "v{v}");
        assert_eq!(response.session_id, 0, "v{v}: no fetch sessions");
    }
    for t in &response.responses {
        for p in &t.partitions {
            assert_eq!(p.error_code, 0, "v{v}: {p:?}");
            assert_eq!(p.high_watermark, high_watermark, "v{v}");
            assert_eq!(p.last_stable_offset, high_watermark, "v{v}: LSO = HW");
            if v >= 5 {
                assert_eq!(p.log_start_offset, 0, "v{v}");
            }
            if v >= 11 {
                assert_eq!(p.preferred_read_replica.0, -1, "v{v}");
            }
        }
    }
}

#[tokio::test]
async fn returns_the_produced_batches_byte_for_byte() {
    let broker = broker().await;
    let mut client = broker.client().await;
    for v in versions(ApiKey::Fetch) {
        let name = format!("f-{v}");
        client.create_topic(&name, 1).await;
        let batches = [batch(2), batch(3), batch(4)];
        let mut bases = Vec::new();
        for b in &batches {
            bases.push(client.produce_ok(&name, 0, b.clone()).await);
        }
        assert_eq!(bases, [0, 2, 5]);
        let all: Vec<u8> = batches
            .iter()
            .zip(&bases)
            .flat_map(|(b, &base)| stored(b, base))
            .collect();
        let response = client.call(v, req::fetch(&name, 0, 0, 0, 1)).await;
        check_offsets(&response, v, 9);
        assert_eq!(response.responses[0].topic.0.as_str(), name);
        let p = only(&response);
        assert_eq!(p.partition_index, 0);
        assert_eq!(&records(p)[..], &all[..], "v{v}");

        // From inside a batch: that whole batch and the rest.
        let from_second = stored(&batches[1], 2).len();
        for (offset, skip) in [
            (1, 0),
            (2, stored(&batches[0], 0).len()),
            (3, stored(&batches[0], 0).len()),
            (8, stored(&batches[0], 0).len() + from_second),
        ] {
            let response = client.call(v, req::fetch(&name, 0, offset, 0, 1)).await;
            check_offsets(&response, v, 9);
            assert_eq!(
                &records(only(&response))[..],
                &all[skip..],
                "v{v} at {offset}"
            );
        }

        // At the end: nothing, no error.
        let response = client.call(v, req::fetch(&name, 0, 9, 0, 1)).await;
        check_offsets(&response, v, 9);
        assert!(records(only(&response)).is_empty(), "v{v}");
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn first_batch_is_returned_even_past_the_limits() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("big", 2).await;
    let big = batch_at(&[1, 2, 3], 4096);
    let small = batch(1);
    let (big_s, small_s) = (stored(&big, 0), stored(&small, 3));
    assert_eq!(client.produce_ok("big", 0, big.clone()).await, 0);
    assert_eq!(client.produce_ok("big", 0, small.clone()).await, 3);
    assert_eq!(client.produce_ok("big", 1, batch(1)).await, 0);
    let both = [&big_s[..], &small_s[..]].concat();
    let limit = |n: usize| i32::try_from(n).unwrap();
    for v in versions(ApiKey::Fetch) {
        // (partition_max_bytes, max_bytes) -> expected bytes from partition 0
        let cases: [(i32, i32, &[u8]); 6] = [
            (100, 50 << 20, &big_s),
            (50 << 20, 100, &big_s),
            (1, 1, &big_s),
            (limit(big_s.len() + small_s.len() - 1), 50 << 20, &big_s),
            (50 << 20, limit(big_s.len() + small_s.len() - 1), &big_s),
            (
                limit(big_s.len() + small_s.len()),
                limit(big_s.len() + small_s.len()),
                &both,
            ),
        ];
        for (partition_max, max, expected) in cases {
            let mut request = req::fetch("big", 0, 0, 0, 1).with_max_bytes(max);
            request.topics[0].partitions[0].partition_max_bytes = partition_max;
            let response = client.call(v, request).await;
            check_offsets(&response, v, 4);
            assert_eq!(
                &records(only(&response))[..],
                expected,
                "v{v}: partition_max_bytes {partition_max}, max_bytes {max}"
            );
        }
        // Over the response limit, later partitions get no records, but their offsets.
        let request = req::fetch_many(&[("big", 0, 0), ("big", 1, 0)], 0, 1).with_max_bytes(100);
        let response = client.call(v, request).await;
        let parts = &response.responses[0].partitions;
        assert_eq!(parts.len(), 2, "v{v}");
        assert_eq!(&records(&parts[0])[..], &big_s[..], "v{v}");
        assert_eq!(parts[1].error_code, 0, "v{v}");
        assert!(
            records(&parts[1]).is_empty(),
            "v{v}: second partition past max_bytes"
        );
        assert_eq!(parts[1].high_watermark, 1, "v{v}");
    }
    broker.shutdown().await;
}

/// KIP-74 (librdkafka's test 0082): only the first batch of the first partition with data may
/// go past `max_bytes` or its `partition_max_bytes`; later partitions whose next batch does not
/// fit get nothing this time. Before, each partition could return one oversized batch: with
/// 920 KB batches and `max_bytes` 1,000,000 the response held two of them (1.8 MB), more
/// than librdkafka's `receive.message.max.bytes`, and its consumer stalled.
#[tokio::test]
async fn only_the_first_partition_with_data_may_exceed_the_limits() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("kip74", 4).await;
    let big = batch_at(&[1], 64 << 10);
    let big_s = stored(&big, 0);
    for p in 0..3 {
        assert_eq!(client.produce_ok("kip74", p, big.clone()).await, 0);
    }
    // Partition 3 holds two small batches.
    let small = batch(1);
    let small_s = stored(&small, 0);
    client.produce_ok("kip74", 3, small.clone()).await;
    client.produce_ok("kip74", 3, small.clone()).await;
    let limit = |n: usize| i32::try_from(n).unwrap();
    let received = |response: &FetchResponse| -> Vec<usize> {
        response.responses[0]
            .partitions
            .iter()
            .map(|p| {
                assert_eq!(p.error_code, 0, "{p:?}");
                records(p).len()
            })
            .collect()
    };
    for v in versions(ApiKey::Fetch) {
        let all: Vec<(&str, i32, i64)> = (0..4).map(|p| ("kip74", p, 0)).collect();
        // max_bytes between one and two big batches: the first partition's batch, and the
        // small batches that fit in what is left; no second big batch.
        let request = req::fetch_many(&all, 0, 1).with_max_bytes(limit(big_s.len() * 3 / 2));
        let response = client.call(v, request).await;
        assert_eq!(
            received(&response),
            [big_s.len(), 0, 0, 2 * small_s.len()],
            "v{v}"
        );
        let hw: Vec<i64> = response.responses[0]
            .partitions
            .iter()
            .map(|p| p.high_watermark)
            .collect();
        assert_eq!(hw, [1, 1, 1, 2], "v{v}: offsets for every partition");

        // max_bytes below one batch: still only the first one, never one per partition.
        let request = req::fetch_many(&all, 0, 1).with_max_bytes(1000);
        let response = client.call(v, request).await;
        assert_eq!(received(&response), [big_s.len(), 0, 0, 0], "v{v}");

        // Whole batches only: room for one and a half small batches after the first.
        let request =
            req::fetch_many(&all, 0, 1).with_max_bytes(limit(big_s.len() + small_s.len() * 3 / 2));
        let response = client.call(v, request).await;
        assert_eq!(
            received(&response),
            [big_s.len(), 0, 0, small_s.len()],
            "v{v}"
        );

        // The first partition with data may exceed, even when it is not the first requested:
        // partition 0 is read from its end (no data).
        let from_end = [("kip74", 0, 1), ("kip74", 1, 0), ("kip74", 2, 0)];
        let request = req::fetch_many(&from_end, 0, 1).with_max_bytes(1000);
        let response = client.call(v, request).await;
        assert_eq!(received(&response), [0, big_s.len(), 0], "v{v}");

        // partition_max_bytes binds later partitions too: partition 3's second small batch
        // does not fit in its limit, the first one is returned, and partition 1 (after data)
        // gets nothing although the response has room.
        let mixed = [("kip74", 3, 0), ("kip74", 1, 0)];
        let mut request = req::fetch_many(&mixed, 0, 1).with_max_bytes(50 << 20);
        request.topics[0].partitions[0].partition_max_bytes = limit(small_s.len() + 1);
        request.topics[0].partitions[1].partition_max_bytes = limit(big_s.len() - 1);
        let response = client.call(v, request).await;
        assert_eq!(received(&response), [small_s.len(), 0], "v{v}");
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn offset_past_the_end_is_out_of_range_at_once() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("short", 1).await;
    client.produce_ok("short", 0, batch(3)).await;
    for v in versions(ApiKey::Fetch) {
        for offset in [4, 1000, i64::MAX, -1, i64::MIN] {
            let started = Instant::now();
            let response = client
                .call(v, req::fetch("short", 0, offset, 5_000, 1))
                .await;
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "v{v}: an error ends the long poll"
            );
            let p = only(&response);
            assert_eq!(
                p.error_code,
                ErrorCode::OffsetOutOfRange.code(),
                "v{v} at {offset}"
            );
            assert!(records(p).is_empty(), "v{v}");
        }
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn unknown_topic_or_partition_at_once() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("one", 1).await;
    client.produce_ok("one", 0, batch(1)).await;
    for v in versions(ApiKey::Fetch) {
        let started = Instant::now();
        let request = req::fetch_many(
            &[("one", 1, 0), ("one", -1, 0), ("nope", 0, 0), ("one", 0, 0)],
            5_000,
            1,
        );
        let response = client.call(v, request).await;
        assert!(started.elapsed() < Duration::from_secs(2), "v{v}");
        let codes: Vec<(String, i32, i16)> = response
            .responses
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.topic.0.to_string(), p.partition_index, p.error_code))
            })
            .collect();
        let unknown = ErrorCode::UnknownTopicOrPartition.code();
        assert_eq!(
            codes,
            [
                ("one".into(), 1, unknown),
                ("one".into(), -1, unknown),
                ("one".into(), 0, 0),
                ("nope".into(), 0, unknown),
            ],
            "v{v}"
        );
        let one = &response.responses[0].partitions[2];
        assert_eq!(one.high_watermark, 1);
        assert_eq!(records(one).len(), stored(&batch(1), 0).len());
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn long_poll_returns_when_another_connection_produces() {
    let broker = broker().await;
    let mut admin = broker.client().await;
    let mut tasks = tokio::task::JoinSet::new();
    for v in versions(ApiKey::Fetch) {
        let name = format!("poll-{v}");
        admin.create_topic(&name, 1).await;
        let mut consumer = broker.client().await;
        let mut producer = broker.client().await;
        tasks.spawn(async move {
            let sent = consumer.send(v, req::fetch(&name, 0, 0, 5_000, 1)).await;
            assert!(
                !consumer
                    .has_response_within(Duration::from_millis(200))
                    .await,
                "v{v}: answered before anything was produced"
            );
            let b = batch(2);
            let produced_at = Instant::now();
            assert_eq!(producer.produce_ok(&name, 0, b.clone()).await, 0);
            let response = consumer.recv(sent).await;
            let waited = produced_at.elapsed();
            assert!(
                waited < Duration::from_secs(2),
                "v{v}: woke {waited:?} after the append"
            );
            check_offsets(&response, v, 2);
            assert_eq!(&records(only(&response))[..], &stored(&b, 0)[..], "v{v}");
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn long_poll_ends_empty_after_max_wait() {
    let broker = broker().await;
    let mut admin = broker.client().await;
    admin.create_topic("quiet", 1).await;
    admin.create_topic("busy", 1).await;
    let mut tasks = tokio::task::JoinSet::new();
    for v in versions(ApiKey::Fetch) {
        let mut consumer = broker.client().await;
        tasks.spawn(async move {
            let started = Instant::now();
            let response = consumer.call(v, req::fetch("quiet", 0, 0, 300, 1)).await;
            let waited = started.elapsed();
            assert!(
                waited >= Duration::from_millis(290),
                "v{v}: returned after {waited:?}"
            );
            assert!(
                waited < Duration::from_secs(2),
                "v{v}: returned after {waited:?}"
            );
            check_offsets(&response, v, 0);
            assert!(records(only(&response)).is_empty(), "v{v}");
        });
    }
    // Appends elsewhere wake the polls, which must go back to waiting.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        admin.produce_ok("busy", 0, batch(1)).await;
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn long_poll_waits_for_min_bytes_or_max_wait() {
    let broker = broker().await;
    let mut admin = broker.client().await;
    let mut tasks = tokio::task::JoinSet::new();
    for v in versions(ApiKey::Fetch) {
        let name = format!("min-{v}");
        admin.create_topic(&name, 1).await;
        let mut consumer = broker.client().await;
        let mut producer = broker.client().await;
        tasks.spawn(async move {
            let started = Instant::now();
            let sent = consumer
                .send(v, req::fetch(&name, 0, 0, 400, 100_000))
                .await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let b = batch(1);
            producer.produce_ok(&name, 0, b.clone()).await;
            let response = consumer.recv(sent).await;
            let waited = started.elapsed();
            assert!(
                waited >= Duration::from_millis(390),
                "v{v}: min_bytes ignored ({waited:?})"
            );
            assert!(waited < Duration::from_secs(2), "v{v}: {waited:?}");
            assert_eq!(&records(only(&response))[..], &stored(&b, 0)[..], "v{v}");
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    broker.shutdown().await;
}
