//! Whole brokers as a 3-node cluster in one process (`weir_broker::testing::BrokerCluster`,
//! cluster traffic on an in-process network): Kafka's cluster model as a client sees it from
//! every node, partitions spread and served only by their leader, admin changes through any
//! node, group coordinators, cluster-wide producer ids, a cut-off broker's partitions
//! leaderless while the rest serve, and a topic deleted through one node gone from all.

use std::time::{Duration, Instant};

use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, GroupId, InitProducerIdRequest, JoinGroupRequest,
    MetadataResponse, OffsetForLeaderEpochRequest,
};
use kafka_protocol::protocol::StrBytes;
use weir_broker::testing::BrokerCluster;
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_tests::{Client, batch, req, versions};

const NOT_LEADER: i16 = ErrorCode::NotLeaderOrFollower as i16;

/// OffsetForLeaderEpoch for one partition of `topic`: `(error, epoch, end offset)`.
async fn epoch_end(
    client: &mut Client,
    topic: &str,
    partition: i32,
    current: i32,
    epoch: i32,
) -> (i16, i32, i64) {
    let request = OffsetForLeaderEpochRequest::default().with_topics(vec![
        OffsetForLeaderTopic::default()
            .with_topic(req::topic(topic))
            .with_partitions(vec![
                OffsetForLeaderPartition::default()
                    .with_partition(partition)
                    .with_current_leader_epoch(current)
                    .with_leader_epoch(epoch),
            ]),
    ]);
    let v = *versions(ApiKey::OffsetForLeaderEpoch).end();
    let answer = client.call(v, request).await;
    let p = &answer.topics[0].partitions[0];
    (p.error_code, p.leader_epoch, p.end_offset)
}

async fn metadata(cluster: &BrokerCluster, node: u64, topics: Option<&[&str]>) -> MetadataResponse {
    let mut client = Client::connect(cluster.addr(node).expect("node runs")).await;
    let v = *versions(ApiKey::Metadata).end();
    client.call(v, req::metadata(v, topics)).await
}

