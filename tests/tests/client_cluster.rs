//! The client against a cluster of several brokers, faked in process
//! (`weir_tests::fake_cluster`): each partition-scoped request goes to the partition's
//! leader, the client follows a leadership or coordinator move, a broker that is down stops
//! only its own partitions, and any reachable bootstrap address suffices.

use std::collections::BTreeMap;
use std::time::Duration;

use weir_client::{
    Admin, ClientConfig, Cluster, Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, Producer,
    ProducerConfig, ProducerRecord, RecordMetadata, TopicPartition,
};
use weir_protocol::api::ApiKey;
use weir_tests::fake_cluster::FakeCluster;

/// Longest any single step may take before the test fails (never a hang).
const STEP: Duration = Duration::from_secs(15);

fn client(bootstrap: &str) -> ClientConfig {
    ClientConfig::new(bootstrap.split(','))
        .request_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(2))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
}

fn producer(bootstrap: &str) -> Producer {
    let config = ProducerConfig::new(bootstrap.split(','))
        .linger(Duration::ZERO)
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .delivery_timeout(Duration::from_secs(30))
        .client(|_| client(bootstrap));
    Producer::new(config).expect("producer")
}

fn consumer(bootstrap: &str, topic: &str, partitions: i32) -> Consumer {
    let config = ConsumerConfig::new(client(bootstrap))
        .auto_offset_reset(OffsetReset::Earliest)
        .fetch_wait(Duration::from_millis(50), 1);
    let mut consumer = Consumer::new(config);
    consumer
        .assign((0..partitions).map(|p| TopicPartition::new(topic, p)))
        .expect("assign");
    consumer
}

async fn deliver(producer: &Producer, topic: &str, partition: i32, value: &str) -> RecordMetadata {
    let record = ProducerRecord::new(topic, value.to_owned()).partition(partition);
    let delivery = producer.send(record).await.expect("send");
    tokio::time::timeout(STEP, delivery)
        .await
        .unwrap_or_else(|_| panic!("{topic}-{partition} not delivered in {STEP:?}"))
        .expect("delivered")
}

/// Polls until `want` records came back (panics after [`STEP`]).
async fn consume(consumer: &mut Consumer, want: usize) -> Vec<ConsumerRecord> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + STEP;
    while got.len() < want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumed {} of {want} records in {STEP:?}",
            got.len()
        );
        got.extend(
            consumer
                .poll(Duration::from_millis(100))
                .await
                .expect("poll"),
        );
    }
    got
}

fn per_partition(records: &[ConsumerRecord]) -> BTreeMap<i32, usize> {
    let mut out = BTreeMap::new();
    for r in records {
        *out.entry(r.partition).or_default() += 1;
    }
    out
}

#[tokio::test]
async fn each_batch_goes_to_its_partitions_leader() {
    let fake = FakeCluster::start(3).await;
    fake.create_topic("spread", &[1, 2, 3, 1]);
    let producer = producer(&fake.bootstrap());
    for partition in 0..4 {
        let delivered = deliver(&producer, "spread", partition, "v").await;
        assert_eq!((delivered.partition, delivered.offset), (partition, 0));
    }
    for (partition, leader) in [(0, 1), (1, 2), (2, 3), (3, 1)] {
        let batches = fake.batches("spread", partition);
        assert_eq!(batches.len(), 1, "partition {partition}");
        assert_eq!(batches[0].node, leader, "partition {partition}");
    }
    for node in 1..=3 {
        assert!(fake.requests(node, ApiKey::Produce) > 0, "broker {node}");
    }
    producer.close().await.expect("close");
}

#[tokio::test]
async fn the_producer_follows_a_leadership_move() {
    let fake = FakeCluster::start(3).await;
    fake.create_topic("moving", &[1, 2]);
    let producer = producer(&fake.bootstrap());
    assert_eq!(deliver(&producer, "moving", 0, "before").await.offset, 0);
    fake.move_leader("moving", 0, 3);
    // The old leader answers NOT_LEADER_OR_FOLLOWER; the producer asks metadata again.
    assert_eq!(deliver(&producer, "moving", 0, "after").await.offset, 1);
    let nodes: Vec<i32> = fake.batches("moving", 0).iter().map(|b| b.node).collect();
    assert_eq!(nodes, [1, 3]);
    producer.close().await.expect("close");
}

