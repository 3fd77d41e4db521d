//! The partition fault campaign: a seeded, replayable run of faults on a real 3-node cluster
//! (every cluster link through its own fault proxy) while idempotent `acks=all` producers
//! write unique values to a topic of `WEIR_CAMPAIGN_RF` replicas (default 3) and a group
//! consumer reads and commits. Faults: kill -9 of a random node and of a partition's leader,
//! SIGSTOP of a leader past the election timeout then SIGCONT, the leader isolated, one-way
//! loss from it, a flapping link, a node wiped and restarted (only with 3 or more replicas:
//! with one, a wiped node's partitions are gone by definition), and the whole cluster killed
//! and restarted. Each fault is healed before the next. In the end every partition is read
//! from every broker that serves it and by a consumer in assign mode, and
//! `weir_tests::jepsen::check` must find no anomaly (see `docs/reliability.md`, "Partition
//! fault campaign").
//!
//! With one replica a killed node's partitions are unavailable until it restarts: sends may
//! then fail or be indeterminate, which the checker allows; an acknowledged record must
//! still never be lost, no offset may hold two values, no value appear twice.
//!
//! `WEIR_PARTITION_FAULTS` (default 40), `WEIR_PARTITION_SEED` (default: the time; printed),
//! `WEIR_PARTITION_HISTORY` (a file to write the history to, as JSON lines),
//! `WEIR_PARTITION_BROKER_ARGS` (further broker flags, whitespace-separated),
//! `WEIR_PARTITION_DELIVERY_TIMEOUT_MS` (the producers' delivery timeout, default 6,000: a
//! shorter one turns sends into indeterminate ones while a node is away).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use weir_client::random::{JitterSource, SplitMix64};
use weir_tests::cluster_procs::{ClusterOptions, ClusterProcs};
use weir_tests::fault_proxy::Fault;
use weir_tests::jepsen::{self, History, Op, Outcome, Report};
use weir_tests::workload::{
    Recorder, Troubles, Workload, campaign_rf, consume_group, coordinator, create_topic, leaders,
    live_brokers, observe_commits, poll_broker, produce, read_assigned, read_each_broker,
    wait_in_sync, wait_led,
};

const NODES: u64 = 3;
const PARTITIONS: i32 = 4;
/// Values a second per producer (two producers).
const RATE: u32 = 150;
/// Longest the cluster may take to be whole again after a fault is healed.
const SETTLE: Duration = Duration::from_secs(60);

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}"))
    })
}

fn seed() -> u64 {
    env_u64("WEIR_PARTITION_SEED").unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        u64::try_from(now.as_millis()).unwrap_or(1)
    })
}

/// Fast failure detection, so a fault costs seconds; and any flags the caller adds.
fn options(links_seed: Option<u64>) -> ClusterOptions {
    let mut options = ClusterOptions::new(3);
    if let Some(seed) = links_seed {
        options = options.proxied(seed);
    }
    for arg in [
        "--election-timeout-ms",
        "500",
        "--broker-session-timeout-ms",
        "3000",
        "--broker-heartbeat-interval-ms",
        "300",
        "--group-initial-rebalance-delay-ms",
        "0",
    ] {
        options = options.arg(arg);
    }
    if let Ok(extra) = std::env::var("WEIR_PARTITION_BROKER_ARGS") {
        for arg in extra.split_whitespace() {
            options = options.arg(arg);
        }
    }
    options
}

/// The metadata leader every node agrees on, once all nodes are up and applied the same.
fn settled(cluster: &ClusterProcs) -> Option<u64> {
    let statuses = cluster.raft_statuses().ok()?;
    let first = statuses.first()?;
    let leader = first.leader?;
    let agreed = statuses.len() == usize::try_from(NODES).unwrap_or(0)
        && statuses
            .iter()
            .all(|s| s.leader == Some(leader) && s.last_applied == first.last_applied);
    agreed.then_some(leader)
}

