//! A seeded, replayable fault campaign on a real 3-node cluster (every directed link through
//! its own fault proxy): leader isolated, one-way partitions, delays, flapping links, a
//! paused leader (SIGSTOP past the election timeout, then SIGCONT), kill -9 and restart,
//! a follower wiped and restarted. During each fault a topic is created through a random
//! node; after each, the links are healed and the test checks that:
//! - the nodes agree on a leader again and apply the same history (every node's applied
//!   digests are a prefix of the others': the metadata log never diverges);
//! - every topic whose creation was acknowledged is known to every node (no acknowledged
//!   metadata change lost), and nothing was created that no one asked for.
//!
//! `WEIR_CLUSTER_FAULTS` sets the number of faults (default 12), `WEIR_CLUSTER_SEED` the seed
//! (default: the time; printed, with each fault, for replay).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use weir_client::random::{JitterSource, SplitMix64};
use weir_client::{Admin, ClientConfig, NewTopic};
use weir_protocol::api::ApiKey;
use weir_tests::cluster_procs::{ClusterOptions, ClusterProcs};
use weir_tests::fault_proxy::{Direction, Fault};
use weir_tests::{Client, req, versions};

const NODES: u64 = 3;
const SETTLE: Duration = Duration::from_secs(60);

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The leader every node agrees on (all up), once all have applied the same index.
fn settled(cluster: &ClusterProcs) -> Option<u64> {
    let statuses = cluster.raft_statuses().ok()?;
    let up = (1..=NODES).filter(|id| cluster.is_up(*id)).count();
    let first = statuses.first()?;
    let leader = first.leader?;
    let agreed = statuses.len() == up
        && statuses
            .iter()
            .all(|s| s.leader == Some(leader) && s.last_applied == first.last_applied);
    agreed.then_some(leader)
}