#[tokio::test]
async fn invalidated_metadata_is_refreshed_for_every_topic_not_just_the_first_asked() {
    let fake = FakeCluster::start(3).await;
    fake.create_topic("first", &[1]);
    fake.create_topic("second", &[2]);
    let cluster = Cluster::new(client(&fake.bootstrap()));
    assert_eq!(cluster.leader("first", 0).await.expect("leader"), 1);
    assert_eq!(cluster.leader("second", 0).await.expect("leader"), 2);
    fake.move_leader("second", 0, 3);
    cluster.invalidate().await;
    // Refreshing "first" must not make the stale entry of "second" look fresh again.
    cluster.topic("first").await.expect("first");
    assert_eq!(cluster.leader("second", 0).await.expect("leader"), 3);
}

#[tokio::test]
async fn the_consumer_follows_a_leadership_move() {
    let fake = FakeCluster::start(3).await;
    fake.create_topic("cmove", &[1, 2]);
    let producer = producer(&fake.bootstrap());
    for i in 0..3 {
        deliver(&producer, "cmove", 0, &format!("a{i}")).await;
        deliver(&producer, "cmove", 1, &format!("b{i}")).await;
    }
    let mut consumer = consumer(&fake.bootstrap(), "cmove", 2);
    assert_eq!(consume(&mut consumer, 6).await.len(), 6);
    let fetches_from_1 = fake.requests(1, ApiKey::Fetch);
    fake.move_leader("cmove", 0, 3);
    for i in 3..6 {
        deliver(&producer, "cmove", 0, &format!("a{i}")).await;
    }
    let after = consume(&mut consumer, 3).await;
    let values: Vec<&[u8]> = after
        .iter()
        .map(|r| r.value.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(values, [b"a3", b"a4", b"a5"]);
    assert!(
        fake.requests(3, ApiKey::Fetch) > 0,
        "the new leader is fetched from"
    );
    // Broker 1 leads nothing now: at most the fetches in flight at the move reach it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(fake.requests(1, ApiKey::Fetch) <= fetches_from_1 + 2);
    producer.close().await.expect("close");
}

#[tokio::test]
async fn a_broker_that_is_down_holds_back_only_its_own_partitions() {
    let mut fake = FakeCluster::start(3).await;
    fake.create_topic("partly", &[1, 2, 3]);
    let producer = producer(&fake.bootstrap());
    deliver(&producer, "partly", 2, "early").await;
    fake.stop(3);
    let stuck = producer
        .send(ProducerRecord::new("partly", "waits").partition(2))
        .await
        .expect("send");
    // The others go on while partition 2 has no leader.
    for i in 0..3 {
        deliver(&producer, "partly", 0, &format!("a{i}")).await;
        deliver(&producer, "partly", 1, &format!("b{i}")).await;
    }
    assert_eq!(fake.record_count("partly", 2), 1);
    // A consumer started now reads partitions 0 and 1 although 2 has no leader.
    let mut consumer = consumer(&fake.bootstrap(), "partly", 3);
    let got = consume(&mut consumer, 6).await;
    assert_eq!(per_partition(&got), BTreeMap::from([(0, 3), (1, 3)]));
    // Partition 2 gets a leader again: the waiting record goes, and is read.
    fake.move_leader("partly", 2, 1);
    let delivered = tokio::time::timeout(STEP, stuck)
        .await
        .expect("delivered once led")
        .expect("delivered");
    assert_eq!((delivered.partition, delivered.offset), (2, 1));
    let got = consume(&mut consumer, 2).await;
    assert_eq!(per_partition(&got), BTreeMap::from([(2, 2)]));
    producer.close().await.expect("close");
}

#[tokio::test]
async fn list_offsets_answers_for_the_partitions_whose_leader_is_up() {
    let mut fake = FakeCluster::start(3).await;
    fake.create_topic("offsets", &[1, 3]);
    let cluster = Cluster::new(client(&fake.bootstrap()));
    cluster.topic("offsets").await.expect("metadata");
    // Metadata still names broker 3 as the leader of partition 1 when it stops.
    fake.stop(3);
    let asked = [("offsets".to_owned(), 0, -1), ("offsets".to_owned(), 1, -1)];
    let outcomes = cluster.list_offsets(&asked).await.expect("per partition");
    assert_eq!(outcomes[&("offsets".to_owned(), 0)].as_ref().ok(), Some(&0));
    let failed = outcomes[&("offsets".to_owned(), 1)]
        .as_ref()
        .expect_err("down");
    assert!(failed.is_retriable(), "{failed}");
    // Asked again, metadata says partition 1 has no leader.
    let outcomes = cluster.list_offsets(&asked).await.expect("per partition");
    let again = outcomes[&("offsets".to_owned(), 1)]
        .as_ref()
        .expect_err("no leader");
    assert!(
        again.to_string().contains("LEADER_NOT_AVAILABLE"),
        "{again}"
    );
}

#[tokio::test]
async fn any_reachable_bootstrap_address_suffices() {
    let fake = FakeCluster::start(2).await;
    fake.create_topic("boot", &[1, 2]);
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        listener.local_addr().expect("addr")
    };
    let bootstrap = format!("{closed},{}", fake.addr(2));
    let producer = producer(&bootstrap);
    deliver(&producer, "boot", 0, "one").await;
    deliver(&producer, "boot", 1, "two").await;
    // Every broker was learned from broker 2's metadata: partition 0 went to broker 1.
    assert_eq!(fake.batches("boot", 0)[0].node, 1);
    producer.close().await.expect("close");
}

