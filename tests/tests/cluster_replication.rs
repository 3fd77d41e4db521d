//! Replicated partitions (clusters part 2) with whole brokers in one process: a topic of
//! replication factor 3 is a Raft group per partition; `acks=all` answers once a majority
//! has the batch; consumers read only committed records; after the leader's broker stops,
//! another replica leads (a higher leader epoch in every broker's metadata) and serves every
//! acknowledged record at its offset; a returning replica catches up.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::MetadataResponse;
use weir_broker::testing::BrokerCluster;
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_protocol::record_batch::Records;
use weir_tests::{Client, batch, req, versions};

async fn metadata(cluster: &BrokerCluster, node: u64, topic: &str) -> MetadataResponse {
    let mut client = Client::connect(cluster.addr(node).expect("node runs")).await;
    let v = *versions(ApiKey::Metadata).end();
    client.call(v, req::metadata(v, Some(&[topic]))).await
}

/// (leader, epoch, replicas, isr) of partition 0 as `node` reports it.
async fn partition0(cluster: &BrokerCluster, node: u64, topic: &str) -> (i32, i32, usize, usize) {
    let md = metadata(cluster, node, topic).await;
    let p = &md.topics[0].partitions[0];
    (
        p.leader_id.0,
        p.leader_epoch,
        p.replica_nodes.len(),
        p.isr_nodes.len(),
    )
}

async fn wait_until<F, Fut, T>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every record value of the partition read from `node` from offset 0, with its offset.
async fn read_all(cluster: &BrokerCluster, node: u64, topic: &str) -> Vec<(i64, Vec<u8>)> {
    let mut client = Client::connect(cluster.addr(node).expect("node runs")).await;
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let bytes = client.fetch_now(topic, 0, offset).await;
        if bytes.is_empty() {
            return out;
        }
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let header = weir_protocol::record_batch::BatchHeader::parse(rest).unwrap();
            let len = header.total_len().unwrap();
            if !header.attributes.is_control() {
                for (i, record) in Records::new(&rest[..len]).unwrap().enumerate() {
                    let record = record.unwrap();
                    out.push((
                        header.base_offset + i as i64,
                        record.value.unwrap_or_default().to_vec(),
                    ));
                }
            }
            offset = header.next_offset();
            rest = &rest[len..];
        }
    }
}

/// Waits until node 1 lists all three brokers.
async fn formed(cluster: &BrokerCluster) {
    wait_until("the cluster forms", || async {
        let md = metadata(cluster, 1, "none-yet").await;
        (md.brokers.len() == 3).then_some(())
    })
    .await;
}

/// Creates topic `r`, one partition of 3 replicas, through `client`; returns its leader once
/// all three are in sync.
async fn replicated_topic(cluster: &BrokerCluster, client: &mut Client) -> i32 {
    let v = *versions(ApiKey::CreateTopics).end();
    let created = client.call(v, req::create_topics(&[("r", 1, 3)])).await;
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    wait_until("a leader with 3 in sync", || async {
        let (leader, _, _, isr) = partition0(cluster, 1, "r").await;
        (leader > 0 && isr == 3).then_some(leader)
    })
    .await
}

