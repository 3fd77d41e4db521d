//! Compressed batches end to end: the producer compresses with each codec, the broker stores
//! the batches as they came, and the consumer decompresses them.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use weir_broker::{Broker, BrokerConfig, RunningBroker};
use weir_client::connection::Connection;
use weir_client::producer::Compression;
use weir_client::protocol::record_batch::{BatchHeader, Compression as Codec};
use weir_client::{
    Admin, ClientConfig, Consumer, ConsumerConfig, ConsumerRecord, NewTopic, OffsetReset, Producer,
    ProducerConfig, ProducerRecord, TopicPartition,
};

async fn broker() -> (tempfile::TempDir, RunningBroker) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::for_tests(dir.path());
    config.auto_create_topics = false;
    let running = Broker::new(config).start().await.expect("broker starts");
    (dir, running)
}

async fn create(addr: SocketAddr, topic: &str) {
    Admin::new(ClientConfig::new([addr.to_string()]))
        .create_topics(&[NewTopic::new(topic, 1)])
        .await
        .expect("topic created");
}

/// Sends `values` to partition 0 of `topic` (key `k<i>`, one header, timestamp 1000 + i).
async fn produce(addr: SocketAddr, topic: &str, compression: Compression, values: &[Bytes]) {
    let producer = Producer::new(
        ProducerConfig::new([addr.to_string()])
            .compression(compression)
            .linger(Duration::from_millis(20)),
    )
    .expect("producer");
    let mut deliveries = Vec::new();
    for (i, value) in (0i64..).zip(values) {
        let record = ProducerRecord::new(topic, value.clone())
            .key(format!("k{i}"))
            .partition(0)
            .header("h", Some(Bytes::from(format!("v{i}"))))
            .timestamp(1_000 + i);
        deliveries.push(producer.send(record).await.expect("send"));
    }
    producer.flush().await.expect("flush");
    for (i, delivery) in (0i64..).zip(deliveries) {
        assert_eq!(delivery.await.expect("delivered").offset, i);
    }
    producer.close().await.expect("close");
}

/// The codec of every batch stored in partition 0, read with a raw fetch.
async fn stored_codecs(addr: SocketAddr, topic: &str) -> Vec<Codec> {
    let connection = Connection::connect(addr, "reader", Duration::from_secs(5))
        .await
        .unwrap();
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(50 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(8 << 20),
                ]),
        ]);
    let response = connection.call(request).await.unwrap();
    let p = &response.responses[0].partitions[0];
    assert_eq!(p.error_code, 0, "{p:?}");
    let mut bytes: &[u8] = p.records.as_deref().unwrap_or_default();
    let mut codecs = Vec::new();
    while !bytes.is_empty() {
        let header = BatchHeader::parse(bytes).unwrap();
        codecs.push(header.attributes.compression().unwrap());
        bytes = &bytes[header.total_len().unwrap()..];
    }
    codecs
}

async fn consume(addr: SocketAddr, topic: &str, n: usize) -> Vec<ConsumerRecord> {
    let config = ConsumerConfig::new(ClientConfig::new([addr.to_string()]))
        .auto_offset_reset(OffsetReset::Earliest)
        .fetch_wait(Duration::from_millis(100), 1);
    let mut consumer = Consumer::new(config);
    consumer.assign([TopicPartition::new(topic, 0)]).unwrap();
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

fn check(records: &[ConsumerRecord], values: &[Bytes]) {
    assert_eq!(records.len(), values.len());
    for ((i, record), value) in (0i64..).zip(records).zip(values) {
        assert_eq!(record.offset, i);
        assert_eq!(record.timestamp, 1_000 + i);
        assert_eq!(record.key.as_deref(), Some(format!("k{i}").as_bytes()));
        assert_eq!(record.value.as_ref(), Some(value));
        assert_eq!(record.headers.len(), 1);
        assert_eq!(record.headers[0].key, "h");
        assert_eq!(
            record.headers[0].value.as_deref(),
            Some(format!("v{i}").as_bytes())
        );
    }
}

#[tokio::test]
async fn each_codec_round_trips_through_the_broker() {
    let (_dir, broker) = broker().await;
    let addr = broker.addr();
    let values: Vec<Bytes> = (0..300)
        .map(|i| Bytes::from(format!("value {i} {}", "compressible text ".repeat(i % 20))))
        .collect();
    for (compression, codec) in [
        (Compression::None, Codec::None),
        (Compression::Gzip, Codec::Gzip),
        (Compression::Snappy, Codec::Snappy),
        (Compression::Lz4, Codec::Lz4),
        (Compression::Zstd, Codec::Zstd),
    ] {
        let topic = format!("t-{codec:?}").to_lowercase();
        create(addr, &topic).await;
        produce(addr, &topic, compression, &values).await;
        let codecs = stored_codecs(addr, &topic).await;
        assert!(!codecs.is_empty());
        assert!(codecs.iter().all(|c| *c == codec), "{codec:?}: {codecs:?}");
        check(&consume(addr, &topic, values.len()).await, &values);
    }
}

#[tokio::test]
async fn incompressible_batches_are_sent_uncompressed() {
    let (_dir, broker) = broker().await;
    let addr = broker.addr();
    create(addr, "noise").await;
    // One record of xorshift bytes: nothing for a codec to find (several records would give
    // it their repeated framing).
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let values: Vec<Bytes> = (0..1)
        .map(|_| {
            let value: Vec<u8> = (0..4000)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state.to_le_bytes()[0]
                })
                .collect();
            Bytes::from(value)
        })
        .collect();
    produce(addr, "noise", Compression::Zstd, &values).await;
    let codecs = stored_codecs(addr, "noise").await;
    assert!(codecs.iter().all(|c| *c == Codec::None), "{codecs:?}");
    check(&consume(addr, "noise", values.len()).await, &values);
}
