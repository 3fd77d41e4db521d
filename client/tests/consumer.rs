//! The consumer against an in-process broker: assign and poll, seek, pause, reset policies,
//! bounded prefetch, committed offsets, and a group of consumers sharing partitions through
//! rebalances (including a member that dies without leaving).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::ProduceRequest;
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::protocol::StrBytes;
use weir_broker::{Broker, BrokerConfig, RunningBroker};

#[path = "support/proxy.rs"]
mod proxy;
use proxy::{Chaos, fault_seed, proxy};
use weir_client::connection::Connection;
use weir_client::consumer::RecordHeader;
use weir_client::protocol::record_batch::{BatchBuilder, RecordInput};
use weir_client::{
    Admin, ClientConfig, Consumer, ConsumerConfig, ConsumerRecord, NewTopic, OffsetReset,
    TopicPartition,
};

async fn broker() -> (tempfile::TempDir, RunningBroker) {
    broker_advertising(None).await
}

/// A broker whose metadata names `advertised` (same port) as its host.
async fn broker_advertising(advertised: Option<&str>) -> (tempfile::TempDir, RunningBroker) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::for_tests(dir.path());
    config.advertised_host = advertised.map(str::to_owned);
    config.auto_create_topics = false;
    config.group_initial_rebalance_delay_ms = 0;
    config.group_min_session_timeout_ms = 1000;
    let running = Broker::new(config).start().await.expect("broker starts");
    (dir, running)
}

async fn create(broker: &RunningBroker, topic: &str, partitions: i32) {
    Admin::new(ClientConfig::new([broker.addr().to_string()]))
        .create_topics(&[NewTopic::new(topic, partitions)])
        .await
        .expect("topic created");
}

/// Produces one batch of `values` (key = value, one header) and returns its base offset.
async fn produce(broker: &RunningBroker, topic: &str, partition: i32, values: &[String]) -> i64 {
    let connection = Connection::connect(broker.addr(), "producer", Duration::from_secs(5))
        .await
        .expect("connect");
    let mut batch = BatchBuilder::new();
    for (i, v) in values.iter().enumerate() {
        batch.push(RecordInput {
            key: Some(v.as_bytes()),
            value: Some(v.as_bytes()),
            headers: &[(b"h", Some(b"v"))],
            timestamp: 1_000 + i64::try_from(i).unwrap(),
        });
    }
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(batch.build()),
                ]),
        ]);
    let response = connection.call(request).await.expect("produce");
    let p = &response.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 0, "{p:?}");
    p.base_offset
}

