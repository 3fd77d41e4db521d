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
    wait_until("the cluster forms", || async {
        let md = metadata(&cluster, 1, "none-yet").await;
        (md.brokers.len() == 3).then_some(())
    })
    .await;
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