fn wait_settled(cluster: &ClusterProcs, what: &str) -> u64 {
    let deadline = Instant::now() + SETTLE;
    loop {
        if let Some(leader) = settled(cluster) {
            return leader;
        }
        assert!(
            Instant::now() < deadline,
            "not settled after {what}\n{}",
            cluster.report()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn leader_now(cluster: &ClusterProcs) -> Option<u64> {
    cluster
        .raft_statuses()
        .ok()?
        .into_iter()
        .filter_map(|s| s.leader)
        .next()
}

/// Topics as node `addr` lists them.
async fn topics(addr: SocketAddr) -> BTreeSet<String> {
    let mut client = Client::connect(addr).await;
    let v = *versions(ApiKey::Metadata).end();
    let md = client.call(v, req::metadata(v, None)).await;
    md.topics
        .into_iter()
        // The cluster's own `__consumer_offsets`, which nobody asks for.
        .filter(|t| !t.is_internal)
        .filter_map(|t| t.name.map(|n| n.0.to_string()))
        .collect()
}

/// CreateTopics through `addr` with weir-client's admin (its own timeouts, errors not
/// panics), bounded; true when acknowledged without error.
async fn try_create(addr: SocketAddr, name: &str) -> bool {
    let admin =
        Admin::new(ClientConfig::new([addr.to_string()]).request_timeout(Duration::from_secs(10)));
    let wanted = [NewTopic::new(name, 1)];
    let attempt = admin.create_topics(&wanted);
    matches!(
        tokio::time::timeout(Duration::from_secs(15), attempt).await,
        Ok(Ok(()))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_faults_never_diverge_nor_lose_an_acknowledged_change() {
    let seed = env_u64("WEIR_CLUSTER_SEED").unwrap_or_else(|| {
        u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap()
    });
    let faults = env_u64("WEIR_CLUSTER_FAULTS").unwrap_or(12);
    eprintln!(
        "cluster fault campaign: seed {seed}, {faults} faults (WEIR_CLUSTER_SEED={seed} replays it)"
    );
    let root = tempfile::tempdir().unwrap();
    let options = ClusterOptions::new(3)
        .proxied(seed)
        .arg("--election-timeout-ms")
        .arg("500")
        .arg("--broker-session-timeout-ms")
        .arg("3000")
        .arg("--broker-heartbeat-interval-ms")
        .arg("300");
    let mut cluster = tokio::task::block_in_place(|| ClusterProcs::start(root.path(), options));
    let mut rng = SplitMix64::new(seed);
    let mut acknowledged = BTreeSet::new();
    let mut asked = BTreeSet::new();
    tokio::task::block_in_place(|| wait_settled(&cluster, "start"));
    for n in 0..faults {
        let leader = tokio::task::block_in_place(|| leader_now(&cluster)).unwrap_or(1);
        let other = |r: u64| 1 + (leader + r % (NODES - 1)) % NODES;
        let pick = rng.next_u64();
        let victim = other(rng.next_u64());
        let kind = pick % 7;
        eprintln!("fault {n}: kind {kind}, leader {leader}, other {victim}");
        // Start the fault.
        tokio::task::block_in_place(|| match kind {
            0 => cluster.links().isolate(leader),
            1 => cluster.links().partition_one_way(leader, victim),
            2 => {
                for from in 1..=NODES {
                    for to in (1..=NODES).filter(|t| *t != from) {
                        cluster.proxy(from, to).set(Fault::Delay(
                            Duration::from_millis(5)..=Duration::from_millis(80),
                        ));
                    }
                }
            }
            3 => {
                let flap = Fault::Flapping {
                    healthy: Duration::from_millis(100)..=Duration::from_millis(400),
                    partitioned: Duration::from_millis(100)..=Duration::from_millis(900),
                };
                cluster.proxy(leader, victim).set(flap.clone());
                cluster.proxy(victim, leader).set(flap);
            }
            4 => cluster.pause(leader),
            5 => cluster.kill9(victim),
            _ => cluster
                .proxy(victim, leader)
                .set(Fault::Blackhole(Direction::ToUpstream)),
        });
        // A metadata change while it lasts, through a node that is up.
        let through = (1..=NODES)
            .map(|i| 1 + (victim + i) % NODES)
            .find(|id| cluster.is_up(*id))
            .unwrap();
        let name = format!("fault-{n}");
        asked.insert(name.clone());
        if try_create(cluster.kafka_addr(through), &name).await {
            acknowledged.insert(name);
        }
        tokio::time::sleep(Duration::from_millis(200 + rng.next_u64() % 1500)).await;
        // End it.
        tokio::task::block_in_place(|| {
            cluster.links().heal_all();
            match kind {
                4 => cluster.resume(leader),
                5 => {
                    if rng.next_u64() % 2 == 0 {
                        cluster.restart(victim);
                    } else {
                        // Wiped: it must rejoin as an empty voter and catch up.
                        cluster.wipe_and_restart(victim);
                    }
                }
                _ => {}
            }
            wait_settled(&cluster, &format!("fault {n}"));
            let report = cluster
                .check_history()
                .unwrap_or_else(|e| panic!("{e}\n{}", cluster.report()));
            assert!(
                report.is_consistent(),
                "fault {n} (seed {seed}): {report}\n{}",
                cluster.report()
            );
        });
    }
    // Every acknowledged creation is known everywhere; nothing unasked exists.
    for id in 1..=NODES {
        let listed = topics(cluster.kafka_addr(id)).await;
        for name in &acknowledged {
            assert!(
                listed.contains(name),
                "node {id} lost acknowledged topic {name} (seed {seed})"
            );
        }
        for name in &listed {
            assert!(
                asked.contains(name),
                "node {id} has {name}, which nobody created (seed {seed})"
            );
        }
    }
    eprintln!(
        "{} of {faults} creations acknowledged during faults; no divergence, none lost",
        acknowledged.len()
    );
    tokio::task::block_in_place(|| cluster.stop_all());
}