#[tokio::test]
async fn metadata_is_learned_through_another_broker_when_the_bootstrap_broker_dies() {
    let mut fake = FakeCluster::start(3).await;
    fake.create_topic("orphan", &[2, 3]);
    let producer = producer(&fake.addr(1).to_string());
    deliver(&producer, "orphan", 0, "one").await;
    fake.stop(1);
    fake.move_leader("orphan", 0, 3);
    // Broker 1, the only bootstrap address, is gone: metadata comes from 2 or 3.
    deliver(&producer, "orphan", 0, "two").await;
    deliver(&producer, "orphan", 1, "three").await;
    let nodes: Vec<i32> = fake.batches("orphan", 0).iter().map(|b| b.node).collect();
    assert_eq!(nodes, [2, 3]);
    producer.close().await.expect("close");
}

#[tokio::test]
async fn commits_follow_the_group_coordinator() {
    let mut fake = FakeCluster::start(3).await;
    fake.create_topic("commits", &[1]);
    let config = ConsumerConfig::new(client(&fake.bootstrap())).group_id("g");
    let mut consumer = Consumer::new(config);
    let tp = TopicPartition::new("commits", 0);
    consumer.assign([tp.clone()]).expect("assign");
    consumer
        .commit_offsets([(tp.clone(), 5)])
        .await
        .expect("commit at the first coordinator");
    assert_eq!(fake.committed("g", "commits", 0), Some(5));
    // NOT_COORDINATOR from the old one: found again, committed at the new one.
    fake.set_coordinator(2);
    consumer
        .commit_offsets([(tp.clone(), 7)])
        .await
        .expect("commit after NOT_COORDINATOR");
    assert_eq!(fake.committed("g", "commits", 0), Some(7));
    // The coordinator's broker goes down: COORDINATOR_NOT_AVAILABLE until another takes over.
    fake.stop(2);
    let took_over = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        fake.set_coordinator(3);
    };
    let (committed, ()) = tokio::join!(consumer.commit_offsets([(tp.clone(), 9)]), took_over);
    committed.expect("commit after the coordinator died");
    assert_eq!(fake.committed("g", "commits", 0), Some(9));
    let read = consumer
        .committed(std::slice::from_ref(&tp))
        .await
        .expect("committed");
    assert_eq!(read.get(&tp), Some(&9));
}

#[tokio::test]
async fn metadata_comes_from_another_broker_when_the_connected_one_hangs() {
    let fake = FakeCluster::start(3).await;
    fake.create_topic("hung", &[2, 3]);
    let config = client(&fake.addr(1).to_string())
        .request_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500));
    let cluster = Cluster::new(config);
    assert_eq!(cluster.leader("hung", 0).await.expect("leader"), 2);
    let asked_1 = |fake: &FakeCluster| {
        fake.requests(1, ApiKey::ApiVersions) + fake.requests(1, ApiKey::Metadata)
    };
    let before = asked_1(&fake);
    // Broker 1, the first known (and the only bootstrap address), stops answering.
    fake.hang(1);
    fake.move_leader("hung", 0, 3);
    cluster.invalidate().await;
    let leader = tokio::time::timeout(STEP, cluster.leader("hung", 0))
        .await
        .expect("no hang")
        .expect("metadata from broker 2 or 3");
    assert_eq!(leader, 3);
    assert!(asked_1(&fake) > before, "broker 1 was tried first");
}

#[tokio::test]
async fn a_hung_leader_holds_back_only_its_own_partitions() {
    let fake = FakeCluster::start(3).await;
    fake.create_topic("stalled", &[1, 2]);
    let bootstrap = fake.bootstrap();
    let config = ProducerConfig::new(bootstrap.split(','))
        .linger(Duration::ZERO)
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .delivery_timeout(Duration::from_secs(30))
        .client(|_| client(&bootstrap).request_timeout(Duration::from_millis(500)));
    let producer = Producer::new(config).expect("producer");
    deliver(&producer, "stalled", 0, "early").await;
    fake.hang(1);
    let stuck = producer
        .send(ProducerRecord::new("stalled", "waits").partition(0))
        .await
        .expect("send");
    for i in 0..3 {
        deliver(&producer, "stalled", 1, &format!("b{i}")).await;
    }
    // The hung leader loses partition 0 to broker 3: the record goes there, once.
    fake.move_leader("stalled", 0, 3);
    let delivered = tokio::time::timeout(STEP, stuck)
        .await
        .expect("delivered once moved")
        .expect("delivered");
    assert_eq!((delivered.partition, delivered.offset), (0, 1));
    let nodes: Vec<i32> = fake.batches("stalled", 0).iter().map(|b| b.node).collect();
    assert_eq!(nodes, [1, 3]);
    producer.close().await.expect("close");
}

