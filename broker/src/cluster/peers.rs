//! The cluster flags: `--node-id`, `--cluster-listen` and `--peers` parsed and checked.
//!
//! `--peers 1@host:port,2@host:port,3@host:port` names every voter of the metadata quorum by
//! node id and the address *this* node uses to reach its cluster port. Each node resolves its
//! peers from its own list (never from addresses stored in the replicated membership), so an
//! operator (or a test's fault proxy) can route each directed link separately. The node's own
//! entry must be present: a node that is not a voter is refused at start-up.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::node_id::NodeId;

/// Voters in a cluster: Raft needs an odd count to tolerate failures usefully, and more than
/// 5 voters only slows commits down (every write waits for a majority).
pub const VOTER_COUNTS: [usize; 3] = [1, 3, 5];

/// Why `--peers` or `--node-id` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PeersError {
    /// An entry is not `id@host:port`.
    #[error("--peers entry {0:?} is not id@host:port (e.g. 1@127.0.0.1:9093)")]
    Malformed(String),
    /// An id appears twice.
    #[error("--peers names node {0} twice")]
    Duplicate(NodeId),
    /// Node ids start at 1 (0 is the single broker's id, which a cluster never uses).
    #[error("--peers node id 0 is reserved for the single broker; use ids from 1")]
    ZeroId,
    /// Not 1, 3 or 5 voters.
    #[error("--peers names {0} voters; a cluster has 1, 3 or 5")]
    Count(usize),
    /// This node is not among its own peers.
    #[error("--node-id {0} is not in --peers")]
    NotAVoter(NodeId),
}

/// Every voter's cluster address, as this node reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peers {
    addresses: BTreeMap<NodeId, String>,
}

impl Peers {
    /// Parses `--peers` and checks that `node_id` is one of them.
    ///
    /// # Errors
    /// When an entry is malformed, an id repeats or is 0, the count is not 1, 3 or 5, or
    /// `node_id` is missing.
    pub fn parse(text: &str, node_id: NodeId) -> Result<Self, PeersError> {
        let mut addresses = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, address) = entry
                .split_once('@')
                .ok_or_else(|| PeersError::Malformed(entry.to_owned()))?;
            let id: NodeId = id
                .parse()
                .map_err(|_parse| PeersError::Malformed(entry.to_owned()))?;
            if id == 0 {
                return Err(PeersError::ZeroId);
            }
            let well_formed = address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !well_formed {
                return Err(PeersError::Malformed(entry.to_owned()));
            }
            if addresses.insert(id, address.to_owned()).is_some() {
                return Err(PeersError::Duplicate(id));
            }
        }
        if !VOTER_COUNTS.contains(&addresses.len()) {
            return Err(PeersError::Count(addresses.len()));
        }
        if !addresses.contains_key(&node_id) {
            return Err(PeersError::NotAVoter(node_id));
        }
        Ok(Self { addresses })
    }

    /// Peers given directly, id to address (tests and the in-process cluster).
    #[must_use]
    pub fn from_map(addresses: BTreeMap<NodeId, String>) -> Self {
        Self { addresses }
    }

    /// The voters' ids, ascending.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.addresses.keys().copied()
    }

    /// How many voters there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.addresses.len()
    }

    /// Never true for parsed peers (kept for clippy's `len_without_is_empty`).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }

    /// Where this node reaches voter `id`.
    #[must_use]
    pub fn address(&self, id: NodeId) -> Option<&str> {
        self.addresses.get(&id).map(String::as_str)
    }
}

