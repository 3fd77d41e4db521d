//! ClusterProcs on a real three-node cluster with every link proxied: a leader is elected,
//! an isolated leader is replaced, a paused one too, a follower killed and restarted and one
//! wiped rejoin, and the nodes' applied metadata stays one history throughout.
//!
//! Needs a broker with the cluster flags (`--node-id`, `--cluster-listen`, `--peers`).

use std::time::{Duration, Instant};

use weir_tests::cluster_procs::{ClusterOptions, ClusterProcs};

/// Elections take a few seconds on a loaded two-core machine; this is far beyond.
const ELECTION_WAIT: Duration = Duration::from_secs(30);

/// The leader every node that is up (among `among`) agrees on, once there is one.
fn agreed_leader(cluster: &ClusterProcs, among: &[u64], wait: Duration) -> Option<u64> {
    let deadline = Instant::now() + wait;
    loop {
        let leaders: Vec<Option<u64>> = among
            .iter()
            .filter(|&&id| cluster.is_up(id))
            .filter_map(|&id| cluster.raft_status(id).ok())
            .map(|status| status.leader)
            .collect();
        if let Some(&Some(first)) = leaders.first() {
            if leaders.len() == among.iter().filter(|&&id| cluster.is_up(id)).count()
                && leaders.iter().all(|&l| l == Some(first))
                && among.contains(&first)
            {
                return Some(first);
            }
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_one_history(cluster: &ClusterProcs) {
    let report = cluster
        .check_history()
        .unwrap_or_else(|err| panic!("{err}\n{}", cluster.links().report()));
    assert!(report.is_consistent(), "{report}\n{}", cluster.report());
}

#[test]
fn cluster_procs_live_leader_isolated_paused_killed_and_wiped_keeps_one_history() {
    let seed = 7;
    eprintln!("cluster links seed {seed}");
    let root = tempfile::tempdir().unwrap();
    let mut cluster = ClusterProcs::start(root.path(), ClusterOptions::new(3).proxied(seed));
    let all: Vec<u64> = cluster.ids().collect();
    let leader = agreed_leader(&cluster, &all, ELECTION_WAIT)
        .unwrap_or_else(|| panic!("no leader\n{}", cluster.report()));
    assert_one_history(&cluster);

    // An isolated leader is replaced by the two others.
    cluster.links().isolate(leader);
    let rest: Vec<u64> = all.iter().copied().filter(|&id| id != leader).collect();
    let replacement = agreed_leader(&cluster, &rest, ELECTION_WAIT)
        .unwrap_or_else(|| panic!("no new leader\n{}", cluster.links().report()));
    assert_ne!(replacement, leader);
    cluster.links().heal_all();
    let leader = agreed_leader(&cluster, &all, ELECTION_WAIT).expect("a leader after healing");
    assert_one_history(&cluster);

    // A follower killed and restarted; then the leader paused and replaced.
    let follower = rest.iter().copied().find(|&id| id != leader).unwrap();
    cluster.kill9(follower);
    cluster.restart(follower);
    cluster.pause(leader);
    let others: Vec<u64> = all.iter().copied().filter(|&id| id != leader).collect();
    agreed_leader(&cluster, &others, ELECTION_WAIT)
        .unwrap_or_else(|| panic!("no leader with {leader} paused\n{}", cluster.report()));
    cluster.resume(leader);

    // A node that lost its disk rejoins under its id.
    let wiped = others.iter().copied().find(|&id| id != follower).unwrap();
    cluster.wipe_and_restart(wiped);
    agreed_leader(&cluster, &all, ELECTION_WAIT).expect("a leader at the end");
    assert_one_history(&cluster);
    assert!(cluster.stop_all(), "{}", cluster.report());
}
