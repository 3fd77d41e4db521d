//! What the client knows of the cluster: brokers, topic metadata, and one connection per
//! broker.
//!
//! Metadata is fetched from any reachable broker (bootstrap addresses first), cached, and
//! refreshed when older than `metadata_max_age` or when a caller reports it stale (an error
//! such as NOT_LEADER_OR_FOLLOWER or UNKNOWN_TOPIC_OR_PARTITION). A dead connection is
//! replaced on next use; attempts to reach a broker that keeps failing are spaced out by
//! exponential backoff with jitter ([`crate::backoff`]). A bootstrap address without a port
//! gets [`DEFAULT_PORT`] (9092), as librdkafka assumes; the last failure of
//! [`Cluster::any`] is kept, typed, in [`Error::NoBroker`] (unresolvable, refused, not Kafka).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId, ListOffsetsRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::net::lookup_host;
use tokio::sync::Mutex;
use weir_protocol::error_code::ErrorCode;

use crate::backoff::Backoff;
use crate::config::ClientConfig;
use crate::connection::{Connection, Request};
use crate::error::{Error, Result};
use crate::random::SplitMix64;

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

/// One partition's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition index.
    pub partition: i32,
    /// Leader's node id (-1 when none).
    pub leader: i32,
    /// The partition's error code (0 when fine).
    pub error_code: i16,
}

/// One topic's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The name.
    pub name: String,
    /// Partitions, by index.
    pub partitions: Vec<PartitionInfo>,
    /// Whether it is an internal topic.
    pub internal: bool,
}

#[derive(Debug)]
struct Peer {
    addr: SocketAddr,
    connection: Option<Connection>,
    backoff: Backoff<SplitMix64>,
    next_attempt: Instant,
}

#[derive(Debug, Default)]
struct State {
    /// Node id -> broker.
    brokers: HashMap<i32, Peer>,
    topics: HashMap<String, TopicInfo>,
    refreshed: Option<Instant>,
    controller: Option<i32>,
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