fn values(prefix: &str, n: usize) -> Bytes {
    let mut builder = weir_protocol::record_batch::BatchBuilder::new();
    for i in 0..n {
        let value = format!("{prefix}-{i}");
        builder.push(weir_protocol::record_batch::RecordInput {
            value: Some(value.as_bytes()),
            timestamp: 1_700_000_000_000,
            ..Default::default()
        });
    }
    builder.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_partition_keeps_every_acknowledged_record_across_a_leader_loss() {
    let mut cluster = BrokerCluster::builder().nodes(3).start().await;
    let mut one = Client::connect(cluster.addr(1).unwrap()).await;
    formed(&cluster).await;
    let v = *versions(ApiKey::CreateTopics).end();
    let created = one.call(v, req::create_topics(&[("r", 1, 3)])).await;
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    // (Metadata v7+ would carry the leader epoch; the broker advertises up to v6 here.)
    let leader = wait_until("partition 0 has a leader with 3 in sync", || async {
        let (leader, _, replicas, isr) = partition0(&cluster, 1, "r").await;
        (leader > 0 && replicas == 3 && isr == 3).then_some(leader)
    })
    .await;

    let mut to_leader = Client::connect(cluster.addr(leader as u64).unwrap()).await;
    let mut acked = Vec::new();
    for i in 0..20 {
        let base = to_leader
            .produce_ok("r", 0, values(&format!("a{i}"), 3))
            .await;
        acked.push(base);
    }
    assert!(
        acked.windows(2).all(|w| w[0] < w[1]),
        "offsets grow: {acked:?}"
    );
    // Followers refuse produce and fetch: only the leader serves the partition.
    let follower = (1..=3).find(|n| *n != leader as u64).unwrap();
    let mut to_follower = Client::connect(cluster.addr(follower).unwrap()).await;
    let pv = *versions(ApiKey::Produce).end();
    let refused = to_follower
        .call(pv, req::produce("r", 0, batch(1), -1))
        .await;
    assert_eq!(
        refused.responses[0].partition_responses[0].error_code,
        ErrorCode::NotLeaderOrFollower as i16
    );
    let before = read_all(&cluster, leader as u64, "r").await;
    assert_eq!(before.len(), 60, "{before:?}");

    // The leader's broker stops: another replica takes over with a higher epoch.
    cluster.stop(leader as u64).await;
    let survivor = (1..=3).find(|n| *n != leader as u64).unwrap();
    let new_leader = wait_until("another replica leads", || async {
        let (l, _, _, _) = partition0(&cluster, survivor, "r").await;
        (l > 0 && l != leader).then_some(l)
    })
    .await;
    let mut to_new = Client::connect(cluster.addr(new_leader as u64).unwrap()).await;
    for i in 0..10 {
        to_new.produce_ok("r", 0, values(&format!("b{i}"), 2)).await;
    }
    let after = read_all(&cluster, new_leader as u64, "r").await;
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "every acknowledged record at the same offset"
    );
    assert_eq!(after.len(), 80);

    // The old leader comes back as a follower and catches up: all three in sync again.
    cluster.restart(leader as u64).await;
    wait_until("the returning replica is in sync again", || async {
        let (l, _, _, isr) = partition0(&cluster, survivor, "r").await;
        (l > 0 && isr == 3).then_some(())
    })
    .await;
    cluster.shutdown().await;
}

/// Error code of one produce of `records` to `topic`-0 on `node` with `acks`.
async fn produce_code(cluster: &BrokerCluster, node: u64, records: Bytes, acks: i16) -> (i16, i64) {
    let mut client = Client::connect(cluster.addr(node).unwrap()).await;
    let v = *versions(ApiKey::Produce).end();
    let mut request = req::produce("r", 0, records, acks);
    request.timeout_ms = 1_500;
    let response = client.call(v, request).await;
    let p = &response.responses[0].partition_responses[0];
    if p.error_code != 0 {
        eprintln!("produce to {node}: {p:?}");
    }
    (p.error_code, p.base_offset)
}

