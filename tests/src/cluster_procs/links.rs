//! The links between a test cluster's nodes: direct, or each directed link through its own
//! [`FaultProxy`].
//!
//! Owns the `--peers` list each node is given and, when proxied, the `N * (N - 1)` proxies and
//! the runtime they run on (its own, so the harness works from sync and async tests alike).
//!
//! # How a link gets its proxy
//!
//! Node `i` reaches node `j` at the address `i`'s own `--peers` list gives for `j`. So node
//! `i`'s list names its own real cluster address for itself and proxy `P(i->j)`'s address for
//! every other `j`; `P(i->j)` forwards to `j`'s real cluster address. Everything `i` opens to
//! `j` (its requests, `j`'s answers on the same connection) goes through `P(i->j)`, and what
//! `j` opens to `i` through `P(j->i)`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;

use tokio::runtime::Runtime;
use weir_client::random::{JitterSource, SplitMix64};

use crate::fault_proxy::{Direction, Fault, FaultProxy};

/// The links of a cluster of nodes `1..=N`.
#[derive(Debug)]
pub struct ClusterLinks {
    /// Node `id`'s real cluster address at `id - 1`.
    cluster_addrs: Vec<SocketAddr>,
    /// `(from, to)` -> the proxy of that directed link; empty when the links are direct.
    proxies: BTreeMap<(u64, u64), FaultProxy>,
    /// The seed the proxies' seeds are derived from.
    seed: u64,
    /// Runs the proxies; `None` when direct. Shut down in the background when dropped, which
    /// is allowed inside an async test, unlike dropping a runtime.
    runtime: Option<Runtime>,
}

impl ClusterLinks {
    /// Nodes reach each other directly at `cluster_addrs` (node `id` at index `id - 1`).
    pub fn direct(cluster_addrs: Vec<SocketAddr>) -> Self {
        Self {
            cluster_addrs,
            proxies: BTreeMap::new(),
            seed: 0,
            runtime: None,
        }
    }

    /// Every directed link through its own healthy proxy, proxy `P(i->j)` seeded from `seed`
    /// and `(i, j)`.
    ///
    /// # Errors
    /// If the runtime or a proxy's listener cannot be set up.
    pub fn proxied(cluster_addrs: Vec<SocketAddr>, seed: u64) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fault-proxy")
            .enable_all()
            .build()?;
        let mut proxies = BTreeMap::new();
        for from in ids(cluster_addrs.len()) {
            for to in ids(cluster_addrs.len()).filter(|&to| to != from) {
                let upstream = cluster_addrs[index(to)];
                let proxy =
                    FaultProxy::start(runtime.handle(), upstream, link_seed(seed, from, to))?;
                proxies.insert((from, to), proxy);
            }
        }
        Ok(Self {
            cluster_addrs,
            proxies,
            seed,
            runtime: Some(runtime),
        })
    }

    /// Whether the links go through proxies.
    pub fn is_proxied(&self) -> bool {
        !self.proxies.is_empty()
    }

    /// Node `id`'s real cluster address (what it listens on).
    ///
    /// # Panics
    /// If there is no node `id`.
    pub fn cluster_addr(&self, id: u64) -> SocketAddr {
        self.cluster_addrs[index(id)]
    }

    /// The `--peers` value for node `me`: `id@addr` for every node, its own real address for
    /// itself, the proxy of link `me -> id` for the others when proxied.
    pub fn peers_arg(&self, me: u64) -> String {
        ids(self.cluster_addrs.len())
            .map(|id| {
                let addr = match self.proxies.get(&(me, id)) {
                    Some(proxy) => proxy.addr(),
                    None => self.cluster_addr(id),
                };
                format!("{id}@{addr}")
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The proxy of the directed link `from -> to` (what `from` opens to `to`).
    ///
    /// # Panics
    /// If the links are direct, or there is no such link.
    pub fn proxy(&self, from: u64, to: u64) -> &FaultProxy {
        self.proxies.get(&(from, to)).unwrap_or_else(|| {
            panic!(
                "no proxied link {from} -> {to} (links proxied: {})",
                self.is_proxied()
            )
        })
    }

    /// Every byte `from` sends to `to` is lost, whichever side opened the connection; `to`'s
    /// bytes still reach `from`.
    pub fn partition_one_way(&self, from: u64, to: u64) {
        self.proxy(from, to)
            .set(Fault::Blackhole(Direction::ToUpstream));
        self.proxy(to, from)
            .set(Fault::Blackhole(Direction::FromUpstream));
    }

    /// Nothing passes between `a` and `b`, either way.
    pub fn partition(&self, a: u64, b: u64) {
        self.proxy(a, b).set(Fault::BlackholeBoth);
        self.proxy(b, a).set(Fault::BlackholeBoth);
    }

    /// Nothing passes between `id` and any other node.
    pub fn isolate(&self, id: u64) {
        for other in ids(self.cluster_addrs.len()).filter(|&other| other != id) {
            self.partition(id, other);
        }
    }

    /// Every proxy back to healthy.
    pub fn heal_all(&self) {
        for proxy in self.proxies.values() {
            if proxy.fault() != Fault::Healthy {
                proxy.heal();
            }
        }
    }

    /// The seed and every proxy's fault log (those that applied any), for a failing test.
    pub fn report(&self) -> String {
        let mut out = format!("cluster links seed {}\n", self.seed);
        for ((from, to), proxy) in &self.proxies {
            if !proxy.events().is_empty() {
                let _infallible = write!(out, "link {from} -> {to}: {}", proxy.report());
            }
        }
        out
    }
}

impl Drop for ClusterLinks {
    fn drop(&mut self) {
        self.proxies.clear();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Node ids `1..=nodes`.
pub(super) fn ids(nodes: usize) -> impl Iterator<Item = u64> {
    1..=nodes as u64
}

/// Where node `id` is kept in per-node vectors.
pub(super) fn index(id: u64) -> usize {
    usize::try_from(id).unwrap_or(usize::MAX).wrapping_sub(1)
}

/// Proxy `P(from->to)`'s seed: the cluster's seed mixed with the link.
fn link_seed(seed: u64, from: u64, to: u64) -> u64 {
    SplitMix64::new(seed ^ (from << 32 | to)).next_u64()
}