/// Leaders of `topic`'s partitions as node `node` reports them (-1: none).
async fn leaders(cluster: &BrokerCluster, node: u64, topic: &str) -> Vec<i32> {
    let md = metadata(cluster, node, Some(&[topic])).await;
    let mut partitions: Vec<_> = md.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.leader_id.0))
        .collect();
    partitions.sort_unstable();
    partitions.into_iter().map(|(_, l)| l).collect()
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn formed(cluster: &BrokerCluster) {
    for node in 1..=3 {
        wait_until(
            "every node lists three live brokers and a controller",
            || async {
                let md = metadata(cluster, node, None).await;
                md.brokers.len() == 3 && md.controller_id.0 > 0
            },
        )
        .await;
    }
    // The cluster creates `__consumer_offsets` once formed; the tests start once its
    // partitions have leaders, so that burst of work is behind them.
    for node in 1..=3 {
        wait_until("the offsets topic has leaders everywhere", || async {
            let md = metadata(cluster, node, Some(&["__consumer_offsets"])).await;
            md.topics[0].error_code == 0
                && !md.topics[0].partitions.is_empty()
                && md.topics[0].partitions.iter().all(|p| p.leader_id.0 > 0)
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_serves_kafkas_cluster_model() {
    let cluster = BrokerCluster::builder().nodes(3).start().await;
    formed(&cluster).await;
    let mut one = Client::connect(cluster.addr(1).unwrap()).await;
    one.create_topic("spread", 6).await;
    let placed = leaders(&cluster, 1, "spread").await;
    let mut distinct = placed.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct, vec![1, 2, 3], "leaders {placed:?}");
    for node in [2, 3] {
        assert_eq!(
            leaders(&cluster, node, "spread").await,
            placed,
            "node {node}"
        );
    }
    // Each partition is served by its leader only, once that broker has opened its log.
    let v = *versions(ApiKey::Produce).end();
    for (partition, leader) in placed.iter().enumerate() {
        let partition = i32::try_from(partition).unwrap();
        let leader = u64::try_from(*leader).unwrap();
        let other = if leader == 1 { 2 } else { 1 };
        let mut wrong = Client::connect(cluster.addr(other).unwrap()).await;
        let refused = wrong
            .call(v, req::produce("spread", partition, batch(1), -1))
            .await;
        assert_eq!(
            refused.responses[0].partition_responses[0].error_code,
            NOT_LEADER
        );
        let lv = *versions(ApiKey::ListOffsets).end();
        let refused = wrong
            .call(lv, req::list_offsets("spread", partition, -1))
            .await;
        assert_eq!(refused.topics[0].partitions[0].error_code, NOT_LEADER);
        assert_eq!(
            epoch_end(&mut wrong, "spread", partition, -1, 0).await,
            (NOT_LEADER, -1, -1)
        );
        let mut right = Client::connect(cluster.addr(leader).unwrap()).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = right
                .call(v, req::produce("spread", partition, batch(2), -1))
                .await;
            let code = r.responses[0].partition_responses[0].error_code;
            if code == 0 {
                break;
            }
            // Only until the leader's reconciler has opened the new partition's log.
            assert_eq!(code, NOT_LEADER, "produce to the leader of {partition}");
            assert!(
                Instant::now() < deadline,
                "the leader never opened {partition}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(right.list_offset("spread", partition, -1).await, 2);
        // The leader answers from its log's epoch history, checking the metadata's epoch.
        assert_eq!(
            epoch_end(&mut right, "spread", partition, 0, 0).await,
            (0, 0, 2)
        );
        assert_eq!(
            epoch_end(&mut right, "spread", partition, 1, 0).await.0,
            ErrorCode::UnknownLeaderEpoch as i16
        );
    }
    // Metadata v7+ carries each partition's leader epoch from the replicated metadata (0 for
    // a partition with one replica: its leadership never moves).
    let md = metadata(&cluster, 2, Some(&["spread"])).await;
    assert!(md.topics[0].partitions.iter().all(|p| p.leader_epoch == 0));
    // More replicas than live brokers (or than 5) cannot be placed.
    let ct = *versions(ApiKey::CreateTopics).end();
    let too_many = one
        .call(ct, req::create_topics(&[("rf4", 1, 4), ("rf6", 1, 6)]))
        .await;
    for topic in &too_many.topics {
        assert_eq!(
            topic.error_code,
            ErrorCode::InvalidReplicationFactor as i16,
            "{topic:?}"
        );
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_have_one_coordinator_and_producer_ids_are_cluster_wide() {
    let cluster = BrokerCluster::builder().nodes(3).start().await;
    formed(&cluster).await;
    let fc = *versions(ApiKey::FindCoordinator).end();
    let mut coordinators = Vec::new();
    for node in 1..=3 {
        let mut c = Client::connect(cluster.addr(node).unwrap()).await;
        // COORDINATOR_NOT_AVAILABLE until the cluster has made `__consumer_offsets` and its
        // partitions have leaders.
        let deadline = Instant::now() + Duration::from_secs(30);
        let answer = loop {
            let answer = c
                .call(
                    fc,
                    FindCoordinatorRequest::default()
                        .with_key(StrBytes::from_static_str("orders-app")),
                )
                .await;
            if answer.error_code == 0 || Instant::now() > deadline {
                break answer;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(answer.error_code, 0, "{answer:?}");
        coordinators.push(answer.node_id);
    }
    assert!(
        coordinators.windows(2).all(|w| w[0] == w[1]),
        "{coordinators:?}"
    );
    let coordinator = u64::try_from(coordinators[0].0).unwrap();
    let other = if coordinator == 1 { 2 } else { 1 };
    let jg = *versions(ApiKey::JoinGroup).end();
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("orders-app")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"));
    let mut elsewhere = Client::connect(cluster.addr(other).unwrap()).await;
    let refused = elsewhere.call(jg, join).await;
    assert_eq!(refused.error_code, ErrorCode::NotCoordinator as i16);
    // Producer ids from different brokers never collide.
    let ip = *versions(ApiKey::InitProducerId).end();
    let mut ids = Vec::new();
    for node in 1..=3 {
        let mut c = Client::connect(cluster.addr(node).unwrap()).await;
        for _ in 0..3 {
            let answer = c
                .call(
                    ip,
                    InitProducerIdRequest::default()
                        .with_transactional_id(None)
                        .with_transaction_timeout_ms(60_000),
                )
                .await;
            assert_eq!(answer.error_code, 0, "{answer:?}");
            ids.push(answer.producer_id.0);
        }
    }
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "producer ids {ids:?}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_broker_loses_only_its_own_partitions_until_it_returns() {
    let cluster = BrokerCluster::builder().nodes(3).start().await;
    formed(&cluster).await;
    let mut one = Client::connect(cluster.addr(1).unwrap()).await;
    one.create_topic("cut", 6).await;
    let placed = leaders(&cluster, 1, "cut").await;
    // Cut off a broker that is not the controller, so the other two keep their quorum.
    let controller = metadata(&cluster, 1, None).await.controller_id.0;
    let victim = (1..=3)
        .find(|n| i32::try_from(*n).unwrap() != controller)
        .unwrap();
    let observer = (1..=3).find(|n| *n != victim).unwrap();
    cluster.network().isolate(victim, &[1, 2, 3]);
    let victim_id = i32::try_from(victim).unwrap();
    let expected: Vec<i32> = placed
        .iter()
        .map(|l| if *l == victim_id { -1 } else { *l })
        .collect();
    wait_until("the cut-off broker's partitions have no leader", || async {
        leaders(&cluster, observer, "cut").await == expected
    })
    .await;
    let md = metadata(&cluster, observer, Some(&["cut"])).await;
    for p in &md.topics[0].partitions {
        let code = if p.leader_id.0 == -1 {
            ErrorCode::LeaderNotAvailable as i16
        } else {
            0
        };
        assert_eq!(p.error_code, code, "{p:?}");
    }
    assert!(!md.brokers.iter().any(|b| b.node_id == BrokerId(victim_id)));
    cluster.network().heal();
    wait_until("the broker is back with its partitions", || async {
        leaders(&cluster, observer, "cut").await == placed
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_deleted_through_one_node_is_gone_everywhere_and_comes_back_empty() {
    let cluster = BrokerCluster::builder().nodes(3).start().await;
    formed(&cluster).await;
    let mut two = Client::connect(cluster.addr(2).unwrap()).await;
    two.create_topic("doomed", 3).await;
    let placed = leaders(&cluster, 2, "doomed").await;
    let leader = u64::try_from(placed[0]).unwrap();
    let mut at_leader = Client::connect(cluster.addr(leader).unwrap()).await;
    let pv = *versions(ApiKey::Produce).end();
    let deadline = Instant::now() + Duration::from_secs(30);
    while at_leader
        .call(pv, req::produce("doomed", 0, batch(5), -1))
        .await
        .responses[0]
        .partition_responses[0]
        .error_code
        != 0
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dv = *versions(ApiKey::DeleteTopics).end();
    let deleted = two.call(dv, req::delete_topics(&["doomed"])).await;
    assert_eq!(deleted.responses[0].error_code, 0, "{deleted:?}");
    for node in 1..=3 {
        wait_until("the deleted topic is gone from every node", || async {
            let md = metadata(&cluster, node, None).await;
            !md.topics
                .iter()
                .any(|t| t.name.as_ref().is_some_and(|n| &*n.0 == "doomed"))
        })
        .await;
    }
    two.create_topic("doomed", 3).await;
    let leader = u64::try_from(leaders(&cluster, 2, "doomed").await[0]).unwrap();
    let mut at_leader = Client::connect(cluster.addr(leader).unwrap()).await;
    let lv = *versions(ApiKey::ListOffsets).end();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = at_leader.call(lv, req::list_offsets("doomed", 0, -1)).await;
        let p = &r.topics[0].partitions[0];
        if p.error_code == 0 {
            assert_eq!(p.offset, 0, "the recreated topic inherited old records");
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.shutdown().await;
}