#[tokio::test]
async fn admin_group_requests_follow_the_coordinator() {
    let mut fake = FakeCluster::start(3).await;
    fake.create_topic("lagging", &[2]);
    let producer = producer(&fake.bootstrap());
    for i in 0..5 {
        deliver(&producer, "lagging", 0, &format!("r{i}")).await;
    }
    let consumer = Consumer::new(ConsumerConfig::new(client(&fake.bootstrap())).group_id("lag"));
    let tp = TopicPartition::new("lagging", 0);
    consumer.commit_offsets([(tp, 3)]).await.expect("commit");
    let admin = Admin::new(client(&fake.bootstrap()));
    // The coordinator's broker goes down; another takes the group over a little later.
    fake.stop(1);
    let took_over = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        fake.set_coordinator(3);
    };
    let (described, ()) = tokio::join!(admin.describe_group("lag"), took_over);
    let described = described.expect("described once the coordinator is back");
    let lags: Vec<(i32, i64, i64, i64)> = described
        .offsets
        .iter()
        .map(|o| (o.partition, o.committed, o.end, o.lag))
        .collect();
    assert_eq!(lags, [(0, 3, 5, 2)]);
    assert!(fake.requests(3, ApiKey::DescribeGroups) > 0);
    producer.close().await.expect("close");
}

/// Metadata requests the whole fake cluster has answered.
fn metadata_requests(fake: &FakeCluster) -> usize {
    (1..=3).map(|n| fake.requests(n, ApiKey::Metadata)).sum()
}

#[tokio::test]
async fn many_leaderless_partitions_cost_one_metadata_request_not_one_each() {
    let mut fake = FakeCluster::start(3).await;
    let mut leaders = vec![3; 20];
    leaders.push(1);
    fake.create_topic("wide", &leaders);
    fake.stop(3);
    let cluster = Cluster::new(client(&fake.bootstrap()));
    let asked: Vec<(String, i32, i64)> = (0..21).map(|p| ("wide".to_owned(), p, -1)).collect();
    cluster.topic("wide").await.expect("metadata");
    let before = metadata_requests(&fake);
    let outcomes = cluster.list_offsets(&asked).await.expect("per partition");
    assert_eq!(outcomes[&("wide".to_owned(), 20)].as_ref().ok(), Some(&0));
    assert_eq!(outcomes.values().filter(|o| o.is_err()).count(), 20);
    assert!(
        metadata_requests(&fake) - before <= 1,
        "one lookup of the topic at most"
    );

    // A consumer of every partition: each round looks up the topic once, not once per
    // leaderless partition.
    let mut consumer = consumer(&fake.bootstrap(), "wide", 21);
    let producer = producer(&fake.bootstrap());
    deliver(&producer, "wide", 20, "led").await;
    assert_eq!(consume(&mut consumer, 1).await.len(), 1);
    let before = metadata_requests(&fake);
    let started = std::time::Instant::now();
    for _ in 0..10 {
        assert!(
            consumer
                .poll(Duration::from_millis(100))
                .await
                .expect("poll")
                .is_empty()
        );
    }
    let rounds = started.elapsed().as_millis() / 100 + 1;
    let asked = metadata_requests(&fake) - before;
    // Retried every 100 ms (the consumer's retry backoff): about one lookup per round.
    assert!(
        u128::try_from(asked).expect("count") <= 2 * rounds,
        "{asked} Metadata requests in {rounds} rounds of 100 ms"
    );
    producer.close().await.expect("close");
}

#[tokio::test]
async fn when_every_broker_hangs_metadata_fails_retriably_naming_the_last_failure() {
    let fake = FakeCluster::start(2).await;
    fake.create_topic("silent", &[1]);
    let config = client(&fake.bootstrap())
        .request_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300));
    let cluster = Cluster::new(config);
    cluster.topic("silent").await.expect("metadata");
    fake.hang(1);
    fake.hang(2);
    cluster.invalidate().await;
    let err = tokio::time::timeout(STEP, cluster.topic("silent"))
        .await
        .expect("no hang")
        .expect_err("no broker answers");
    assert!(err.is_retriable(), "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
}