fn values(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

fn config(broker: &RunningBroker) -> ConsumerConfig {
    ConsumerConfig::new(ClientConfig::new([broker.addr().to_string()]).client_id("consumer-test"))
        .auto_offset_reset(OffsetReset::Earliest)
        .fetch_wait(Duration::from_millis(100), 1)
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn text(record: &ConsumerRecord) -> String {
    String::from_utf8(record.value.clone().unwrap().to_vec()).unwrap()
}

/// Polls until `n` records arrived (or 10 s passed).
async fn poll_n(consumer: &mut Consumer, n: usize) -> Vec<ConsumerRecord> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while out.len() < n && tokio::time::Instant::now() < deadline {
        out.extend(
            consumer
                .poll(Duration::from_millis(200))
                .await
                .expect("poll"),
        );
    }
    out
}

#[tokio::test]
async fn assign_and_poll_read_exactly_what_was_produced() {
    let (_dir, broker) = broker().await;
    create(&broker, "t", 2).await;
    produce(&broker, "t", 0, &values("a", 0..3)).await;
    produce(&broker, "t", 0, &values("a", 3..5)).await;
    produce(&broker, "t", 1, &values("b", 0..4)).await;

    let mut consumer = Consumer::new(config(&broker));
    consumer.assign([tp("t", 0), tp("t", 1)]).unwrap();
    let records = poll_n(&mut consumer, 9).await;
    let mut by_partition: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    for r in &records {
        assert_eq!(&*r.topic, "t");
        assert_eq!(r.key, r.value);
        assert_eq!(
            r.headers,
            [RecordHeader {
                key: "h".to_owned(),
                value: Some(Bytes::from_static(b"v")),
            }]
        );
        by_partition
            .entry(r.partition)
            .or_default()
            .push((r.offset, text(r)));
    }
    let expect = |prefix: &str, n: usize| -> Vec<(i64, String)> {
        (0..n)
            .map(|i| (i64::try_from(i).unwrap(), format!("{prefix}-{i}")))
            .collect()
    };
    assert_eq!(by_partition[&0], expect("a", 5));
    assert_eq!(by_partition[&1], expect("b", 4));
    assert_eq!(
        records
            .iter()
            .find(|r| r.offset == 4 && r.partition == 0)
            .unwrap()
            .timestamp,
        1_001
    );
    // Nothing more, and the stream-like `next` waits for the next record.
    assert!(
        consumer
            .poll(Duration::from_millis(200))
            .await
            .unwrap()
            .is_empty()
    );
    produce(&broker, "t", 1, &values("c", 0..1)).await;
    let next = tokio::time::timeout(Duration::from_secs(5), consumer.next())
        .await
        .expect("a record in time")
        .unwrap();
    assert_eq!(
        (next.partition, next.offset, text(&next)),
        (1, 4, "c-0".to_owned())
    );
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn records_come_as_a_stream() {
    use futures_util::StreamExt;

    let (_dir, broker) = broker().await;
    create(&broker, "s", 1).await;
    produce(&broker, "s", 0, &values("s", 0..5)).await;
    let mut consumer = Consumer::new(config(&broker));
    consumer.assign([tp("s", 0)]).unwrap();
    let records: Vec<String> = consumer
        .stream()
        .take(5)
        .map(|r| text(&r.unwrap()))
        .collect()
        .await;
    assert_eq!(records, values("s", 0..5));
    // The stream borrowed the consumer; it is usable again afterwards.
    assert_eq!(consumer.position(&tp("s", 0)).await.unwrap(), 5);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn seek_position_pause_and_resume() {
    let (_dir, broker) = broker().await;
    create(&broker, "s", 2).await;
    produce(&broker, "s", 0, &values("a", 0..10)).await;
    produce(&broker, "s", 1, &values("b", 0..10)).await;
    let (p0, p1) = (tp("s", 0), tp("s", 1));

    let mut consumer = Consumer::new(config(&broker));
    consumer.assign([p0.clone(), p1.clone()]).unwrap();
    assert_eq!(consumer.position(&p0).await.unwrap(), 0);
    assert_eq!(poll_n(&mut consumer, 20).await.len(), 20);
    assert_eq!(consumer.position(&p0).await.unwrap(), 10);

    consumer.seek(&p0, 7).unwrap();
    assert_eq!(consumer.position(&p0).await.unwrap(), 7);
    let again: Vec<i64> = poll_n(&mut consumer, 3)
        .await
        .iter()
        .map(|r| r.offset)
        .collect();
    assert_eq!(again, [7, 8, 9]);

    consumer.pause(std::slice::from_ref(&p1)).unwrap();
    assert_eq!(consumer.paused(), std::slice::from_ref(&p1));
    produce(&broker, "s", 1, &values("b", 10..12)).await;
    produce(&broker, "s", 0, &values("a", 10..11)).await;
    let got = poll_n(&mut consumer, 1).await;
    assert_eq!(got.iter().map(text).collect::<Vec<_>>(), ["a-10"]);
    assert!(
        consumer
            .poll(Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
    consumer.resume(std::slice::from_ref(&p1)).unwrap();
    let got = poll_n(&mut consumer, 2).await;
    assert_eq!(got.iter().map(text).collect::<Vec<_>>(), ["b-10", "b-11"]);

    consumer.seek_to_beginning(&p1).unwrap();
    assert_eq!(consumer.position(&p1).await.unwrap(), 0);
    consumer.seek_to_end(&p1).unwrap();
    assert_eq!(consumer.position(&p1).await.unwrap(), 12);
    let unassigned = consumer.seek(&tp("s", 9), 0).unwrap_err();
    assert!(
        matches!(unassigned, weir_client::Error::InvalidArgument(_)),
        "{unassigned}"
    );
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn reset_policies_earliest_latest_and_none() {
    let (_dir, broker) = broker().await;
    create(&broker, "r", 1).await;
    produce(&broker, "r", 0, &values("old", 0..5)).await;
    let p = tp("r", 0);

    let mut latest = Consumer::new(config(&broker).auto_offset_reset(OffsetReset::Latest));
    latest.assign([p.clone()]).unwrap();
    assert_eq!(latest.position(&p).await.unwrap(), 5);
    assert!(
        latest
            .poll(Duration::from_millis(200))
            .await
            .unwrap()
            .is_empty()
    );
    produce(&broker, "r", 0, &values("new", 0..2)).await;
    let got = poll_n(&mut latest, 2).await;
    assert_eq!(got.iter().map(text).collect::<Vec<_>>(), ["new-0", "new-1"]);

    // Out of range: reset by the policy.
    latest.seek(&p, 1_000).unwrap();
    assert!(
        latest
            .poll(Duration::from_millis(500))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(latest.position(&p).await.unwrap(), 7);

    let mut earliest = Consumer::new(config(&broker));
    earliest.assign([p.clone()]).unwrap();
    assert_eq!(earliest.position(&p).await.unwrap(), 0);
    earliest.seek(&p, 1_000).unwrap();
    let got = poll_n(&mut earliest, 7).await;
    assert_eq!(got.first().map(|r| r.offset), Some(0));

    let mut none = Consumer::new(config(&broker).auto_offset_reset(OffsetReset::Fail));
    none.assign([p.clone()]).unwrap();
    let err = none.poll(Duration::from_secs(5)).await.unwrap_err();
    assert!(err.to_string().contains("auto.offset.reset"), "{err}");
    none.seek(&p, 6).unwrap();
    let got = poll_n(&mut none, 1).await;
    assert_eq!(got.iter().map(text).collect::<Vec<_>>(), ["new-1"]);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_slow_application_bounds_the_prefetch() {
    let (_dir, broker) = broker().await;
    create(&broker, "big", 1).await;
    // 100 batches of 20 records of ~1 KB: about 2 MB in the partition. The bound may be
    // exceeded by one batch (the broker always returns whole batches).
    let value = "x".repeat(500);
    let mut batch_bytes = 0;
    for b in 0..100 {
        let vals: Vec<String> = (0..20).map(|i| format!("{b}-{i}-{value}")).collect();
        produce(&broker, "big", 0, &vals).await;
        let mut builder = BatchBuilder::new();
        for v in &vals {
            builder.push(RecordInput {
                key: Some(v.as_bytes()),
                value: Some(v.as_bytes()),
                headers: &[(b"h", Some(b"v"))],
                timestamp: 1_000,
            });
        }
        batch_bytes = usize::max(batch_bytes, builder.size_in_bytes() + 16);
    }
    let limit = 64 << 10;
    let mut consumer = Consumer::new(
        config(&broker)
            .max_prefetch_bytes(limit)
            .max_poll_records(10),
    );
    consumer.assign([tp("big", 0)]).unwrap();
    let mut received = consumer.poll(Duration::from_secs(5)).await.unwrap();
    assert!(!received.is_empty());
    let mut most = 0;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let buffered = consumer.buffered_bytes();
        most = most.max(buffered);
        assert!(buffered <= limit + batch_bytes, "buffered {buffered} bytes");
    }
    assert!(
        most >= limit / 2,
        "the consumer prefetches up to the bound while the application is busy: {most}"
    );
    // Then everything arrives, in order, once the application catches up.
    while received.len() < 2_000 {
        let more = consumer.poll(Duration::from_secs(2)).await.unwrap();
        assert!(!more.is_empty(), "stalled at {}", received.len());
        assert!(consumer.buffered_bytes() <= limit + batch_bytes);
        received.extend(more);
    }
    let offsets: Vec<i64> = received.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..2_000).collect::<Vec<i64>>());
    broker.shutdown().await.unwrap();
}

/// KIP-74: the broker gives a fetch's `max_bytes` to the partitions in request order and only
/// the first one with data may exceed it. With every partition holding more than `max_bytes`,
/// a fixed order would feed the first partition until it is drained and starve the others;
/// the consumer rotates partitions that returned data to the back, so all make progress.
#[tokio::test]
async fn a_small_fetch_max_bytes_starves_no_partition() {
    let (_dir, broker) = broker().await;
    create(&broker, "rotate", 3).await;
    // 40 batches of one ~1 KB record per partition; each batch is larger than max_bytes.
    let batches = 40;
    let value = "x".repeat(1_000);
    for partition in 0..3 {
        for b in 0..batches {
            produce(
                &broker,
                "rotate",
                partition,
                &[format!("{partition}-{b}-{value}")],
            )
            .await;
        }
    }
    let mut config = config(&broker)
        .max_prefetch_bytes(4 << 10)
        .max_poll_records(1);
    config.fetch_max_bytes = 100;
    let mut consumer = Consumer::new(config);
    consumer
        .assign([tp("rotate", 0), tp("rotate", 1), tp("rotate", 2)])
        .unwrap();
    let total = 3 * batches;
    let mut seen: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let mut first_of_partition_zero_before_all = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.values().map(Vec::len).sum::<usize>() < total {
        assert!(tokio::time::Instant::now() < deadline, "stalled: {seen:?}");
        for r in consumer.poll(Duration::from_millis(200)).await.unwrap() {
            seen.entry(r.partition).or_default().push(r.offset);
        }
        if first_of_partition_zero_before_all.is_none() && seen.len() == 3 {
            first_of_partition_zero_before_all = Some(seen[&0].len());
        }
    }
    // The prefetch bound holds about 4 batches: without rotation, partition 0 would have
    // been read to its end (40 records) before partitions 1 and 2 got a first record.
    let zero = first_of_partition_zero_before_all.unwrap();
    assert!(
        zero <= 10,
        "partition 0 had {zero} records before every partition had one"
    );
    let all: Vec<i64> = (0..i64::try_from(batches).unwrap()).collect();
    for partition in 0..3 {
        assert_eq!(seen[&partition], all, "partition {partition}");
    }
    broker.shutdown().await.unwrap();
}

/// Connections cut in the middle of fetches and commits (closed or reset), delayed and split
/// chunks: the consumer reconnects and goes on from its position, so every record comes once
/// and in order, and its commits land.
#[tokio::test]
async fn a_faulty_network_neither_skips_nor_repeats_records() {
    let seed = fault_seed();
    let (_dir, broker) = broker_advertising(Some("127.0.0.2")).await;
    let proxy_addr = std::net::SocketAddr::from(([127, 0, 0, 2], broker.addr().port()));
    let faults = proxy(proxy_addr, broker.addr()).await;
    let (partitions, per_partition, batch) = (3, 2_000, 50);
    create(&broker, "chaos", partitions).await;
    for partition in 0..partitions {
        for start in (0..per_partition).step_by(batch) {
            let prefix = format!("p{partition}");
            produce(
                &broker,
                "chaos",
                partition,
                &values(&prefix, start..start + batch),
            )
            .await;
        }
    }
    *faults.chaos.lock().unwrap() = Some(Chaos::new(seed, 100, 50, Duration::from_millis(1500)));
    let client = ClientConfig::new([proxy_addr.to_string()])
        .request_timeout(Duration::from_secs(1))
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(50));
    // Small fetches: many requests to break.
    let mut consumer = Consumer::new(
        ConsumerConfig::new(client)
            .group_id("chaos-readers")
            .enable_auto_commit(false)
            .auto_offset_reset(OffsetReset::Earliest)
            .fetch_wait(Duration::from_millis(100), 1)
            .max_partition_fetch_bytes(4 << 10),
    );
    let all: Vec<TopicPartition> = (0..partitions).map(|p| tp("chaos", p)).collect();
    consumer.assign(all.clone()).unwrap();
    let mut seen: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let total = usize::try_from(partitions).unwrap() * per_partition;
    let (mut received, mut failed_commits) = (0, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while received < total {
        assert!(
            tokio::time::Instant::now() < deadline,
            "seed {seed}: {received} of {total} records after 60 s"
        );
        // A poll may fail while the network is cut; the next one goes on from the position.
        let Ok(records) = consumer.poll(Duration::from_millis(200)).await else {
            continue;
        };
        for record in &records {
            seen.entry(record.partition).or_default().push(text(record));
        }
        received += records.len();
        if !records.is_empty() && consumer.commit().await.is_err() {
            failed_commits += 1;
        }
    }
    for partition in 0..partitions {
        let expected = values(&format!("p{partition}"), 0..per_partition);
        assert_eq!(
            seen[&partition], expected,
            "seed {seed}: partition {partition}"
        );
    }
    // The last commit may have been cut: commit until one lands (a failed attempt can be
    // answered at once while the connection backs off, so wait between attempts).
    let give_up = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Err(err) = consumer.commit().await {
        assert!(
            tokio::time::Instant::now() < give_up,
            "seed {seed}: commit keeps failing: {err}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    *faults.chaos.lock().unwrap() = None;
    let cuts = faults.cuts.load(std::sync::atomic::Ordering::SeqCst);
    assert!(cuts > 0, "seed {seed}: no connection was cut");
    let committed = Consumer::new(config(&broker).group_id("chaos-readers"))
        .committed(&all)
        .await
        .unwrap();
    for p in &all {
        assert_eq!(
            committed[p],
            i64::try_from(per_partition).unwrap(),
            "seed {seed}: {p:?}"
        );
    }
    eprintln!("seed {seed}: {cuts} connections cut, {failed_commits} commits failed and redone");
    consumer.close().await.unwrap();
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn committed_offsets_are_where_a_new_consumer_resumes() {
    let (_dir, broker) = broker().await;
    create(&broker, "c", 2).await;
    produce(&broker, "c", 0, &values("a", 0..10)).await;
    let p = tp("c", 0);
    let group_config = || config(&broker).group_id("g-commit").max_poll_records(4);

    let mut first = Consumer::new(group_config().enable_auto_commit(false));
    first.assign([p.clone()]).unwrap();
    assert_eq!(poll_n(&mut first, 4).await.len(), 4);
    first.commit().await.unwrap();
    assert_eq!(
        first.committed(std::slice::from_ref(&p)).await.unwrap()[&p],
        4
    );
    drop(first);

    let mut second = Consumer::new(group_config().enable_auto_commit(false));
    second.assign([p.clone()]).unwrap();
    let got = poll_n(&mut second, 4).await;
    assert_eq!(got.first().map(|r| r.offset), Some(4));
    second.commit_async().await.unwrap().unwrap();
    assert_eq!(
        second.committed(std::slice::from_ref(&p)).await.unwrap()[&p],
        8
    );
    drop(second);

    // Auto-commit covers the records returned by earlier polls.
    let mut auto = Consumer::new(group_config().auto_commit_interval(Duration::from_millis(50)));
    auto.assign([p.clone()]).unwrap();
    assert_eq!(
        poll_n(&mut auto, 2).await.first().map(|r| r.offset),
        Some(8)
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    auto.poll(Duration::from_millis(10)).await.unwrap();
    assert_eq!(
        auto.committed(std::slice::from_ref(&p)).await.unwrap()[&p],
        10
    );
    auto.close().await.unwrap();

    let no_group = Consumer::new(config(&broker));
    let err = no_group.commit().await.unwrap_err();
    assert!(
        matches!(err, weir_client::Error::InvalidArgument(_)),
        "{err}"
    );
    let err = no_group.committed(&[p]).await.unwrap_err();
    assert!(
        matches!(err, weir_client::Error::InvalidArgument(_)),
        "{err}"
    );
    broker.shutdown().await.unwrap();
}

fn group_member(broker: &RunningBroker, auto_commit: bool) -> Consumer {
    let mut consumer = Consumer::new(
        config(broker)
            .group_id("g-share")
            .enable_auto_commit(auto_commit)
            .auto_commit_interval(Duration::from_millis(100))
            .session(Duration::from_millis(2_000), Duration::from_millis(200))
            .rebalance_timeout(Duration::from_secs(5)),
    );
    consumer.subscribe(["g"]).unwrap();
    consumer
}

/// Whether the assignments are disjoint and cover partitions 0..n.
fn complete(assignments: &[Vec<TopicPartition>], n: i32) -> bool {
    let all: Vec<&TopicPartition> = assignments.iter().flatten().collect();
    let set: BTreeSet<&TopicPartition> = all.iter().copied().collect();
    all.len() == set.len()
        && set.len() == usize::try_from(n).unwrap()
        && assignments.iter().all(|a| !a.is_empty())
}

#[tokio::test]
async fn a_group_shares_partitions_and_takes_over_a_dead_member() {
    let (_dir, broker) = broker().await;
    create(&broker, "g", 6).await;
    let mut produced = BTreeSet::new();
    for p in 0..6 {
        let vals = values(&format!("one-{p}"), 0..10);
        produced.extend(vals.iter().cloned());
        produce(&broker, "g", p, &vals).await;
    }
    let mut survivors = [group_member(&broker, true), group_member(&broker, true)];
    let mut doomed = group_member(&broker, false);
    let mut seen = BTreeSet::new();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        for c in &mut survivors {
            seen.extend(
                c.poll(Duration::from_millis(50))
                    .await
                    .unwrap()
                    .iter()
                    .map(text),
            );
        }
        doomed.poll(Duration::from_millis(50)).await.unwrap();
        let assignments: Vec<Vec<TopicPartition>> = survivors
            .iter()
            .chain([&doomed])
            .map(Consumer::assignment)
            .collect();
        if complete(&assignments, 6) {
            // Range over 6 partitions and 3 members: two each.
            assert!(assignments.iter().all(|a| a.len() == 2), "{assignments:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no complete assignment: {assignments:?}"
        );
    }

    // The doomed member's task is aborted: no LeaveGroup, its heartbeats just stop.
    let task = tokio::spawn(async move {
        loop {
            let _records = doomed.poll(Duration::from_millis(50)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());

    for p in 0..6 {
        let vals = values(&format!("two-{p}"), 0..10);
        produced.extend(vals.iter().cloned());
        produce(&broker, "g", p, &vals).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        for c in &mut survivors {
            seen.extend(
                c.poll(Duration::from_millis(50))
                    .await
                    .unwrap()
                    .iter()
                    .map(text),
            );
        }
        let assignments: Vec<Vec<TopicPartition>> =
            survivors.iter().map(Consumer::assignment).collect();
        if complete(&assignments, 6) && seen.is_superset(&produced) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "missing {:?}; assignments {assignments:?}",
            produced.difference(&seen).collect::<Vec<_>>()
        );
    }
    for c in survivors {
        c.close().await.unwrap();
    }
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn subscribe_needs_a_group_and_excludes_assign() {
    let (_dir, broker) = broker().await;
    let mut consumer = Consumer::new(config(&broker));
    assert!(consumer.subscribe(["x"]).is_err());
    let mut consumer = Consumer::new(config(&broker).group_id("g"));
    consumer.assign([tp("x", 0)]).unwrap();
    assert!(consumer.subscribe(["x"]).is_err());
    broker.shutdown().await.unwrap();
}
