//! Topics created through metadata: the producer asks for it by default, as the Java
//! producer and librdkafka do; consumers and admin never do; and when a topic is not created,
//! the error names the setting that would change it (the producer's or the broker's).

use std::time::Duration;

use weir_broker::{Broker, BrokerConfig, RunningBroker};
use weir_client::producer::SendFailure;
use weir_client::{Admin, ClientConfig, Consumer, ConsumerConfig, Producer, ProducerConfig};
use weir_client::{ProducerRecord, TopicPartition};

async fn broker(auto_create_topics: bool) -> (tempfile::TempDir, RunningBroker) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::for_tests(dir.path());
    config.auto_create_topics = auto_create_topics;
    let running = Broker::new(config).start().await.expect("broker starts");
    (dir, running)
}

/// A producer that gives up on metadata after 2 s.
fn producer_config(broker: &RunningBroker) -> ProducerConfig {
    ProducerConfig::new([broker.addr().to_string()])
        .linger(Duration::from_millis(2))
        .max_block(Duration::from_secs(2))
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(100))
}

async fn topic_names(broker: &RunningBroker) -> Vec<String> {
    Admin::new(ClientConfig::new([broker.addr().to_string()]))
        .list_topics()
        .await
        .expect("list topics")
        .into_iter()
        .map(|t| t.name)
        .collect()
}

#[tokio::test]
async fn the_producer_creates_a_missing_topic_by_default_and_not_when_told_not_to() {
    let (_dir, broker) = broker(true).await;
    let producer = Producer::new(producer_config(&broker)).expect("producer");
    assert!(producer.config().allow_auto_create_topics, "the default");
    let written = producer
        .send(ProducerRecord::new("fresh", "first"))
        .await
        .expect("accepted")
        .await
        .expect("written");
    assert_eq!((written.partition, written.offset), (0, 0));
    producer.close().await.expect("closed");
    assert_eq!(topic_names(&broker).await, ["fresh"]);

    let careful =
        Producer::new(producer_config(&broker).allow_auto_create_topics(false)).expect("producer");
    let err = careful
        .send(ProducerRecord::new("typo", "x"))
        .await
        .expect_err("no such topic");
    assert!(
        matches!(err.reason, SendFailure::UnknownTopic { auto_create: false }),
        "{err}"
    );
    assert!(
        err.to_string().contains("allow_auto_create_topics"),
        "the error names the setting: {err}"
    );
    careful.close().await.expect("closed");

    // A consumer asking about a topic does not create it either.
    let mut consumer = Consumer::new(ConsumerConfig::new(ClientConfig::new([broker
        .addr()
        .to_string()])));
    consumer
        .assign([TopicPartition::new("looked-at", 0)])
        .expect("assign");
    let polled = consumer.poll(Duration::from_millis(300)).await;
    assert!(polled.map_or(true, |r| r.is_empty()));
    consumer.close().await.expect("closed");
    assert_eq!(topic_names(&broker).await, ["fresh"]);
    broker.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_broker_that_does_not_create_topics_is_named_in_the_error() {
    let (_dir, broker) = broker(false).await;
    let producer = Producer::new(producer_config(&broker)).expect("producer");
    let err = producer
        .send(ProducerRecord::new("missing", "x"))
        .await
        .expect_err("not created");
    assert!(
        matches!(err.reason, SendFailure::UnknownTopic { auto_create: true }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("auto_create_topics") && text.contains("auto.create.topics.enable"),
        "the error names the broker's setting: {text}"
    );
    producer.close().await.expect("closed");
    assert!(topic_names(&broker).await.is_empty());
    broker.shutdown().await.expect("shutdown");
}