/// The cluster flags as given.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClusterArgs {
    /// This broker's node id in a cluster (1 and up). With `--cluster-listen` and `--peers`
    /// it makes the broker one node of a cluster; without all three it runs alone.
    #[arg(long, env = "WEIR_NODE_ID")]
    pub node_id: Option<NodeId>,

    /// Where the cluster port (broker-to-broker traffic) listens, e.g. 127.0.0.1:9093.
    #[arg(long, env = "WEIR_CLUSTER_LISTEN")]
    pub cluster_listen: Option<SocketAddr>,

    /// The metadata quorum's voters and their cluster ports as this broker reaches them:
    /// `1@host:port,2@host:port,3@host:port` (1, 3 or 5 voters, this node among them).
    #[arg(long, env = "WEIR_PEERS")]
    pub peers: Option<String>,

    /// A broker not heard from by the controller for this long is fenced and its partitions
    /// have no leader until it returns, in ms (Kafka's `broker.session.timeout.ms`).
    #[arg(long, env = "WEIR_BROKER_SESSION_TIMEOUT_MS", default_value_t = 6_000)]
    pub broker_session_timeout_ms: u64,

    /// How often a broker heartbeats the controller, in ms
    /// (`broker.heartbeat.interval.ms`).
    #[arg(
        long,
        env = "WEIR_BROKER_HEARTBEAT_INTERVAL_MS",
        default_value_t = 1_000
    )]
    pub broker_heartbeat_interval_ms: u64,

    /// The metadata quorum's election timeout (lowest), in ms; each election waits a random
    /// time up to twice it (`controller.quorum.election.timeout.ms`). A follower also refuses
    /// to vote for twice this after it last heard from the leader (openraft's leader lease),
    /// so a failover takes about two to four times this: 500 ms gives 1-2 s.
    #[arg(long, env = "WEIR_ELECTION_TIMEOUT_MS", default_value_t = 500)]
    pub election_timeout_ms: u64,

    /// Replicas of each partition of a topic created without a replication factor
    /// (auto-created, or CreateTopics with -1), 1 to 5; by default 3, or fewer when the
    /// cluster has fewer brokers (Kafka's `default.replication.factor`).
    #[arg(long, env = "WEIR_DEFAULT_REPLICATION_FACTOR", value_parser = clap::value_parser!(u16).range(1..=5))]
    pub default_replication_factor: Option<u16>,

    /// Whether the controller moves each partition's leadership back to its preferred
    /// replica (the first) once that replica is in sync again (Kafka's
    /// `auto.leader.rebalance.enable`): `true` or `false`.
    #[arg(
        long,
        env = "WEIR_AUTO_LEADER_REBALANCE_ENABLE",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub auto_leader_rebalance_enable: bool,

    /// How often the controller looks for partitions not led by their preferred replica, in
    /// ms (Kafka's `leader.imbalance.check.interval.seconds`, 300 s there).
    #[arg(
        long,
        env = "WEIR_LEADER_BALANCE_INTERVAL_MS",
        default_value_t = 30_000
    )]
    pub leader_balance_interval_ms: u64,

    /// Partitions of the internal topic `__consumer_offsets` that holds committed offsets in
    /// a cluster (Kafka's `offsets.topic.num.partitions`, 50 there); read when the cluster
    /// creates the topic. Each partition is a Raft group on every one of its replicas.
    #[arg(long, env = "WEIR_OFFSETS_TOPIC_PARTITIONS", default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub offsets_topic_partitions: u32,

    /// Replicas of each `__consumer_offsets` partition, 2 to 5; by default 3, or the number
    /// of voters when fewer (Kafka's `offsets.topic.replication.factor`). The cluster creates
    /// the topic once this many brokers are live.
    #[arg(long, env = "WEIR_OFFSETS_TOPIC_REPLICATION_FACTOR",
        value_parser = clap::value_parser!(u16).range(2..=5))]
    pub offsets_topic_replication_factor: Option<u16>,
}