async fn leader_seen_by(cluster: &BrokerCluster, node: u64, not: i32) -> i32 {
    wait_until("a leader other than the isolated one", || async {
        let (l, _, _, _) = partition0(cluster, node, "r").await;
        (l > 0 && l != not).then_some(l)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_acknowledges_nothing_and_its_unacknowledged_tail_is_dropped() {
    let mut cluster = BrokerCluster::builder().nodes(3).start().await;
    let mut one = Client::connect(cluster.addr(1).unwrap()).await;
    formed(&cluster).await;
    let old = replicated_topic(&cluster, &mut one).await;
    for i in 0..5 {
        let (code, _) = produce_code(&cluster, old as u64, values(&format!("a{i}"), 2), -1).await;
        assert_eq!(code, 0);
    }

    // Cut off from the others, the old leader still takes appends but can commit none:
    // acks=all is never answered with success (Kafka would fence it the same way).
    cluster.network().isolate(old as u64, &[1, 2, 3]);
    for i in 0..3 {
        let (code, _) =
            produce_code(&cluster, old as u64, values(&format!("lost{i}"), 1), -1).await;
        assert!(
            code == ErrorCode::RequestTimedOut as i16
                || code == ErrorCode::NotLeaderOrFollower as i16,
            "an isolated leader answered acks=all with {code}"
        );
    }
    let other = (1..=3).find(|n| *n != old as u64).unwrap();
    let new = leader_seen_by(&cluster, other, old).await;
    for i in 0..5 {
        let (code, _) = produce_code(&cluster, new as u64, values(&format!("b{i}"), 2), -1).await;
        assert_eq!(code, 0);
    }
    cluster.network().heal();
    wait_until("all three in sync after the heal", || async {
        let (l, _, _, isr) = partition0(&cluster, other, "r").await;
        (l == new && isr == 3).then_some(())
    })
    .await;
    // Make the old leader's replica lead: it must hold exactly the committed records.
    cluster.stop(new as u64).await;
    let third = (1..=3)
        .find(|n| *n != old as u64 && *n != new as u64)
        .unwrap();
    let next = leader_seen_by(&cluster, third, new).await;
    let read: Vec<String> = read_all(&cluster, next as u64, "r")
        .await
        .into_iter()
        .map(|(_, v)| String::from_utf8(v).unwrap())
        .collect();
    let expected: Vec<String> = (0..5)
        .flat_map(|i| (0..2).map(move |j| format!("a{i}-{j}")))
        .chain((0..5).flat_map(|i| (0..2).map(move |j| format!("b{i}-{j}"))))
        .collect();
    assert_eq!(
        read, expected,
        "no unacknowledged record survives, every acknowledged one does"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_sent_to_the_new_leader_is_recognised_as_a_duplicate() {
    let mut cluster = BrokerCluster::builder().nodes(3).start().await;
    let mut one = Client::connect(cluster.addr(1).unwrap()).await;
    formed(&cluster).await;
    let leader = replicated_topic(&cluster, &mut one).await;
    let iv = *versions(ApiKey::InitProducerId).end();
    let init = one
        .call(
            iv,
            kafka_protocol::messages::InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(kafka_protocol::messages::ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await;
    assert_eq!(init.error_code, 0);
    let pid = init.producer_id.0;
    let idempotent = |first_seq: i32, tag: &str| {
        let mut builder = weir_protocol::record_batch::BatchBuilder::new().with_producer(
            pid,
            init.producer_epoch,
            first_seq,
        );
        for i in 0..3 {
            let value = format!("{tag}-{i}");
            builder.push(weir_protocol::record_batch::RecordInput {
                value: Some(value.as_bytes()),
                timestamp: 1_700_000_000_000,
                ..Default::default()
            });
        }
        builder.build().unwrap()
    };
    let (code, first) = produce_code(&cluster, leader as u64, idempotent(0, "x"), -1).await;
    assert_eq!(code, 0);
    let (code, second) = produce_code(&cluster, leader as u64, idempotent(3, "y"), -1).await;
    assert_eq!(code, 0);
    cluster.stop(leader as u64).await;
    let other = (1..=3).find(|n| *n != leader as u64).unwrap();
    let new = leader_seen_by(&cluster, other, leader).await;
    // The producer did not hear the second answer and retries it at the new leader.
    let (code, again) = produce_code(&cluster, new as u64, idempotent(3, "y"), -1).await;
    assert_eq!(
        (code, again),
        (0, second),
        "answered with the original offsets"
    );
    let (code, third) = produce_code(&cluster, new as u64, idempotent(6, "z"), -1).await;
    assert_eq!(code, 0);
    assert!(third > second && second > first);
    let (code, _) = produce_code(&cluster, new as u64, idempotent(42, "gap"), -1).await;
    assert_eq!(code, ErrorCode::OutOfOrderSequenceNumber as i16);
    let read: Vec<String> = read_all(&cluster, new as u64, "r")
        .await
        .into_iter()
        .map(|(_, v)| String::from_utf8(v).unwrap())
        .collect();
    assert_eq!(
        read,
        [
            "x-0", "x-1", "x-2", "y-0", "y-1", "y-2", "z-0", "z-1", "z-2"
        ]
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_too_large_to_replicate_is_refused_whatever_the_topic_allows() {
    use kafka_protocol::messages::CreateTopicsRequest;
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    let cluster = BrokerCluster::builder().nodes(3).start().await;
    let mut one = Client::connect(cluster.addr(1).unwrap()).await;
    formed(&cluster).await;
    let v = *versions(ApiKey::CreateTopics).end();
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5_000)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(req::topic("r"))
                .with_num_partitions(1)
                .with_replication_factor(3)
                .with_configs(vec![
                    CreatableTopicConfig::default()
                        .with_name(kafka_protocol::protocol::StrBytes::from_static_str(
                            "max.message.bytes",
                        ))
                        .with_value(Some(kafka_protocol::protocol::StrBytes::from_static_str(
                            "16777216",
                        ))),
                ]),
        ]);
    let created = one.call(v, request).await;
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    let leader = wait_until("a leader with 3 in sync", || async {
        let (leader, _, _, isr) = partition0(&cluster, 1, "r").await;
        (leader > 0 && isr == 3).then_some(leader)
    })
    .await;
    let sized = |bytes: usize| {
        let mut builder = weir_protocol::record_batch::BatchBuilder::new();
        let value = vec![b'x'; bytes];
        builder.push(weir_protocol::record_batch::RecordInput {
            value: Some(&value),
            timestamp: 1_700_000_000_000,
            ..Default::default()
        });
        builder.build().unwrap()
    };
    let (code, _) = produce_code(&cluster, leader as u64, sized(3 << 20), -1).await;
    assert_eq!(code, ErrorCode::MessageTooLarge as i16);
    let (code, _) = produce_code(&cluster, leader as u64, sized(1 << 20), -1).await;
    assert_eq!(code, 0, "a batch of 1 MiB replicates");
    cluster.shutdown().await;
}

/// A leader cut off from the other replicas stops taking writes within an election timeout,
/// even `acks=1` ones that need nobody else: once no majority has accepted its leadership
/// lately it cannot know it still leads (another replica may have been elected), and an
/// `acks=1` record it took would be cut when it learns of the new term. Without the lease
/// (`ReplicaGroup::is_leader`) it answered them with success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_others_stops_taking_acks_1_writes() {
    let cluster = BrokerCluster::builder().nodes(3).start().await;
    let mut one = Client::connect(cluster.addr(1).unwrap()).await;
    formed(&cluster).await;
    let old = replicated_topic(&cluster, &mut one).await;
    let (code, _) = produce_code(&cluster, old as u64, values("before", 2), 1).await;
    assert_eq!(code, 0);
    cluster.network().isolate(old as u64, &[1, 2, 3]);
    // Twice the test cluster's 300 ms election timeout.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (code, _) = produce_code(&cluster, old as u64, values("cut-off", 1), 1).await;
    assert_eq!(
        code,
        ErrorCode::NotLeaderOrFollower as i16,
        "a leader cut off for two election timeouts took an acks=1 write"
    );
    cluster.network().heal();
    let other = (1..=3).find(|n| *n != old as u64).unwrap();
    wait_until("a leader with all three in sync after the heal", || async {
        let (l, _, _, isr) = partition0(&cluster, other, "r").await;
        (l > 0 && isr == 3).then_some(())
    })
    .await;
    cluster.shutdown().await;
}
