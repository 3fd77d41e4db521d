//! The producer against an in-process broker: offsets, key partitioning, order under
//! concurrency, backpressure, retries without duplicates, and failure reports.
//!
//! Faults come from the TCP proxy of `support/proxy.rs`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use weir_broker::{Broker, BrokerConfig, RunningBroker};

#[path = "support/proxy.rs"]
mod proxy;
use proxy::{Chaos, fault_seed, proxy};
use weir_client::connection::Connection;
use weir_client::partitioner::partition_for_key;
use weir_client::producer::{Acks, DeliveryError, SendFailure};
use weir_client::protocol::record_batch::{BatchHeader, Records};
use weir_client::{Admin, ClientConfig, NewTopic, Producer, ProducerConfig, ProducerRecord};

async fn broker(advertised: Option<&str>) -> (tempfile::TempDir, RunningBroker) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::for_tests(dir.path());
    config.auto_create_topics = false;
    config.advertised_host = advertised.map(str::to_owned);
    let running = Broker::new(config).start().await.expect("broker starts");
    (dir, running)
}

async fn create(addr: SocketAddr, topic: &str, partitions: i32) {
    Admin::new(ClientConfig::new([addr.to_string()]))
        .create_topics(&[NewTopic::new(topic, partitions)])
        .await
        .expect("topic created");
}

/// Short timeouts so that failures show within a test's few seconds.
fn config(addr: SocketAddr) -> ProducerConfig {
    ProducerConfig::new([addr.to_string()])
        .linger(Duration::from_millis(2))
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(100))
        .client(|c| {
            c.request_timeout(Duration::from_secs(1))
                .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(50))
        })
        .delivery_timeout(Duration::from_secs(4))
        .max_block(Duration::from_secs(2))
}

/// Every record of a partition as `(offset, key, value)`, read straight from the broker.
async fn read_partition(addr: SocketAddr, topic: &str, partition: i32) -> Vec<(i64, Bytes, Bytes)> {
    let connection = Connection::connect(addr, "reader", Duration::from_secs(5))
        .await
        .unwrap();
    let mut out = Vec::new();
    loop {
        let next = out.last().map_or(0, |(offset, _, _)| offset + 1);
        let request = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_min_bytes(0)
            .with_max_bytes(50 << 20)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(partition)
                            .with_fetch_offset(next)
                            .with_partition_max_bytes(8 << 20),
                    ]),
            ]);
        let response = connection.call(request).await.unwrap();
        let p = &response.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "{p:?}");
        let mut bytes: &[u8] = p.records.as_deref().unwrap_or_default();
        let before = out.len();
        while !bytes.is_empty() {
            let header = BatchHeader::parse(bytes).unwrap();
            let len = header.total_len().unwrap();
            if len > bytes.len() {
                break;
            }
            for record in Records::new(&bytes[..len]).unwrap() {
                let record = record.unwrap();
                let offset = record.offset(header.base_offset);
                if offset >= next {
                    out.push((
                        offset,
                        Bytes::copy_from_slice(record.key.unwrap_or_default()),
                        Bytes::copy_from_slice(record.value.unwrap_or_default()),
                    ));
                }
            }
            bytes = &bytes[len..];
        }
        if out.len() == before {
            return out;
        }
    }
}

