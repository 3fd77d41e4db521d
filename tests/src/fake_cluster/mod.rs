//! A small in-process fake of a Kafka cluster, for testing clients' routing without real
//! brokers: N fake brokers (node ids 1..=N) on `127.0.0.1:0` that speak Kafka's framing
//! (`weir_protocol::message`) and answer the APIs a client needs to find and follow partition
//! leaders and group coordinators.
//!
//! Owns the cluster's state (the "world"): which brokers are up, each partition's leader,
//! replicas and leader epoch, the batches each partition holds and which broker took each,
//! committed offsets, and per broker a count of the requests it got. Tests change the world
//! ([`FakeCluster::move_leader`], [`FakeCluster::stop`], [`FakeCluster::hang`],
//! [`FakeCluster::set_coordinator`]) and read it back ([`FakeCluster::batches`],
//! [`FakeCluster::requests`]).
//!
//! What each broker answers (handlers.rs): ApiVersions; Metadata listing every live broker,
//! `controller_id` the lowest live id, each partition's leader (-1 with LEADER_NOT_AVAILABLE
//! when its broker is down: no re-election, as for a partition with one replica), replicas,
//! isr and offline replicas; Produce, Fetch and ListOffsets only for the partitions it leads
//! (NOT_LEADER_OR_FOLLOWER otherwise, UNKNOWN_TOPIC_OR_PARTITION for unknown ones; a fetch
//! honours its byte limits as KIP-74 says and is held up to 100 ms when there is nothing);
//! FindCoordinator (COORDINATOR_NOT_AVAILABLE while the coordinator is down); OffsetCommit,
//! OffsetFetch and DescribeGroups (a group known by its commits only) at the coordinator only (NOT_COORDINATOR elsewhere); InitProducerId;
//! DescribeCluster; CreateTopics (partitions spread over the live brokers in turn, visible
//! to Metadata after [`FakeCluster::set_create_lag`] answers). Any other API is not advertised and closes the connection.
//!
//! Not a broker: no disk, no replication, no sequence checks, no consumer group membership
//! (JoinGroup and the like). Batches are stored as sent, with only their base offset
//! rewritten. Every wait is bounded; frames over [`MAX_FRAME_BYTES`] close the connection.

mod handlers;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use weir_protocol::api::ApiKey;
use weir_protocol::message::{decode_request, encode_response};

/// Largest request frame a fake broker reads.
pub const MAX_FRAME_BYTES: usize = 16 << 20;

/// The cluster id every fake broker reports.
pub const CLUSTER_ID: &str = "fake-cluster";

/// A batch a partition holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBatch {
    /// The broker that accepted it.
    pub node: i32,
    /// Its first offset.
    pub base_offset: i64,
    /// How many records it holds.
    pub records: i64,
    /// The batch as stored (base offset rewritten).
    pub bytes: Bytes,
}

/// One partition of the world.
#[derive(Debug, Clone, Default)]
struct Partition {
    leader: i32,
    leader_epoch: i32,
    replicas: Vec<i32>,
    batches: Vec<StoredBatch>,
    next_offset: i64,
}

/// The cluster's state, shared by every fake broker.
#[derive(Debug, Default)]
struct World {
    /// Node id -> (address, up).
    brokers: BTreeMap<i32, (SocketAddr, bool)>,
    topics: BTreeMap<String, Vec<Partition>>,
    coordinator: i32,
    /// (group, topic, partition) -> committed offset.
    committed: BTreeMap<(String, String, i32), i64>,
    /// Brokers that read requests and never answer (a hung process, a one-way partition).
    hung: std::collections::BTreeSet<i32>,
    /// Topics made by CreateTopics that Metadata still leaves out, with how many more
    /// answers leave them out (a broker whose metadata lags the one that created them).
    unseen: BTreeMap<String, usize>,
    /// How many Metadata answers leave out each topic CreateTopics makes.
    create_lag: usize,
    /// (node, API) -> requests received.
    requests: HashMap<(i32, ApiKey), usize>,
    next_producer_id: i64,
}

impl World {
    fn up(&self, node: i32) -> bool {
        self.brokers.get(&node).is_some_and(|(_, up)| *up)
    }

    fn controller(&self) -> i32 {
        self.brokers
            .iter()
            .find(|(_, (_, up))| *up)
            .map_or(-1, |(id, _)| *id)
    }
}

type Shared = Arc<Mutex<World>>;

fn lock(world: &Shared) -> MutexGuard<'_, World> {
    // A test that panicked while holding the lock has failed already; its state is still
    // readable for the rest of the test's teardown.
    world
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running fake cluster; dropping it stops every broker.
#[derive(Debug)]
pub struct FakeCluster {
    world: Shared,
    /// Node id -> its accept loop (aborting it drops the listener and every connection).
    running: BTreeMap<i32, JoinHandle<()>>,
}

impl FakeCluster {
    /// Starts `brokers` fake brokers, node ids 1..=`brokers`; broker 1 coordinates groups.
    ///
    /// # Panics
    /// When a loopback port cannot be bound.
    pub async fn start(brokers: i32) -> Self {
        let world: Shared = Arc::new(Mutex::new(World {
            coordinator: 1,
            next_producer_id: 1000,
            ..World::default()
        }));
        let mut cluster = Self {
            world,
            running: BTreeMap::new(),
        };
        for id in 1..=brokers {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("local addr");
            lock(&cluster.world).brokers.insert(id, (addr, true));
            cluster
                .running
                .insert(id, spawn_broker(id, listener, &cluster.world));
        }
        cluster
    }

    /// Every broker's address, comma-separated (a bootstrap list).
    pub fn bootstrap(&self) -> String {
        let world = lock(&self.world);
        let addrs: Vec<String> = world.brokers.values().map(|(a, _)| a.to_string()).collect();
        addrs.join(",")
    }

