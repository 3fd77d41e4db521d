//! What the client knows of the cluster: brokers, topic metadata, and one connection per
//! broker.
//!
//! Metadata is fetched from any reachable broker (a broker already connected first, then the
//! other known brokers not backing off, then the bootstrap addresses; any one reachable
//! suffices), cached per topic, and refreshed when older than `metadata_max_age` or when a
//! caller reports it stale (an error such as NOT_LEADER_OR_FOLLOWER or
//! UNKNOWN_TOPIC_OR_PARTITION, a failed connection). A Metadata request that a broker fails
//! to answer is sent to another one, so a cluster is learned again through whichever broker
//! is left. The known brokers are exactly those the last answer listed. A dead connection is
//! replaced on next use, a connection whose call timed out is dropped; attempts to reach a
//! broker that keeps failing are spaced out by exponential backoff with jitter
//! ([`crate::backoff`]). A bootstrap address without a port gets [`DEFAULT_PORT`] (9092), as
//! librdkafka assumes; the last failure of [`Cluster::any`] is kept, typed, in
//! [`Error::NoBroker`] (unresolvable, refused, not Kafka).
//!
//! `metadata.rs` reads a Metadata answer into plain values; `offsets.rs` asks each
//! partition's leader for offsets (ListOffsets).
//!
//! Does not retry partition-scoped requests itself: the producer, consumer and admin do,
//! each with its own deadline, after [`Cluster::invalidate`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::net::lookup_host;
use tokio::sync::Mutex;
use weir_protocol::error_code::ErrorCode;

use crate::backoff::Backoff;
use crate::config::ClientConfig;
use crate::connection::{Connection, Request};
use crate::error::{Error, Result};
use crate::random::SplitMix64;

mod metadata;
pub(crate) mod offsets;

pub use metadata::{BrokerInfo, PartitionInfo, Snapshot, TopicInfo};
pub use offsets::Outcomes;

/// The port of a bootstrap address given without one, as librdkafka (and so kcat) assume.
pub const DEFAULT_PORT: u16 = 9092;

/// `address` with [`DEFAULT_PORT`] when it has no port (`localhost`, `10.0.0.7`, `::1`,
/// `[::1]`); unchanged when it has one.
///
/// # Errors
/// [`Error::InvalidArgument`] for a port that is not a number from 1 to 65535.
pub fn with_default_port(address: &str) -> Result<String> {
    if address.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(format!("[{address}]:{DEFAULT_PORT}"));
    }
    if address.starts_with('[') && address.ends_with(']') {
        return Ok(format!("{address}:{DEFAULT_PORT}"));
    }
    match address.rsplit_once(':') {
        None => Ok(format!("{address}:{DEFAULT_PORT}")),
        Some((host, port)) => match port.parse::<u16>() {
            Ok(p) if p > 0 && !host.is_empty() => Ok(address.to_owned()),
            _ => Err(Error::InvalidArgument(format!(
                "bootstrap address `{address}`: expected host:port with a port from 1 to 65535"
            ))),
        },
    }
}

#[derive(Debug)]
struct Peer {
    addr: SocketAddr,
    connection: Option<Connection>,
    backoff: Backoff<SplitMix64>,
    next_attempt: Instant,
}

/// A topic's cached metadata and how current it is.
#[derive(Debug)]
struct Cached {
    info: TopicInfo,
    fetched: Instant,
    /// Set by [`Cluster::invalidate`]: the next lookup asks a broker again. Per topic, so
    /// that refreshing one topic does not make another's stale entry look fresh.
    stale: bool,
}

#[derive(Debug, Default)]
struct State {
    /// Node id -> broker: exactly the brokers the last Metadata answer listed (a broker that
    /// left the cluster is forgotten, so lookups stop trying it).
    brokers: HashMap<i32, Peer>,
    topics: HashMap<String, Cached>,
    controller: Option<i32>,
    cluster_id: Option<String>,
}

/// The cluster as the client sees it. Shared by producer, consumer and admin.
#[derive(Debug)]
pub struct Cluster {
    config: ClientConfig,
    state: Mutex<State>,
    /// Bumped whenever cached metadata changes or is invalidated: lets callers keep cheap
    /// copies of what they derive from it (see [`Self::metadata_epoch`]).
    epoch: AtomicU64,
}