/// Waits until the metadata quorum agrees, every broker is live and every partition led by
/// one of them; panics with `what`, the seed and the cluster's logs otherwise.
async fn wait_whole(cluster: &ClusterProcs, w: &Workload, seed: u64, what: &str) {
    let deadline = Instant::now() + SETTLE;
    let fail = |why: &str| -> ! {
        panic!(
            "{why} after {what} (WEIR_PARTITION_SEED={seed})\n{}",
            cluster.report()
        )
    };
    while tokio::task::block_in_place(|| settled(cluster)).is_none() {
        if Instant::now() > deadline {
            fail("the metadata quorum did not settle");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all: BTreeSet<i32> = (1..=NODES)
        .map(|id| i32::try_from(id).unwrap_or(0))
        .collect();
    while live_brokers(w).await.into_iter().collect::<BTreeSet<_>>() != all {
        if Instant::now() > deadline {
            fail("not every broker is live");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if wait_led(w, &all, deadline.saturating_duration_since(Instant::now()))
        .await
        .is_none()
    {
        fail("a partition has no live leader");
    }
    // Healed means every replica caught up again. The next fault may wipe another node or
    // kill the leader: a wiped replica still catching up holds only part of what was
    // committed and has forgotten its votes, so a second fault then would take out a
    // majority's data, which no Raft group (and no Kafka ISR) survives.
    if !wait_in_sync(w, deadline.saturating_duration_since(Instant::now())).await {
        fail("a partition's replicas did not all catch up");
    }
    let prefixes = tokio::task::block_in_place(|| cluster.check_history())
        .unwrap_or_else(|err| fail(&format!("raft status: {err}")));
    if !prefixes.is_consistent() {
        fail(&format!("the metadata log diverged: {prefixes}"));
    }
}

/// The faults, by what they do to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    KillAny,
    KillLeader,
    /// The leader down past the broker session timeout: fenced, its partitions without a
    /// leader (one replica) or led by another replica.
    KillLeaderLong,
    PauseLeader,
    IsolateLeader,
    OneWayFromLeader,
    FlapLeader,
    Wipe,
    KillAll,
}

const KINDS: [Kind; 9] = [
    Kind::KillAny,
    Kind::KillLeader,
    Kind::KillLeaderLong,
    Kind::PauseLeader,
    Kind::IsolateLeader,
    Kind::OneWayFromLeader,
    Kind::FlapLeader,
    Kind::Wipe,
    Kind::KillAll,
];

/// The running workload: its tasks and their stop flags.
struct Clients {
    producers: Vec<JoinHandle<Troubles>>,
    consumer: JoinHandle<Troubles>,
    /// Each broker read directly all along.
    pollers: Vec<JoinHandle<u64>>,
    stop_producing: Arc<AtomicBool>,
    stop_consuming: Arc<AtomicBool>,
}

fn start_clients(w: &Workload, rec: &Recorder, cluster: &ClusterProcs) -> Clients {
    let stop_producing = Arc::new(AtomicBool::new(false));
    let stop_consuming = Arc::new(AtomicBool::new(false));
    let producers = ["p1", "p2"]
        .into_iter()
        .map(|name| {
            tokio::spawn(produce(
                w.clone(),
                name.to_owned(),
                RATE,
                rec.clone(),
                Arc::clone(&stop_producing),
            ))
        })
        .collect();
    let consumer = tokio::spawn(consume_group(
        w.clone(),
        rec.clone(),
        Arc::clone(&stop_consuming),
    ));
    let pollers = (1..=NODES)
        .map(|id| {
            tokio::spawn(poll_broker(
                w.clone(),
                id,
                cluster.kafka_addr(id),
                rec.clone(),
                Arc::clone(&stop_consuming),
            ))
        })
        .collect();
    Clients {
        producers,
        consumer,
        pollers,
        stop_producing,
        stop_consuming,
    }
}

/// Stops the producers (each waits for its outstanding deliveries) and then the consumer.
async fn stop_clients(clients: Clients, w: &Workload) -> (Troubles, Troubles) {
    clients.stop_producing.store(true, Ordering::Relaxed);
    let mut produced = Troubles::default();
    for task in clients.producers {
        let t = tokio::time::timeout(w.delivery_timeout + SETTLE, task)
            .await
            .expect("the producers finish")
            .expect("producer task");
        produced.fatal.extend(t.fatal);
        produced.retriable += t.retriable;
        produced.rebalances += t.rebalances;
    }
    // Let the group catch up with the last records before it stops.
    tokio::time::sleep(Duration::from_secs(1)).await;
    clients.stop_consuming.store(true, Ordering::Relaxed);
    let consumed = tokio::time::timeout(SETTLE, clients.consumer)
        .await
        .expect("the consumer finishes")
        .expect("consumer task");
    let mut polled = 0;
    for poller in clients.pollers {
        polled += tokio::time::timeout(SETTLE, poller)
            .await
            .expect("the pollers finish")
            .expect("poller task");
    }
    eprintln!("{polled} records read from the brokers directly while the clients ran");
    (produced, consumed)
}

/// Reads everything back from every broker and in assign mode, records the committed
/// offsets once more, and checks the history.
async fn read_back_and_check(
    cluster: &ClusterProcs,
    w: &Workload,
    rec: &Recorder,
    seed: u64,
) -> Report {
    let nodes: Vec<_> = (1..=NODES).map(|id| (id, cluster.kafka_addr(id))).collect();
    // A leadership change under way (an election after the last fault, a hand-over by the
    // leader balancer) can leave a partition served by no broker for a moment: wait for the
    // cluster to be whole and read again, a few times. (More reads are only more
    // observations for the checker.)
    let mut attempt = 0;
    let served = loop {
        wait_whole(cluster, w, seed, "the clients stopped").await;
        let served = read_each_broker(w, &nodes, rec)
            .await
            .unwrap_or_else(|(id, p, err)| {
                panic!("reading partition {p} from node {id}: {err} (WEIR_PARTITION_SEED={seed})")
            });
        let unserved: Vec<i32> = (0..w.partitions)
            .filter(|p| served.get(p).is_none_or(Vec::is_empty))
            .collect();
        attempt += 1;
        if unserved.is_empty() {
            break served;
        }
        assert!(
            attempt < 5,
            "no broker serves partitions {unserved:?} (WEIR_PARTITION_SEED={seed})\n{}",
            cluster.report()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for read in &rec.history().reads {
        if read.reader.starts_with("node-") {
            let end = ends.entry(read.partition).or_insert(0);
            *end = (*end).max(read.offset + 1);
        }
    }
    read_assigned(w, &ends, rec, SETTLE)
        .await
        .unwrap_or_else(|err| panic!("{err} (WEIR_PARTITION_SEED={seed})"));
    assert!(observe_commits(w, rec).await, "OffsetFetch after healing");
    let history = rec.history();
    if let Ok(path) = std::env::var("WEIR_PARTITION_HISTORY") {
        write_history(&path, &history);
    }
    eprintln!("partitions served by {served:?}");
    jepsen::check(&history)
}

fn write_history(path: &str, history: &History) {
    let ops = history
        .sends
        .iter()
        .cloned()
        .map(Op::Send)
        .chain(history.reads.iter().cloned().map(Op::Read))
        .chain(history.commits.iter().cloned().map(Op::Commit));
    let text: String = ops.map(|op| jepsen::to_line(&op)).collect();
    std::fs::write(path, text).unwrap_or_else(|err| panic!("write {path}: {err}"));
}

fn node_of(leaders: Option<&BTreeMap<i32, i32>>, partition: i32, fallback: u64) -> u64 {
    leaders
        .and_then(|l| l.get(&partition))
        .and_then(|&l| u64::try_from(l).ok())
        .filter(|id| (1..=NODES).contains(id))
        .unwrap_or(fallback)
}

/// Applies one fault of `kind` for a while and heals it.
async fn fault(
    cluster: &mut ClusterProcs,
    w: &Workload,
    kind: Kind,
    rng: &mut SplitMix64,
) -> String {
    let current = leaders(w).await;
    let partition =
        i32::try_from(rng.next_u64() % u64::try_from(PARTITIONS).unwrap_or(1)).unwrap_or(0);
    let random = 1 + rng.next_u64() % NODES;
    let leader = node_of(current.as_ref(), partition, random);
    let other = 1 + (leader + rng.next_u64() % (NODES - 1)) % NODES;
    let hold = Duration::from_millis(300 + rng.next_u64() % 1200);
    match kind {
        Kind::KillAny | Kind::KillLeader => {
            let victim = if kind == Kind::KillAny {
                random
            } else {
                leader
            };
            tokio::task::block_in_place(|| cluster.kill9(victim));
            tokio::time::sleep(hold).await;
            tokio::task::block_in_place(|| cluster.restart(victim));
            format!("kill -9 node {victim} for {hold:?}")
        }
        Kind::KillLeaderLong => {
            let down = Duration::from_millis(3500 + rng.next_u64() % 3000);
            tokio::task::block_in_place(|| cluster.kill9(leader));
            tokio::time::sleep(down).await;
            tokio::task::block_in_place(|| cluster.restart(leader));
            format!("kill -9 node {leader} (leads {partition}) for {down:?}, past its session")
        }
        Kind::PauseLeader => {
            // Past the election timeout (500 ms), below the broker session (3 s) or past it.
            let pause = Duration::from_millis(800 + rng.next_u64() % 3000);
            tokio::task::block_in_place(|| cluster.pause(leader));
            tokio::time::sleep(pause).await;
            tokio::task::block_in_place(|| cluster.resume(leader));
            format!("SIGSTOP node {leader} (leads {partition}) for {pause:?}")
        }
        Kind::IsolateLeader | Kind::OneWayFromLeader | Kind::FlapLeader => {
            tokio::task::block_in_place(|| match kind {
                Kind::IsolateLeader => cluster.links().isolate(leader),
                Kind::OneWayFromLeader => cluster.links().partition_one_way(leader, other),
                _ => {
                    let flap = Fault::Flapping {
                        healthy: Duration::from_millis(100)..=Duration::from_millis(400),
                        partitioned: Duration::from_millis(100)..=Duration::from_millis(900),
                    };
                    cluster.proxy(leader, other).set(flap.clone());
                    cluster.proxy(other, leader).set(flap);
                }
            });
            let hold = hold * 2;
            tokio::time::sleep(hold).await;
            tokio::task::block_in_place(|| cluster.links().heal_all());
            format!("{kind:?} node {leader} (leads {partition}), other {other}, for {hold:?}")
        }
        Kind::Wipe => {
            // Neither the partition's leader nor the group's coordinator: committed offsets
            // live on the coordinator only, so wiping it loses them by design (cluster.md).
            let coordinator = coordinator(w).await.and_then(|c| u64::try_from(c).ok());
            let victim = (1..=NODES)
                .map(|i| 1 + (other + i) % NODES)
                .find(|&id| id != leader && Some(id) != coordinator)
                .unwrap_or(other);
            tokio::task::block_in_place(|| cluster.kill9(victim));
            tokio::time::sleep(hold).await;
            tokio::task::block_in_place(|| cluster.wipe_and_restart(victim));
            format!("wipe node {victim} (leader of {partition}: {leader}) after {hold:?}")
        }
        Kind::KillAll => {
            tokio::task::block_in_place(|| {
                for id in 1..=NODES {
                    cluster.kill9(id);
                }
            });
            tokio::time::sleep(hold).await;
            tokio::task::block_in_place(|| cluster.restart_stopped());
            format!("kill -9 every node for {hold:?}")
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_faults_lose_no_acknowledged_record() {
    let seed = seed();
    let faults = env_u64("WEIR_PARTITION_FAULTS").unwrap_or(40);
    let rf = campaign_rf();
    eprintln!(
        "partition fault campaign: seed {seed}, {faults} faults, replication factor {rf} \
         (WEIR_PARTITION_SEED={seed} replays it)"
    );
    let root = tempfile::tempdir().expect("temporary directory");
    let mut cluster =
        tokio::task::block_in_place(|| ClusterProcs::start(root.path(), options(Some(seed))));
    let w = Workload {
        bootstrap: cluster.bootstrap(),
        topic: "jepsen".into(),
        partitions: PARTITIONS,
        group: "jepsen-group".into(),
        delivery_timeout: Duration::from_millis(
            env_u64("WEIR_PARTITION_DELIVERY_TIMEOUT_MS").unwrap_or(6_000),
        ),
    };
    wait_until_formed(&cluster, &w, seed).await;
    create_topic(&w, rf, SETTLE)
        .await
        .unwrap_or_else(|err| panic!("create the topic with replication factor {rf}: {err}"));
    wait_whole(&cluster, &w, seed, "creating the topic").await;
    let rec = Recorder::default();
    let clients = start_clients(&w, &rec, &cluster);
    let mut rng = SplitMix64::new(seed);
    let kinds: Vec<Kind> = KINDS
        .into_iter()
        .filter(|k| *k != Kind::Wipe || rf >= 3)
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    for n in 0..faults {
        let kind = kinds[usize::try_from(rng.next_u64() % kinds.len() as u64).unwrap_or(0)];
        let what = fault(&mut cluster, &w, kind, &mut rng).await;
        wait_whole(&cluster, &w, seed, &format!("fault {n} ({what})")).await;
        let observed = observe_commits(&w, &rec).await;
        eprintln!(
            "fault {n}: {what}; healed at {:.1} s, {} acknowledged, commits read: {observed}",
            started.elapsed().as_secs_f64(),
            rec.acknowledged()
        );
    }
    let per_fault = started.elapsed().as_secs_f64() / faults.max(1) as f64;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (produced, consumed) = stop_clients(clients, &w).await;
    let report = read_back_and_check(&cluster, &w, &rec, seed).await;
    eprintln!(
        "{faults} faults in {:.1} s ({per_fault:.2} s per fault); producers: {} retriable \
         refusals, {:?}; group consumer: {} retriable errors, {} rejoins, {:?}\n{report}",
        started.elapsed().as_secs_f64(),
        produced.retriable,
        produced.fatal,
        consumed.retriable,
        consumed.rebalances,
        consumed.fatal
    );
    assert!(
        report.is_valid(),
        "anomalies (WEIR_PARTITION_SEED={seed}, replication factor {rf}):\n{report}\n{}",
        cluster.links().report()
    );
    assert!(report.acknowledged > 0, "nothing was acknowledged");
    assert!(
        tokio::task::block_in_place(|| cluster.stop_all()),
        "a node did not stop cleanly"
    );
}

/// Waits for the metadata quorum and for every broker to have registered (before a topic is
/// placed over them).
async fn wait_until_formed(cluster: &ClusterProcs, w: &Workload, seed: u64) {
    let deadline = Instant::now() + SETTLE;
    while tokio::task::block_in_place(|| settled(cluster)).is_none()
        || live_brokers(w).await.len() < usize::try_from(NODES).unwrap_or(0)
    {
        assert!(
            Instant::now() < deadline,
            "the cluster did not form (WEIR_PARTITION_SEED={seed})\n{}",
            cluster.report()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A rolling restart: each broker stopped (SIGTERM) and started again in turn under an
/// idempotent producer and a consumer group. Every send is acknowledged (the producers only
/// meet retriable errors and retry), the consumer meets nothing but retriable errors, and the
/// checker finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_loses_nothing_and_fails_no_send() {
    let seed = seed();
    let rf = campaign_rf();
    eprintln!("rolling restart, replication factor {rf}");
    let root = tempfile::tempdir().expect("temporary directory");
    let mut cluster =
        tokio::task::block_in_place(|| ClusterProcs::start(root.path(), options(None)));
    let w = Workload {
        bootstrap: cluster.bootstrap(),
        topic: "rolling".into(),
        partitions: PARTITIONS,
        group: "rolling-group".into(),
        // Longer than any broker is away: nothing may end indeterminate.
        delivery_timeout: Duration::from_secs(90),
    };
    wait_until_formed(&cluster, &w, seed).await;
    create_topic(&w, rf, SETTLE)
        .await
        .unwrap_or_else(|err| panic!("create the topic with replication factor {rf}: {err}"));
    wait_whole(&cluster, &w, seed, "creating the topic").await;
    let rec = Recorder::default();
    let clients = start_clients(&w, &rec, &cluster);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    for id in 1..=NODES {
        let before = rec.acknowledged();
        let clean = tokio::task::block_in_place(|| cluster.stop(id));
        assert!(
            clean,
            "node {id} did not stop cleanly\n{}",
            cluster.report()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        tokio::task::block_in_place(|| cluster.restart(id));
        wait_whole(&cluster, &w, seed, &format!("restarting node {id}")).await;
        observe_commits(&w, &rec).await;
        // Writes go on after each restart before the next broker goes.
        let deadline = Instant::now() + SETTLE;
        while rec.acknowledged() < before + 100 {
            assert!(
                Instant::now() < deadline,
                "no progress after restarting node {id}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!(
            "node {id} restarted at {:.1} s, {} acknowledged",
            started.elapsed().as_secs_f64(),
            rec.acknowledged()
        );
    }
    let (produced, consumed) = stop_clients(clients, &w).await;
    let report = read_back_and_check(&cluster, &w, &rec, seed).await;
    eprintln!(
        "rolling restart: {} retriable errors and {} rejoins in the group consumer\n{report}",
        consumed.retriable, consumed.rebalances
    );
    assert!(
        report.is_valid(),
        "anomalies in a rolling restart:\n{report}"
    );
    let unacknowledged: Vec<String> = rec
        .history()
        .sends
        .iter()
        .filter(|s| s.outcome != Outcome::Ok)
        .take(10)
        .map(|s| format!("{} {:?}", s.value, s.outcome))
        .collect();
    assert!(
        unacknowledged.is_empty() && report.failed == 0 && report.indeterminate == 0,
        "sends not acknowledged in a rolling restart: {unacknowledged:?}"
    );
    assert!(
        produced.fatal.is_empty() && consumed.fatal.is_empty(),
        "errors a retry could not fix: producers {:?}, consumer {:?}",
        produced.fatal,
        consumed.fatal
    );
    assert!(
        tokio::task::block_in_place(|| cluster.stop_all()),
        "a node did not stop cleanly"
    );
}

/// The pipeline catches a real loss: with one replica a wiped node's partitions are gone by
/// definition, and the campaign's reads and checker must report the acknowledged records
/// that were there as lost (and nothing lost elsewhere). Always at replication factor 1,
/// whatever `WEIR_CAMPAIGN_RF` says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_faults_report_the_records_of_a_wiped_single_replica_as_lost() {
    let seed = seed();
    let root = tempfile::tempdir().expect("temporary directory");
    let mut cluster =
        tokio::task::block_in_place(|| ClusterProcs::start(root.path(), options(None)));
    let w = Workload {
        bootstrap: cluster.bootstrap(),
        topic: "wiped".into(),
        partitions: PARTITIONS,
        group: "wiped-group".into(),
        delivery_timeout: Duration::from_secs(20),
    };
    wait_until_formed(&cluster, &w, seed).await;
    create_topic(&w, 1, SETTLE)
        .await
        .unwrap_or_else(|err| panic!("create the topic: {err}"));
    wait_whole(&cluster, &w, seed, "creating the topic").await;
    let rec = Recorder::default();
    let clients = start_clients(&w, &rec, &cluster);
    let deadline = Instant::now() + SETTLE;
    while rec.acknowledged() < 300 {
        assert!(Instant::now() < deadline, "nothing acknowledged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let placed = leaders(&w).await.expect("leaders");
    let victim = node_of(Some(&placed), 0, 1);
    tokio::task::block_in_place(|| cluster.wipe_and_restart(victim));
    wait_whole(&cluster, &w, seed, "the wipe").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_produced, _consumed) = stop_clients(clients, &w).await;
    let report = read_back_and_check(&cluster, &w, &rec, seed).await;
    eprintln!("node {victim} wiped, leading {placed:?}\n{report}");
    assert!(!report.lost.is_empty(), "the wipe lost nothing?\n{report}");
    let victims: BTreeSet<i32> = placed
        .iter()
        .filter(|&(_, &l)| u64::try_from(l).ok() == Some(victim))
        .map(|(&p, _)| p)
        .collect();
    assert!(
        report.lost.iter().all(|l| victims.contains(&l.partition)),
        "records lost outside node {victim}'s partitions {victims:?}:\n{report}"
    );
    assert!(tokio::task::block_in_place(|| cluster.stop_all()));
}
