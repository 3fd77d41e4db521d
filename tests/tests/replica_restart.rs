//! A replica that restarts rejoins its partition as a follower of the leader elected while it
//! was away, and that leader keeps its epoch: on real broker processes, the leader killed
//! and restarted four times in a row. (A restarted Raft voter that stood for election before
//! the leader reached it would depose a healthy leader: openraft counts its election timeout
//! from the start-up, and this test shows no restart moves leadership.)

use std::time::{Duration, Instant};

use weir_protocol::api::ApiKey;
use weir_tests::cluster_procs::{ClusterOptions, ClusterProcs};
use weir_tests::{Client, req, versions};

const WAIT: Duration = Duration::from_secs(60);

/// (leader, leader epoch, in-sync replicas) of `topic`-0 as node `id` answers Metadata.
async fn partition0(cluster: &ClusterProcs, id: u64, topic: &str) -> Option<(i32, i32, usize)> {
    let mut client = tokio::time::timeout(
        Duration::from_secs(5),
        Client::connect(cluster.kafka_addr(id)),
    )
    .await
    .ok()?;
    let v = *versions(ApiKey::Metadata).end();
    let md = tokio::time::timeout(
        Duration::from_secs(5),
        client.call(v, req::metadata(v, Some(&[topic]))),
    )
    .await
    .ok()?;
    let p = md.topics.first()?.partitions.first()?;
    Some((p.leader_id.0, p.leader_epoch, p.isr_nodes.len()))
}

/// Waits until node `id` names a leader with all three replicas in sync.
async fn in_sync(cluster: &ClusterProcs, id: u64, topic: &str) -> (i32, i32) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some((leader, epoch, 3)) = partition0(cluster, id, topic).await {
            if leader > 0 {
                return (leader, epoch);
            }
        }
        assert!(
            Instant::now() < deadline,
            "{topic}-0 never had 3 replicas in sync on node {id}\n{}",
            cluster.report()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_replica_does_not_depose_the_leader() {
    let root = tempfile::tempdir().expect("temporary directory");
    let mut cluster =
        tokio::task::block_in_place(|| ClusterProcs::start(root.path(), ClusterOptions::new(3)));
    let deadline = Instant::now() + WAIT;
    loop {
        let mut client = Client::connect(cluster.kafka_addr(1)).await;
        let v = *versions(ApiKey::Metadata).end();
        let md = client.call(v, req::metadata(v, Some(&[]))).await;
        if md.brokers.len() == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster did not form\n{}",
            cluster.report()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut client = Client::connect(cluster.kafka_addr(1)).await;
    let v = *versions(ApiKey::CreateTopics).end();
    let created = client.call(v, req::create_topics(&[("r", 1, 3)])).await;
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    let (mut leader, _) = in_sync(&cluster, 1, "r").await;
    for round in 0..4 {
        // The leader is killed: another replica takes over at a new epoch.
        let old = u64::try_from(leader).expect("a broker id");
        tokio::task::block_in_place(|| cluster.kill9(old));
        let survivor = cluster.ids().find(|id| *id != old).expect("three nodes");
        let deadline = Instant::now() + WAIT;
        let (new, epoch) = loop {
            if let Some((l, e, _)) = partition0(&cluster, survivor, "r").await {
                if l > 0 && l != leader {
                    break (l, e);
                }
            }
            assert!(
                Instant::now() < deadline,
                "no new leader\n{}",
                cluster.report()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        // The old leader restarts and follows: the new leader keeps its epoch.
        tokio::task::block_in_place(|| cluster.restart(old));
        in_sync(&cluster, u64::try_from(new).expect("a broker id"), "r").await;
        // Longer than a follower's election timeout with the default settings (the leader
        // lease plus at most twice the 500 ms election timeout): a deposed leader would be
        // gone by now.
        tokio::time::sleep(Duration::from_secs(3)).await;
        for id in cluster.ids().collect::<Vec<_>>() {
            assert_eq!(
                in_sync(&cluster, id, "r").await,
                (new, epoch),
                "after restarting node {old} (round {round}), node {id} names another leader \
                 or epoch"
            );
        }
        leader = new;
    }
    assert!(tokio::task::block_in_place(|| cluster.stop_all()));
}