impl Cluster {
    /// A cluster reached through `config.bootstrap`; nothing is connected until first use.
    pub fn new(config: ClientConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            state: Mutex::new(State::default()),
            epoch: AtomicU64::new(0),
        })
    }

    /// A number that changes whenever cached metadata is refreshed or invalidated. A value
    /// derived from [`Self::topic`] while the epoch was `e` is current as long as the epoch is
    /// still `e` (and the metadata not older than `metadata_max_age`).
    pub fn metadata_epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    async fn open(&self, addr: SocketAddr) -> Result<Connection> {
        Connection::connect(addr, &self.config.client_id, self.config.connect_timeout).await
    }

    /// A connection to any broker: a known one already connected first, then the other
    /// known brokers not backing off after a failure, then the bootstrap addresses in order.
    ///
    /// # Errors
    /// [`Error::NoBroker`] when none can be reached.
    pub async fn any(&self) -> Result<Connection> {
        self.any_except(&[]).await
    }

    /// [`Self::any`], leaving out the brokers at `skip` (those that just failed a call).
    async fn any_except(&self, skip: &[SocketAddr]) -> Result<Connection> {
        let now = Instant::now();
        let (live, ready, backing_off) = {
            let state = self.state.lock().await;
            let mut peers: Vec<(&i32, &Peer)> = state.brokers.iter().collect();
            peers.sort_unstable_by_key(|(id, _)| **id);
            let mut live = None;
            let mut ready = Vec::new();
            let mut backing_off = Vec::new();
            for (id, peer) in peers.into_iter().filter(|(_, p)| !skip.contains(&p.addr)) {
                match &peer.connection {
                    Some(c) if !c.is_dead() => {
                        live.get_or_insert_with(|| c.clone());
                    }
                    _ if now >= peer.next_attempt => ready.push(*id),
                    _ => backing_off.push(peer.addr),
                }
            }
            (live, ready, backing_off)
        };
        if let Some(connection) = live {
            return Ok(connection);
        }
        let mut last = if self.config.bootstrap.is_empty() {
            Error::InvalidArgument("no bootstrap address given".to_owned())
        } else {
            Error::Timeout("reaching a broker (each is backing off after failures)".to_owned())
        };
        for node in ready {
            match self.node(node).await {
                Ok(c) => return Ok(c),
                Err(err) => last = err,
            }
        }
        for address in &self.config.bootstrap {
            let address = with_default_port(address)?;
            let looked_up = lookup_host(address.clone()).await;
            let resolved = match looked_up {
                Ok(resolved) => resolved.collect::<Vec<_>>(),
                Err(source) => {
                    last = Error::Resolve { address, source };
                    continue;
                }
            };
            // A known broker backing off is not tried through its bootstrap address either.
            for addr in resolved
                .into_iter()
                .filter(|a| !skip.contains(a) && !backing_off.contains(a))
            {
                match self.open(addr).await {
                    Ok(c) => return Ok(c),
                    Err(err) => last = err,
                }
            }
        }
        Err(Error::NoBroker {
            tried: self.config.bootstrap.clone(),
            last: Box::new(last),
        })
    }

    /// The connection to broker `node`, connecting (or reconnecting) if needed.
    ///
    /// # Errors
    /// [`Error::UnknownBroker`] for a node the last metadata did not list, a broker in
    /// backoff after failures, or a failed connect.
    pub async fn node(&self, node: i32) -> Result<Connection> {
        let addr = {
            let mut state = self.state.lock().await;
            let peer = state
                .brokers
                .get_mut(&node)
                .ok_or(Error::UnknownBroker(node))?;
            if let Some(c) = peer.connection.as_ref().filter(|c| !c.is_dead()) {
                return Ok(c.clone());
            }
            if Instant::now() < peer.next_attempt {
                return Err(Error::Timeout(format!(
                    "broker {node} at {} is backing off after failures",
                    peer.addr
                )));
            }
            peer.addr
        };
        let opened = self.open(addr).await;
        let mut state = self.state.lock().await;
        let Some(peer) = state.brokers.get_mut(&node).filter(|p| p.addr == addr) else {
            return opened;
        };
        match &opened {
            Ok(c) => {
                peer.connection = Some(c.clone());
                peer.backoff.reset();
                peer.next_attempt = Instant::now();
            }
            Err(_) => {
                let wait = peer
                    .backoff
                    .next()
                    .unwrap_or(self.config.reconnect_backoff_max);
                peer.next_attempt = Instant::now() + wait;
            }
        }
        opened
    }

    /// Sends `request` to broker `node`. A call that times out drops the connection, so a
    /// broker that stopped answering is connected afresh (or found gone) next time.
    ///
    /// # Errors
    /// As [`Connection::call`].
    pub async fn call<R: Request>(&self, node: i32, request: R) -> Result<R::Response> {
        let connection = self.node(node).await?;
        self.call_on(&connection, request).await
    }

    async fn call_on<R: Request>(
        &self,
        connection: &Connection,
        request: R,
    ) -> Result<R::Response> {
        match tokio::time::timeout(self.config.request_timeout, connection.call(request)).await {
            Ok(answered) => answered,
            Err(_elapsed) => {
                self.drop_connection(connection.addr()).await;
                Err(Error::Timeout(format!(
                    "{} to {}",
                    R::KEY.name(),
                    connection.addr()
                )))
            }
        }
    }

    async fn drop_connection(&self, addr: SocketAddr) {
        let mut state = self.state.lock().await;
        for peer in state.brokers.values_mut().filter(|p| p.addr == addr) {
            peer.connection = None;
        }
    }

    /// Sends `request` to any broker (once: for requests that must not be repeated).
    ///
    /// # Errors
    /// As [`Connection::call`].
    pub async fn call_any<R: Request>(&self, request: R) -> Result<R::Response> {
        let connection = self.any().await?;
        self.call_on(&connection, request).await
    }

    /// Sends a request that may safely be repeated (Metadata, FindCoordinator) to any broker,
    /// and to another one when a broker fails to answer: when brokers die, a cluster is
    /// still learned from whichever one is left.
    pub(crate) async fn call_any_repeatable<R: Request + Clone>(
        &self,
        request: R,
    ) -> Result<R::Response> {
        let mut failed: Vec<SocketAddr> = Vec::new();
        let mut last_failure = None;
        loop {
            let connection = match (self.any_except(&failed).await, last_failure) {
                (Ok(c), _) => c,
                (Err(err), None) => return Err(err),
                // Every broker left was tried: what the last one did says most.
                (Err(_), Some(last)) => {
                    return Err(Error::NoBroker {
                        tried: self.config.bootstrap.clone(),
                        last: Box::new(last),
                    });
                }
            };
            let addr = connection.addr();
            match self.call_on(&connection, request.clone()).await {
                Err(err) if is_transport(&err) && failed.len() < MAX_BROKERS_TRIED => {
                    tracing::debug!(%addr, error = %err, api = R::KEY.name(), "trying another broker");
                    failed.push(addr);
                    last_failure = Some(err);
                }
                answered => return answered,
            }
        }
    }

    /// Sends an admin request (CreateTopics, DeleteTopics, CreatePartitions, configs) to the
    /// controller when metadata names a reachable one, else to any broker: Weir and Kafka in
    /// KRaft mode take them at any broker and forward them. Sent at most once.
    ///
    /// # Errors
    /// As [`Connection::call`].
    pub async fn call_admin<R: Request>(&self, request: R) -> Result<R::Response> {
        if let Ok(node) = self.controller().await {
            match self.node(node).await {
                Ok(connection) => return self.call_on(&connection, request).await,
                Err(err) => {
                    // Nothing was sent: another broker may take it.
                    tracing::debug!(node, error = %err, "the controller is unreachable");
                    self.state.lock().await.controller = None;
                    self.invalidate().await;
                }
            }
        }
        self.call_any(request).await
    }

    /// Fetches metadata for `topics` (all topics when `None`) and updates the cache.
    ///
    /// # Errors
    /// When no broker answers.
    pub async fn refresh(&self, topics: Option<&[&str]>) -> Result<Vec<TopicInfo>> {
        self.refresh_with(topics, self.config.allow_auto_create_topics)
            .await
    }

    /// [`Self::refresh`], asking the broker to create missing topics when `auto_create` (a
    /// producer's choice, [`crate::ProducerConfig::allow_auto_create_topics`], rather than
    /// this cluster's [`ClientConfig::allow_auto_create_topics`]).
    ///
    /// # Errors
    /// As [`Self::refresh`].
    pub async fn refresh_with(
        &self,
        topics: Option<&[&str]>,
        auto_create: bool,
    ) -> Result<Vec<TopicInfo>> {
        let snapshot = self.metadata_with(topics, auto_create).await?;
        Ok(snapshot.topics.into_iter().map(|(info, _)| info).collect())
    }

    /// The whole Metadata answer for `topics` (all topics when `None`; none but the brokers
    /// with `Some(&[])`), also applied to the cache.
    ///
    /// # Errors
    /// As [`Self::refresh`].
    pub async fn metadata(&self, topics: Option<&[&str]>) -> Result<Snapshot> {
        self.metadata_with(topics, self.config.allow_auto_create_topics)
            .await
    }

    async fn metadata_with(&self, topics: Option<&[&str]>, auto_create: bool) -> Result<Snapshot> {
        for name in topics.unwrap_or_default() {
            crate::topic_name::check(name)?;
        }
        let request = MetadataRequest::default()
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|n| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string((*n).to_owned()))))
                    })
                    .collect()
            }))
            // Only when asked: a misspelled name should not become a topic.
            .with_allow_auto_topic_creation(auto_create);
        let response = self.call_any_repeatable(request).await?;
        let snapshot = Snapshot::from_response(response);
        self.apply(&snapshot).await;
        Ok(snapshot)
    }

    async fn apply(&self, snapshot: &Snapshot) {
        // Resolved before taking the lock: a slow resolver must not stall every lookup.
        let mut listed = HashMap::new();
        for broker in &snapshot.brokers {
            let port = u16::try_from(broker.port).unwrap_or(0);
            match lookup_host((broker.host.as_str(), port)).await {
                Ok(mut addrs) => {
                    if let Some(addr) = addrs.next() {
                        listed.insert(broker.id, addr);
                    }
                }
                Err(err) => {
                    tracing::warn!(host = %broker.host, port = broker.port, error = %err, "cannot resolve an advertised broker");
                }
            }
        }
        let now = Instant::now();
        let mut state = self.state.lock().await;
        if !snapshot.brokers.is_empty() {
            state
                .brokers
                .retain(|id, peer| listed.get(id) == Some(&peer.addr));
        }
        for (node, addr) in listed {
            state.brokers.entry(node).or_insert_with(|| Peer {
                addr,
                connection: None,
                backoff: Backoff::new(
                    self.config.reconnect_backoff,
                    self.config.reconnect_backoff_max,
                    SplitMix64::from_entropy(),
                ),
                next_attempt: now,
            });
        }
        state.controller = snapshot.controller_id;
        if snapshot.cluster_id.is_some() {
            state.cluster_id.clone_from(&snapshot.cluster_id);
        }
        for (info, code) in &snapshot.topics {
            if *code == 0 {
                state.topics.insert(
                    info.name.clone(),
                    Cached {
                        info: info.clone(),
                        fetched: now,
                        stale: false,
                    },
                );
            } else {
                state.topics.remove(&info.name);
            }
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Cached metadata of `topic`, refreshed first if missing or older than the maximum age.
    ///
    /// # Errors
    /// An unknown topic ([`weir_protocol::error_code::ErrorCode::UnknownTopicOrPartition`]) or
    /// no reachable broker.
    pub async fn topic(&self, topic: &str) -> Result<TopicInfo> {
        self.topic_with(topic, self.config.allow_auto_create_topics)
            .await
    }

    /// [`Self::topic`], asking the broker to create it when missing if `auto_create` (see
    /// [`Self::refresh_with`]).
    ///
    /// # Errors
    /// As [`Self::topic`].
    pub async fn topic_with(&self, topic: &str, auto_create: bool) -> Result<TopicInfo> {
        {
            let state = self.state.lock().await;
            if let Some(cached) = state
                .topics
                .get(topic)
                .filter(|c| !c.stale && c.fetched.elapsed() < self.config.metadata_max_age)
            {
                return Ok(cached.info.clone());
            }
        }
        self.refresh_with(Some(&[topic]), auto_create).await?;
        self.state
            .lock()
            .await
            .topics
            .get(topic)
            .map(|c| c.info.clone())
            .ok_or_else(|| Error::Kafka {
                code: weir_protocol::error_code::ErrorCode::UnknownTopicOrPartition.code(),
                message: None,
                context: format!("metadata for {topic}"),
            })
    }

    /// The leader of `topic`-`partition` from cached metadata (refreshed when stale).
    ///
    /// # Errors
    /// UNKNOWN_TOPIC_OR_PARTITION, or LEADER_NOT_AVAILABLE (the cache is then invalidated).
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<i32> {
        let info = self.topic(topic).await?;
        let error = |code: ErrorCode| Error::Kafka {
            code: code.code(),
            message: None,
            context: format!("metadata for {topic}-{partition}"),
        };
        let found = info
            .partitions
            .iter()
            .find(|p| p.partition == partition)
            .ok_or_else(|| error(ErrorCode::UnknownTopicOrPartition))?;
        if found.leader < 0 {
            self.invalidate().await;
            return Err(error(ErrorCode::LeaderNotAvailable));
        }
        Ok(found.leader)
    }

    /// The leaders of many partitions at once, each with its own outcome as [`Self::leader`]
    /// gives it: each topic's metadata is looked up once, and the cache invalidated once when
    /// some partition has no leader, so that many leaderless partitions (a broker down) cost
    /// one Metadata request per topic, not one per partition.
    pub async fn leaders(&self, partitions: &[(&str, i32)]) -> HashMap<(String, i32), Result<i32>> {
        let mut topics: HashMap<&str, Result<TopicInfo, Arc<Error>>> = HashMap::new();
        for (topic, _) in partitions {
            if !topics.contains_key(topic) {
                let info = self.topic(topic).await.map_err(Arc::new);
                topics.insert(topic, info);
            }
        }
        let mut leaderless = false;
        let mut out = HashMap::with_capacity(partitions.len());
        for &(topic, partition) in partitions {
            let error = |code: ErrorCode| Error::Kafka {
                code: code.code(),
                message: None,
                context: format!("metadata for {topic}-{partition}"),
            };
            let outcome = match &topics[topic] {
                Err(err) => Err(Error::Metadata {
                    topic: topic.to_owned(),
                    source: Arc::clone(err),
                }),
                Ok(info) => match info.partitions.iter().find(|p| p.partition == partition) {
                    None => Err(error(ErrorCode::UnknownTopicOrPartition)),
                    Some(p) if p.leader < 0 => {
                        leaderless = true;
                        Err(error(ErrorCode::LeaderNotAvailable))
                    }
                    Some(p) => Ok(p.leader),
                },
            };
            out.insert((topic.to_owned(), partition), outcome);
        }
        if leaderless {
            self.invalidate().await;
        }
        out
    }

    /// Forgets the cached metadata, so the next lookup asks a broker (after a
    /// NOT_LEADER_OR_FOLLOWER and the like).
    pub async fn invalidate(&self) {
        for cached in self.state.lock().await.topics.values_mut() {
            cached.stale = true;
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// The controller's node id, from the last metadata (fetched when none is known yet).
    ///
    /// # Errors
    /// When no broker answers or none is the controller.
    pub async fn controller(&self) -> Result<i32> {
        if let Some(c) = self.state.lock().await.controller {
            return Ok(c);
        }
        self.refresh(Some(&[])).await?;
        self.state
            .lock()
            .await
            .controller
            .ok_or(Error::Timeout("finding the controller".to_owned()))
    }

    /// The cluster id from the last metadata that carried one (Metadata v2+).
    pub async fn cluster_id(&self) -> Option<String> {
        self.state.lock().await.cluster_id.clone()
    }

    /// Broker ids known from metadata.
    pub async fn brokers(&self) -> Vec<(i32, SocketAddr)> {
        let mut b: Vec<_> = self
            .state
            .lock()
            .await
            .brokers
            .iter()
            .map(|(id, p)| (*id, p.addr))
            .collect();
        b.sort_unstable();
        b
    }

    /// How long a call may take before it fails with [`Error::Timeout`].
    pub fn request_timeout(&self) -> Duration {
        self.config.request_timeout
    }
}

/// Brokers a repeatable request is tried on before giving up (each failure costs at most a
/// request timeout).
const MAX_BROKERS_TRIED: usize = 8;

/// A failure of the broker or the connection rather than an answer: another broker may do.
fn is_transport(err: &Error) -> bool {
    matches!(
        err,
        Error::Io { .. } | Error::Disconnected(_) | Error::Timeout(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_without_a_port_gets_9092() {
        for (given, want) in [
            ("localhost", "localhost:9092"),
            ("10.0.0.7", "10.0.0.7:9092"),
            ("::1", "[::1]:9092"),
            ("[::1]", "[::1]:9092"),
            ("localhost:19092", "localhost:19092"),
            ("[::1]:19092", "[::1]:19092"),
        ] {
            assert_eq!(with_default_port(given).expect(given), want);
        }
        for bad in [
            "localhost:",
            "localhost:http",
            "localhost:70000",
            ":9092",
            "h:0",
        ] {
            let err = with_default_port(bad).expect_err(bad);
            assert!(err.to_string().contains("port from 1 to 65535"), "{err}");
        }
    }
}