    /// A connection to any broker: a known one first, else the bootstrap addresses in order.
    ///
    /// # Errors
    /// [`Error::NoBroker`] when none can be reached.
    pub async fn any(&self) -> Result<Connection> {
        let known: Vec<i32> = self.state.lock().await.brokers.keys().copied().collect();
        let mut last = Error::InvalidArgument("no bootstrap address given".to_owned());
        for node in known {
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
            for addr in resolved {
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
    /// An unknown node, a broker in backoff after failures, or a failed connect.
    pub async fn node(&self, node: i32) -> Result<Connection> {
        let addr = {
            let mut state = self.state.lock().await;
            let peer = state
                .brokers
                .get_mut(&node)
                .ok_or_else(|| Error::InvalidArgument(format!("unknown broker {node}")))?;
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
        let Some(peer) = state.brokers.get_mut(&node) else {
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

    /// Sends `request` to broker `node`.
    ///
    /// # Errors
    /// As [`Connection::call`].
    pub async fn call<R: Request>(&self, node: i32, request: R) -> Result<R::Response> {
        let connection = self.node(node).await?;
        tokio::time::timeout(self.config.request_timeout, connection.call(request))
            .await
            .map_err(|_elapsed| Error::Timeout(format!("{} to broker {node}", R::KEY.name())))?
    }

    /// Sends `request` to any broker.
    ///
    /// # Errors
    /// As [`Connection::call`].
    pub async fn call_any<R: Request>(&self, request: R) -> Result<R::Response> {
        let connection = self.any().await?;
        tokio::time::timeout(self.config.request_timeout, connection.call(request))
            .await
            .map_err(|_elapsed| Error::Timeout(R::KEY.name().to_owned()))?
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
        let response = self.call_any(request).await?;
        Ok(self.apply(response).await)
    }

    async fn apply(&self, response: MetadataResponse) -> Vec<TopicInfo> {
        let mut state = self.state.lock().await;
        for broker in &response.brokers {
            let Ok(mut addrs) = lookup_host((
                broker.host.as_str(),
                u16::try_from(broker.port).unwrap_or(0),
            ))
            .await
            else {
                tracing::warn!(host = %broker.host.as_str(), port = broker.port, "cannot resolve an advertised broker");
                continue;
            };
            let Some(addr) = addrs.next() else { continue };
            let node = broker.node_id.0;
            let same = state.brokers.get(&node).is_some_and(|p| p.addr == addr);
            if !same {
                state.brokers.insert(
                    node,
                    Peer {
                        addr,
                        connection: None,
                        backoff: Backoff::new(
                            self.config.reconnect_backoff,
                            self.config.reconnect_backoff_max,
                            SplitMix64::from_entropy(),
                        ),
                        next_attempt: Instant::now(),
                    },
                );
            }
        }
        state.controller = Some(response.controller_id.0).filter(|&c| c >= 0);
        let mut infos = Vec::with_capacity(response.topics.len());
        for topic in response.topics {
            let Some(name) = topic.name.map(|n| n.0.to_string()) else {
                continue;
            };
            let info = TopicInfo {
                partitions: {
                    let mut parts: Vec<PartitionInfo> = topic
                        .partitions
                        .iter()
                        .map(|p| PartitionInfo {
                            partition: p.partition_index,
                            leader: p.leader_id.0,
                            error_code: p.error_code,
                        })
                        .collect();
                    parts.sort_by_key(|p| p.partition);
                    parts
                },
                internal: topic.is_internal,
                name: name.clone(),
            };
            if topic.error_code == 0 {
                state.topics.insert(name, info.clone());
            } else {
                state.topics.remove(&name);
            }
            infos.push(TopicInfo {
                partitions: if topic.error_code == 0 {
                    info.partitions
                } else {
                    Vec::new()
                },
                ..info
            });
        }
        state.refreshed = Some(Instant::now());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        infos
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
            let fresh = state
                .refreshed
                .is_some_and(|t| t.elapsed() < self.config.metadata_max_age);
            if let (true, Some(info)) = (fresh, state.topics.get(topic)) {
                return Ok(info.clone());
            }
        }
        self.refresh_with(Some(&[topic]), auto_create).await?;
        self.state
            .lock()
            .await
            .topics
            .get(topic)
            .cloned()
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

    /// ListOffsets for each `(topic, partition, timestamp)` (-1 latest, -2 earliest), one
    /// request per partition leader. Each partition gets its own outcome: its offset, or why
    /// it has none (no leader, or the broker's error).
    ///
    /// # Errors
    /// A request that fails as a whole (network, timeout).
    pub async fn list_offsets(
        &self,
        partitions: &[(String, i32, i64)],
    ) -> Result<BTreeMap<(String, i32), Result<i64>>> {
        let mut out = BTreeMap::new();
        let mut by_leader: BTreeMap<i32, BTreeMap<&str, Vec<ListOffsetsPartition>>> =
            BTreeMap::new();
        for (topic, partition, timestamp) in partitions {
            match self.leader(topic, *partition).await {
                Ok(leader) => by_leader
                    .entry(leader)
                    .or_default()
                    .entry(topic)
                    .or_default()
                    .push(
                        ListOffsetsPartition::default()
                            .with_partition_index(*partition)
                            .with_timestamp(*timestamp),
                    ),
                Err(err) => {
                    out.insert((topic.clone(), *partition), Err(err));
                }
            }
        }
        for (leader, topics) in by_leader {
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(topic, parts)| {
                            ListOffsetsTopic::default()
                                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                                .with_partitions(parts)
                        })
                        .collect(),
                );
            let response = self.call(leader, request).await?;
            for topic in response.topics {
                let name = topic.name.0.to_string();
                for p in topic.partitions {
                    let outcome = match Error::from_code(p.error_code, None, || {
                        format!("listing offsets of {name}-{}", p.partition_index)
                    }) {
                        Some(err) => Err(err),
                        None => Ok(p.offset),
                    };
                    out.insert((name.clone(), p.partition_index), outcome);
                }
            }
        }
        Ok(out)
    }

    /// Forgets the cached metadata, so the next lookup asks a broker (after a
    /// NOT_LEADER_OR_FOLLOWER and the like).
    pub async fn invalidate(&self) {
        self.state.lock().await.refreshed = None;
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// The controller's node id (for topic creation and deletion), from fresh metadata.
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