#[tokio::test]
async fn records_get_consecutive_offsets_and_bad_records_come_back() {
    let (_dir, broker) = broker(None).await;
    create(broker.addr(), "orders", 1).await;
    let producer = Producer::new(config(broker.addr())).unwrap();
    let mut deliveries = Vec::new();
    for i in 0..20 {
        let record = ProducerRecord::new("orders", format!("v{i}")).timestamp(1_000 + i);
        deliveries.push(producer.send(record).await.unwrap());
    }
    for (i, delivery) in (0..).zip(deliveries) {
        let written = delivery.await.unwrap();
        assert_eq!((written.partition, written.offset), (0, i));
        assert_eq!(written.timestamp, 1_000 + i);
    }

    let missing = ProducerRecord::new("orders", "x").partition(7);
    let err = producer.send(missing.clone()).await.unwrap_err();
    assert!(matches!(
        err.reason,
        SendFailure::UnknownPartition {
            partition: 7,
            count: 1
        }
    ));
    assert_eq!(err.into_record(), missing);
    let huge = ProducerRecord::new("orders", vec![0u8; 2 << 20]);
    let err = producer.send(huge).await.unwrap_err();
    assert!(
        matches!(err.reason, SendFailure::RecordTooLarge { .. }),
        "{err}"
    );

    producer.close().await.unwrap();
    let late = producer.send(ProducerRecord::new("orders", "late")).await;
    assert!(matches!(late.unwrap_err().reason, SendFailure::Closed));
    let values: Vec<Bytes> = read_partition(broker.addr(), "orders", 0)
        .await
        .into_iter()
        .map(|(_, _, v)| v)
        .collect();
    let expected: Vec<Bytes> = (0..20).map(|i| Bytes::from(format!("v{i}"))).collect();
    assert_eq!(values, expected);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn keyed_records_land_on_their_murmur2_partition() {
    let (_dir, broker) = broker(None).await;
    create(broker.addr(), "keyed", 6).await;
    let producer = Producer::new(config(broker.addr())).unwrap();
    let mut deliveries = Vec::new();
    for i in 0..60 {
        let key = format!("customer-{i}");
        let record = ProducerRecord::new("keyed", "v").key(key.clone());
        deliveries.push((key, producer.send(record).await.unwrap()));
    }
    let mut by_partition: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for (key, delivery) in deliveries {
        let written = delivery.await.unwrap();
        assert_eq!(
            Some(written.partition),
            partition_for_key(key.as_bytes(), 6),
            "{key}"
        );
        by_partition.entry(written.partition).or_default().push(key);
    }
    producer.close().await.unwrap();
    for (partition, keys) in by_partition {
        let stored: Vec<Bytes> = read_partition(broker.addr(), "keyed", partition)
            .await
            .into_iter()
            .map(|(_, k, _)| k)
            .collect();
        let keys: Vec<Bytes> = keys.into_iter().map(Bytes::from).collect();
        assert_eq!(stored, keys, "partition {partition}");
    }
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn concurrent_senders_keep_each_partitions_order() {
    let (_dir, broker) = broker(None).await;
    create(broker.addr(), "busy", 3).await;
    // Small batches, so that many requests and batches per partition are involved.
    let producer = Producer::new(config(broker.addr()).batch_size(512)).unwrap();
    let tasks: Vec<_> = (0..6)
        .map(|task| {
            let producer = producer.clone();
            tokio::spawn(async move {
                let mut deliveries = Vec::new();
                for seq in 0..200 {
                    let record =
                        ProducerRecord::new("busy", format!("{seq}")).key(format!("task-{task}"));
                    deliveries.push(producer.send(record).await.unwrap());
                }
                let mut offsets = Vec::new();
                for delivery in deliveries {
                    let written = delivery.await.unwrap();
                    offsets.push((written.partition, written.offset));
                }
                offsets
            })
        })
        .collect();
    for task in tasks {
        let offsets = task.await.unwrap();
        // One key, one partition, increasing offsets.
        assert!(
            offsets
                .windows(2)
                .all(|w| w[0].0 == w[1].0 && w[0].1 < w[1].1)
        );
    }
    producer.flush().await.unwrap();
    let mut total = 0;
    for partition in 0..3 {
        let mut next: BTreeMap<Bytes, u32> = BTreeMap::new();
        for (_, key, value) in read_partition(broker.addr(), "busy", partition).await {
            let seq: u32 = std::str::from_utf8(&value).unwrap().parse().unwrap();
            let expected = next.entry(key.clone()).or_default();
            assert_eq!(seq, *expected, "{key:?} in partition {partition}");
            *expected += 1;
            total += 1;
        }
        assert!(next.values().all(|&n| n == 200), "{next:?}");
    }
    assert_eq!(total, 6 * 200);
    producer.close().await.unwrap();
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_full_buffer_blocks_then_hands_the_record_back() {
    let (_dir, broker) = broker(Some("127.0.0.2")).await;
    let proxy_addr = SocketAddr::from(([127, 0, 0, 2], broker.addr().port()));
    let faults = proxy(proxy_addr, broker.addr()).await;
    create(broker.addr(), "slow", 1).await;
    let buffer_memory = 8 << 10;
    let producer = Producer::new(
        config(proxy_addr)
            .buffer_memory(buffer_memory)
            .max_block(Duration::from_millis(300))
            .client(|c| c.request_timeout(Duration::from_secs(3))),
    )
    .unwrap();
    // Metadata and the producer id first, then the broker stops answering.
    let first = producer
        .send(ProducerRecord::new("slow", "first"))
        .await
        .unwrap();
    first.await.unwrap();
    faults.stalled.store(true, Ordering::SeqCst);

    let value = vec![7u8; 1_000];
    let mut accepted = Vec::new();
    let refused = loop {
        let record = ProducerRecord::new("slow", value.clone()).key(format!("{}", accepted.len()));
        let started = Instant::now();
        match producer.send(record.clone()).await {
            Ok(delivery) => accepted.push(delivery),
            Err(err) => {
                assert!(
                    started.elapsed() >= Duration::from_millis(290),
                    "{:?}",
                    started.elapsed()
                );
                assert!(matches!(err.reason, SendFailure::BufferFull(_)), "{err}");
                assert_eq!(*err.record, record);
                break err;
            }
        }
        assert!(accepted.len() < 100, "the buffer never filled");
    };
    // Memory is bounded: what was accepted fits the buffer.
    let bound = refused.record.size_bound();
    assert!(
        accepted.len() * bound <= buffer_memory,
        "{} records accepted",
        accepted.len()
    );
    assert!(accepted.len() >= 4, "{} records accepted", accepted.len());

    // The broker comes back: everything accepted is delivered, in order.
    faults.stalled.store(false, Ordering::SeqCst);
    let mut last = 0;
    for delivery in accepted {
        let written = delivery.await.unwrap();
        assert!(written.offset > last);
        last = written.offset;
    }
    producer.close().await.unwrap();
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_dropped_connection_is_retried_and_nothing_is_written_twice() {
    let (_dir, broker) = broker(Some("127.0.0.2")).await;
    let proxy_addr = SocketAddr::from(([127, 0, 0, 2], broker.addr().port()));
    let faults = proxy(proxy_addr, broker.addr()).await;
    create(broker.addr(), "retried", 1).await;
    let producer = Producer::new(config(proxy_addr).batch_size(256)).unwrap();
    let count = 300;
    let mut deliveries = Vec::new();
    for i in 0..count {
        if i == 100 || i == 200 {
            // Lose the next answer: the broker has appended, the producer does not know.
            faults.cut_next_response.store(true, Ordering::SeqCst);
        }
        let record = ProducerRecord::new("retried", format!("{i}"));
        deliveries.push(producer.send(record).await.unwrap());
        if i % 10 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let mut offsets = Vec::new();
    for delivery in deliveries {
        offsets.push(delivery.await.unwrap().offset);
    }
    producer.close().await.unwrap();
    assert!(
        faults.accepted.load(Ordering::SeqCst) >= 3,
        "the connection was never cut"
    );
    assert_eq!(offsets, (0..count).collect::<Vec<i64>>());
    let values: Vec<Bytes> = read_partition(broker.addr(), "retried", 0)
        .await
        .into_iter()
        .map(|(_, _, v)| v)
        .collect();
    let expected: Vec<Bytes> = (0..count).map(|i| Bytes::from(format!("{i}"))).collect();
    assert_eq!(values, expected);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_faulty_network_neither_loses_nor_duplicates_nor_reorders() {
    let seed = fault_seed();
    let (_dir, broker) = broker(Some("127.0.0.2")).await;
    let proxy_addr = SocketAddr::from(([127, 0, 0, 2], broker.addr().port()));
    let faults = proxy(proxy_addr, broker.addr()).await;
    let partitions = 3;
    create(broker.addr(), "chaos", partitions).await;
    // Cuts in the middle of requests and responses (closed or reset), delays beyond the
    // request timeout now and then, and frames split into pieces.
    *faults.chaos.lock().unwrap() = Some(Chaos::new(seed, 100, 50, Duration::from_millis(1200)));
    // Small batches and several in flight per partition: many pipelined requests to break.
    let producer = Producer::new(
        config(proxy_addr)
            .batch_size(512)
            .delivery_timeout(Duration::from_secs(60))
            .max_block(Duration::from_secs(30)),
    )
    .unwrap();
    let count = 6_000_usize;
    let mut deliveries = Vec::new();
    for i in 0..count {
        let partition = i32::try_from(i).unwrap() % partitions;
        let record = ProducerRecord::new("chaos", format!("{i}")).partition(partition);
        deliveries.push((partition, producer.send(record).await.unwrap()));
        if i % 10 == 0 {
            // Records arrive over time, as from an application: many requests, not a few.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let mut reported: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (partition, delivery) in deliveries {
        let written = delivery
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(written.partition, partition);
        reported.entry(partition).or_default().push(written.offset);
    }
    producer.close().await.unwrap();
    *faults.chaos.lock().unwrap() = None;
    let cuts = faults.cuts.load(Ordering::SeqCst);
    assert!(cuts > 0, "seed {seed}: no connection was cut");
    for partition in 0..partitions {
        let stored = read_partition(broker.addr(), "chaos", partition).await;
        let values: Vec<String> = stored
            .iter()
            .map(|(_, _, v)| String::from_utf8(v.to_vec()).unwrap())
            .collect();
        let expected: Vec<String> = (0..count)
            .filter(|i| i32::try_from(*i).unwrap() % partitions == partition)
            .map(|i| i.to_string())
            .collect();
        assert_eq!(values, expected, "seed {seed}: partition {partition}");
        let offsets: Vec<i64> = stored.iter().map(|(o, _, _)| *o).collect();
        assert_eq!(
            reported[&partition], offsets,
            "seed {seed}: partition {partition}"
        );
    }
    eprintln!(
        "seed {seed}: {cuts} connections cut, {} chunks delayed, {} connections",
        faults.delays.load(Ordering::SeqCst),
        faults.accepted.load(Ordering::SeqCst)
    );
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn flush_and_close_report_what_failed() {
    let (_dir, broker) = broker(None).await;
    let addr = broker.addr();
    create(addr, "doomed", 2).await;
    let short = || {
        config(addr)
            .client(|c| c.request_timeout(Duration::from_millis(200)))
            .delivery_timeout(Duration::from_millis(400))
    };
    // Two producers, each with its own metadata, which is fresh when the broker goes away.
    let (flushed, closed) = (
        Producer::new(short()).unwrap(),
        Producer::new(short()).unwrap(),
    );
    for producer in [&flushed, &closed] {
        let record = ProducerRecord::new("doomed", "ok").partition(0);
        producer.send(record).await.unwrap().await.unwrap();
    }
    broker.shutdown().await.unwrap();

    let mut deliveries = Vec::new();
    for i in 0..5 {
        let record = ProducerRecord::new("doomed", "lost").partition(i % 2);
        deliveries.push(flushed.send(record).await.unwrap());
    }
    let report = flushed.flush().await.unwrap_err();
    assert_eq!(report.failed_records, 5);
    assert_eq!(
        report.batches.iter().map(|b| b.records).sum::<usize>(),
        5,
        "{report:?}"
    );
    for delivery in deliveries {
        let err = delivery.await.unwrap_err();
        assert!(matches!(err, DeliveryError::TimedOut { .. }), "{err}");
    }
    // Reported once: the next flush and the close have nothing new.
    flushed.flush().await.unwrap();
    flushed.close().await.unwrap();

    let record = ProducerRecord::new("doomed", "also lost").partition(1);
    let unwatched = closed.send(record).await.unwrap();
    drop(unwatched); // nobody waits for it; close still reports it
    let report = closed.close().await.unwrap_err();
    assert_eq!((report.failed_records, report.failed_batches), (1, 1));
    assert_eq!(report.batches[0].partition, 1);
}

#[tokio::test]
async fn acks_one_and_zero_deliver_without_idempotence() {
    let (_dir, broker) = broker(None).await;
    create(broker.addr(), "plain", 1).await;
    for (acks, expected) in [(Acks::Leader, 0), (Acks::None, -1)] {
        let producer = Producer::new(config(broker.addr()).acks(acks).idempotence(false)).unwrap();
        let written = producer
            .send(ProducerRecord::new("plain", format!("{acks:?}")))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(written.offset, expected);
        producer.close().await.unwrap();
    }
    let values: Vec<Bytes> = read_partition(broker.addr(), "plain", 0)
        .await
        .into_iter()
        .map(|(_, _, v)| v)
        .collect();
    assert_eq!(values, [Bytes::from("Leader"), Bytes::from("None")]);
    assert!(
        Producer::new(config(broker.addr()).acks(Acks::Leader)).is_err(),
        "idempotence needs acks=all"
    );
    broker.shutdown().await.unwrap();
}