impl ClusterArgs {
    /// The checked cluster settings, or `None` for a single broker.
    ///
    /// # Errors
    /// When only some of the three flags are given, or one is invalid.
    pub fn settings(&self) -> Result<Option<ClusterSettings>, crate::config::ConfigError> {
        let refuse =
            |flag: &'static str, value: String, expected: String| crate::config::ConfigError {
                flag,
                env: flag.replace('-', "_").to_ascii_uppercase(),
                value,
                expected,
            };
        let (node_id, listen, peers) = match (self.node_id, self.cluster_listen, &self.peers) {
            (None, None, None) => return Ok(None),
            (Some(id), Some(listen), Some(peers)) => (id, listen, peers),
            _ => {
                return Err(refuse(
                    "node-id",
                    format!("{:?}", self.node_id),
                    "a cluster node needs --node-id, --cluster-listen and --peers together".into(),
                ));
            }
        };
        let peers = Peers::parse(peers, node_id)
            .map_err(|err| refuse("peers", peers.clone(), err.to_string()))?;
        for (flag, value, range) in [
            (
                "broker-session-timeout-ms",
                self.broker_session_timeout_ms,
                100..=3_600_000,
            ),
            (
                "broker-heartbeat-interval-ms",
                self.broker_heartbeat_interval_ms,
                10..=600_000,
            ),
            (
                "election-timeout-ms",
                self.election_timeout_ms,
                50..=600_000,
            ),
            (
                "leader-balance-interval-ms",
                self.leader_balance_interval_ms,
                100..=86_400_000,
            ),
        ] {
            if !range.contains(&value) {
                return Err(refuse(
                    flag,
                    value.to_string(),
                    format!("must be between {} and {}", range.start(), range.end()),
                ));
            }
        }
        if self.broker_heartbeat_interval_ms >= self.broker_session_timeout_ms {
            return Err(refuse(
                "broker-heartbeat-interval-ms",
                self.broker_heartbeat_interval_ms.to_string(),
                "must be below --broker-session-timeout-ms".into(),
            ));
        }
        Ok(Some(ClusterSettings {
            node_id,
            listen,
            peers,
            session_timeout: std::time::Duration::from_millis(self.broker_session_timeout_ms),
            heartbeat_interval: std::time::Duration::from_millis(self.broker_heartbeat_interval_ms),
            election_timeout: std::time::Duration::from_millis(self.election_timeout_ms),
            leader_balance: self
                .auto_leader_rebalance_enable
                .then(|| std::time::Duration::from_millis(self.leader_balance_interval_ms)),
        }))
    }
}

/// The cluster part of a broker's configuration: present only when `--node-id` is given.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// This node's id (1 and up).
    pub node_id: NodeId,
    /// Where the cluster port listens.
    pub listen: SocketAddr,
    /// The voters.
    pub peers: Peers,
    /// A broker that has not heartbeaten the controller for this long is fenced: its
    /// partitions have no leader until it comes back (Kafka's `broker.session.timeout.ms`).
    pub session_timeout: std::time::Duration,
    /// How often a broker heartbeats the controller.
    pub heartbeat_interval: std::time::Duration,
    /// Raft election timeout, lower bound (upper bound is twice it).
    pub election_timeout: std::time::Duration,
    /// How often the controller moves leadership back to preferred replicas; `None` when
    /// automatic leader balancing is off.
    pub leader_balance: Option<std::time::Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_three_voters() {
        let peers = Peers::parse("1@127.0.0.1:9093, 2@127.0.0.1:9094,3@h:1", 2).unwrap();
        assert_eq!(peers.ids().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(peers.address(3), Some("h:1"));
    }

    #[test]
    fn refuses_bad_lists() {
        assert_eq!(
            Peers::parse("1@a:1,2@b:2", 1),
            Err(PeersError::Count(2)),
            "two voters cannot survive one failure"
        );
        assert_eq!(
            Peers::parse("1@a:1,1@b:2,3@c:3", 1),
            Err(PeersError::Duplicate(1))
        );
        assert_eq!(Peers::parse("0@a:1", 0), Err(PeersError::ZeroId));
        assert!(matches!(
            Peers::parse("1-a:1", 1),
            Err(PeersError::Malformed(_))
        ));
        assert!(matches!(
            Peers::parse("1@a", 1),
            Err(PeersError::Malformed(_))
        ));
        assert_eq!(Peers::parse("1@a:1", 2), Err(PeersError::NotAVoter(2)));
    }
}