    /// Broker `node`'s address.
    ///
    /// # Panics
    /// For an unknown node.
    pub fn addr(&self, node: i32) -> SocketAddr {
        lock(&self.world).brokers[&node].0
    }

    /// Creates `topic` with one partition per entry of `leaders` (partition `i` led by
    /// `leaders[i]`); each partition's replicas are its leader then every other broker.
    pub fn create_topic(&self, topic: &str, leaders: &[i32]) {
        let mut world = lock(&self.world);
        let ids: Vec<i32> = world.brokers.keys().copied().collect();
        let partitions = leaders
            .iter()
            .map(|&leader| {
                let mut replicas = vec![leader];
                replicas.extend(ids.iter().copied().filter(|&id| id != leader));
                Partition {
                    leader,
                    leader_epoch: 0,
                    replicas,
                    ..Partition::default()
                }
            })
            .collect();
        world.topics.insert(topic.to_owned(), partitions);
    }

    /// Moves the leadership of `topic`-`partition` to `node` (its leader epoch goes up): the
    /// old leader answers NOT_LEADER_OR_FOLLOWER from now on and Metadata names the new one.
    ///
    /// # Panics
    /// For an unknown partition.
    pub fn move_leader(&self, topic: &str, partition: i32, node: i32) {
        let mut world = lock(&self.world);
        let p = &mut world.topics.get_mut(topic).expect("topic")[index(partition)];
        p.leader = node;
        p.leader_epoch += 1;
    }

    /// Makes `node` the group coordinator (the old one answers NOT_COORDINATOR).
    pub fn set_coordinator(&self, node: i32) {
        lock(&self.world).coordinator = node;
    }

    /// Stops broker `node`: its listener closes (connections are refused), its connections
    /// are dropped, and Metadata stops listing it; its partitions have no leader until
    /// [`Self::move_leader`].
    pub fn stop(&mut self, node: i32) {
        if let Some(task) = self.running.remove(&node) {
            task.abort();
        }
        if let Some((_, up)) = lock(&self.world).brokers.get_mut(&node) {
            *up = false;
        }
    }

    /// Makes each topic that CreateTopics creates from now on missing from the next `answers`
    /// Metadata answers (UNKNOWN_TOPIC_OR_PARTITION), as when the broker asked has not yet
    /// learned what another created.
    pub fn set_create_lag(&self, answers: usize) {
        lock(&self.world).create_lag = answers;
    }

    /// Makes broker `node` hang: it keeps its connections and accepts new ones, reads every
    /// request and answers none, until [`Self::unhang`]. Metadata still lists it (the other
    /// brokers do not know it hangs).
    pub fn hang(&self, node: i32) {
        lock(&self.world).hung.insert(node);
    }

    /// Makes broker `node` answer again (requests read while it hung stay unanswered).
    pub fn unhang(&self, node: i32) {
        lock(&self.world).hung.remove(&node);
    }

    /// The batches `topic`-`partition` holds, oldest first.
    pub fn batches(&self, topic: &str, partition: i32) -> Vec<StoredBatch> {
        lock(&self.world)
            .topics
            .get(topic)
            .and_then(|ps| ps.get(index(partition)))
            .map(|p| p.batches.clone())
            .unwrap_or_default()
    }

    /// The records `topic`-`partition` holds.
    pub fn record_count(&self, topic: &str, partition: i32) -> i64 {
        self.batches(topic, partition)
            .iter()
            .map(|b| b.records)
            .sum()
    }

    /// The requests of `api` broker `node` has received.
    pub fn requests(&self, node: i32, api: ApiKey) -> usize {
        lock(&self.world)
            .requests
            .get(&(node, api))
            .copied()
            .unwrap_or(0)
    }

    /// `group`'s committed offset for `topic`-`partition`.
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        lock(&self.world)
            .committed
            .get(&(group.to_owned(), topic.to_owned(), partition))
            .copied()
    }
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        for task in self.running.values() {
            task.abort();
        }
    }
}

fn index(partition: i32) -> usize {
    usize::try_from(partition).unwrap_or(usize::MAX)
}

/// The accept loop of broker `node`; its connections live in a set dropped with it.
fn spawn_broker(node: i32, listener: TcpListener, world: &Shared) -> JoinHandle<()> {
    let world = Arc::clone(world);
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(serve(node, stream, Arc::clone(&world)));
                    }
                    Err(_) => return,
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    })
}

/// Answers one connection's requests in order until it closes or sends something the fake
/// does not serve.
async fn serve(node: i32, mut stream: TcpStream, world: Shared) {
    loop {
        let mut prefix = [0u8; 4];
        if stream.read_exact(&mut prefix).await.is_err() {
            return;
        }
        let Some(size) = usize::try_from(i32::from_be_bytes(prefix))
            .ok()
            .filter(|&s| s <= MAX_FRAME_BYTES)
        else {
            return;
        };
        let mut frame = vec![0u8; size];
        if stream.read_exact(&mut frame).await.is_err() {
            return;
        }
        let Ok(request) = decode_request(Bytes::from(frame), handlers::served) else {
            return;
        };
        let correlation_id = request.header.correlation_id;
        let (key, version) = (request.key, request.version);
        {
            let mut world = lock(&world);
            *world.requests.entry((node, key)).or_default() += 1;
            if world.hung.contains(&node) {
                continue;
            }
        }
        let Some(answer) = handlers::answer(node, &world, request).await else {
            continue; // acks=0 produce: no answer
        };
        let Ok(bytes) = encode_response(key, version, correlation_id, &answer) else {
            return;
        };
        if stream.write_all(&bytes).await.is_err() {
            return;
        }
    }
}
