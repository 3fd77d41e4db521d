//! The metadata quorum in process: elections, forwarding, failover, refusal without a
//! majority, restart and catch-up, and no divergence of applied histories.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use weir_broker::cluster::testing::QuorumCluster;
use weir_broker::cluster::{Command, ProposeError, Reply};

fn create(name: &str, node: u64) -> Command {
    Command::CreateTopic {
        name: name.into(),
        id: uuid::Uuid::new_v4(),
        assignment: vec![vec![node]],
        configs: BTreeMap::new(),
    }
}

/// Every running node's applied digests agree wherever two of them hold the same index.
fn assert_no_divergence(cluster: &QuorumCluster) {
    let mut seen: BTreeMap<u64, (u64, String)> = BTreeMap::new();
    for id in cluster.running() {
        for (index, digest) in cluster.node(id).status().digests {
            if let Some((other, theirs)) = seen.get(&index) {
                assert_eq!(
                    theirs, &digest,
                    "index {index}: node {other} and node {id} differ"
                );
            } else {
                seen.insert(index, (id, digest));
            }
        }
    }
}

async fn wait_registered(cluster: &QuorumCluster, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let leader = cluster.wait_for_leader().await;
    while cluster.node(leader).state().live_brokers().count() < count {
        assert!(Instant::now() < deadline, "brokers did not register");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_proposed_anywhere_is_applied_everywhere() {
    let cluster = QuorumCluster::builder().nodes(3).start().await;
    let leader = cluster.wait_for_leader().await;
    wait_registered(&cluster, 3).await;
    let follower = cluster
        .running()
        .into_iter()
        .find(|n| *n != leader)
        .unwrap();
    let reply = cluster
        .node(follower)
        .propose(create("t", leader))
        .await
        .unwrap();
    assert_eq!(reply, Reply::Done);
    assert!(
        cluster.node(follower).state().topics.contains_key("t"),
        "visible on the proposer at once"
    );
    let again = cluster
        .node(leader)
        .propose(create("t", leader))
        .await
        .unwrap();
    assert!(matches!(again, Reply::Refused(_)), "{again:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    for id in cluster.running() {
        while !cluster.node(id).state().topics.contains_key("t") {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(cluster.node(id).state().cluster_id.is_some());
    }
    assert_no_divergence(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_fails_over_and_rejoins() {
    let mut cluster = QuorumCluster::builder().nodes(3).start().await;
    let first = cluster.wait_for_leader().await;
    wait_registered(&cluster, 3).await;
    cluster
        .node(first)
        .propose(create("before", first))
        .await
        .unwrap();
    cluster.stop(first).await;
    let started = Instant::now();
    let second = cluster.wait_for_leader().await;
    assert_ne!(first, second);
    let survivor = cluster.running()[0];
    assert_eq!(
        cluster
            .node(survivor)
            .propose(create("after", second))
            .await
            .unwrap(),
        Reply::Done
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failover took {:?}",
        started.elapsed()
    );
    // The old leader's session expires: it is fenced.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cluster.node(second).state().brokers[&first].fenced {
        assert!(
            Instant::now() < deadline,
            "the stopped broker was never fenced"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.restart(first).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = cluster.node(first).state();
        if state.topics.contains_key("after") && !state.brokers[&first].fenced {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted node did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_no_divergence(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_majority_changes_are_refused_not_hung() {
    let cluster = QuorumCluster::builder().nodes(3).start().await;
    cluster.wait_for_leader().await;
    wait_registered(&cluster, 3).await;
    let lonely = cluster.running()[2];
    cluster.network().isolate(lonely, &cluster.running());
    let started = Instant::now();
    let refused = cluster.node(lonely).propose(create("x", lonely)).await;
    assert!(
        matches!(
            refused,
            Err(ProposeError::NoQuorum(_) | ProposeError::Uncertain(_))
        ),
        "{refused:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "took {:?}",
        started.elapsed()
    );
    cluster.network().heal();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Reply::Done) = cluster.node(lonely).propose(create("y", lonely)).await {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery after healing");
    }
    assert_no_divergence(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_snapshotted_and_purged_and_a_wiped_node_catches_up_from_the_snapshot() {
    let mut cluster = QuorumCluster::builder().nodes(3).start().await;
    let leader = cluster.wait_for_leader().await;
    wait_registered(&cluster, 3).await;
    // More entries than one snapshot interval (SNAPSHOT_EVERY).
    let entries = weir_broker::cluster::store::SNAPSHOT_EVERY + 100;
    for _ in 0..entries {
        let reply = cluster
            .node(leader)
            .propose(Command::AllocateProducerIds {
                node: leader,
                count: 1,
            })
            .await
            .unwrap();
        assert!(matches!(reply, Reply::ProducerIds { .. }), "{reply:?}");
    }
    cluster
        .node(leader)
        .propose(create("late", leader))
        .await
        .unwrap();
    // The log on disk is bounded: the snapshot covers what was purged.
    let follower = cluster
        .running()
        .into_iter()
        .find(|n| *n != leader)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log_bytes = std::fs::metadata(cluster.dir(leader).join("raft-log"))
            .map(|m| m.len())
            .unwrap_or(0);
        let snapshot = cluster.dir(leader).join("snapshot").exists();
        // 1,100 entries of about 50 bytes each (55 KB) without purging; a snapshot every
        // 1,000 and 100 kept behind it leave about 200 (10 KB).
        if snapshot && log_bytes < 20_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no snapshot and purge: log {log_bytes} bytes, snapshot {snapshot}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.wipe_and_restart(follower).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = cluster.node(follower).state();
        if state.topics.contains_key("late") {
            assert_eq!(
                state,
                cluster.node(leader).state(),
                "the caught-up state equals the leader's"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the wiped node did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_no_divergence(&cluster);
}
