//! A cluster of real `weir-broker` processes on loopback, for the cluster's fault tests.
//!
//! Owns `N` [`BrokerProcess`]es, nodes `1..=N`, each with its own data directory, log file,
//! Kafka port, HTTP port (`--http-listen`) and cluster port, all fixed for the harness's life
//! so a restarted node comes back where it was; and the [`ClusterLinks`] between them, direct
//! or each directed link through its own [`crate::fault_proxy::FaultProxy`]. It kills
//! (`SIGKILL`), pauses (`SIGSTOP`), resumes, restarts and wipes nodes; it does not check what
//! the cluster does (see [`crate::history`]).
//!
//! # Invariants
//!
//! - Node `i`'s flags are `--node-id i --cluster-listen <its cluster address> --peers <list>`,
//!   the list from [`ClusterLinks::peers_arg`] (its own entry its real address).
//! - Dropping a `ClusterProcs` kills every node still running (each [`BrokerProcess`] does)
//!   and stops the proxies: a failing test leaves nothing behind.

mod links;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use links::ClusterLinks;

use crate::fault_proxy::FaultProxy;
use crate::history::{FetchError, PrefixReport, RaftStatus, check_statuses, fetch_raft_status};
use crate::process::{BrokerProcess, free_port};
use links::{ids, index};

/// Most nodes a test cluster has: enough for any quorum test, few enough for two cores.
pub const NODES_MAX: usize = 9;

/// How nodes reach each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Straight to each other's cluster ports.
    Direct,
    /// Each directed link through its own fault proxy, the proxies seeded from `seed`.
    Proxied { seed: u64 },
}

/// Whether the nodes are told of each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// One cluster: each node gets `--node-id`, `--cluster-listen` and `--peers`.
    Cluster,
    /// `N` independent brokers without the cluster flags (ports and directories as for a
    /// cluster): for tests that need several separate brokers, and for the harness's own test.
    Standalone,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// How many nodes, `1..=NODES_MAX` (a cluster's voters are 1, 3 or 5: the broker
    /// refuses other counts at start-up).
    pub nodes: usize,
    pub links: Links,
    pub membership: Membership,
    /// Further flags for every node.
    pub extra_args: Vec<String>,
    /// Further environment variables for every node.
    pub extra_env: Vec<(String, String)>,
}

impl ClusterOptions {
    /// `nodes` nodes in one cluster, linked directly.
    pub fn new(nodes: usize) -> Self {
        Self {
            nodes,
            links: Links::Direct,
            membership: Membership::Cluster,
            extra_args: Vec::new(),
            extra_env: Vec::new(),
        }
    }

    /// Every directed link through its own fault proxy, seeded from `seed`.
    #[must_use]
    pub fn proxied(mut self, seed: u64) -> Self {
        self.links = Links::Proxied { seed };
        self
    }

    /// Independent brokers, no cluster flags.
    #[must_use]
    pub fn standalone(mut self) -> Self {
        self.membership = Membership::Standalone;
        self
    }

    /// One more flag (or flag value) for every node.
    #[must_use]
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra_args.push(arg.to_owned());
        self
    }

    /// One more environment variable for every node.
    #[must_use]
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.extra_env.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// Where one node lives, for all its runs.
#[derive(Debug, Clone)]
struct Places {
    id: u64,
    data_dir: PathBuf,
    log_path: PathBuf,
    http: SocketAddr,
}

/// The running nodes and their links.
#[derive(Debug)]
pub struct ClusterProcs {
    options: ClusterOptions,
    places: Vec<Places>,
    /// Node `id` at `id - 1`.
    nodes: Vec<BrokerProcess>,
    /// Whether node `id` (at `id - 1`) is stopped by `SIGSTOP`: not asked for its status.
    paused: Vec<bool>,
    /// Dropped after the nodes (field order), so no node sees its peers' proxies vanish
    /// before it is killed.
    links: ClusterLinks,
}

impl ClusterProcs {
    /// Starts the nodes, all at once (a node may wait for its peers before it listens), with
    /// their directories and logs under `root` (`node-<id>/data`, `node-<id>.log`).
    ///
    /// # Panics
    /// If `options.nodes` is not in `1..=NODES_MAX`, a proxy cannot be set up, or a node
    /// does not start listening (its log is in the message).
    pub fn start(root: &Path, options: ClusterOptions) -> Self {
        assert!(
            (1..=NODES_MAX).contains(&options.nodes),
            "a test cluster has 1..={NODES_MAX} nodes, not {}",
            options.nodes
        );
        let mut taken = Vec::new();
        let mut port = || distinct_port(&mut taken);
        let cluster_addrs: Vec<SocketAddr> = ids(options.nodes).map(|_| loopback(port())).collect();
        let places: Vec<Places> = ids(options.nodes)
            .map(|id| Places {
                id,
                data_dir: root.join(format!("node-{id}")).join("data"),
                log_path: root.join(format!("node-{id}.log")),
                http: loopback(port()),
            })
            .collect();
        let links = match options.links {
            Links::Direct => ClusterLinks::direct(cluster_addrs),
            Links::Proxied { seed } => ClusterLinks::proxied(cluster_addrs, seed)
                .unwrap_or_else(|err| panic!("start the fault proxies: {err}")),
        };
        for place in &places {
            std::fs::create_dir_all(&place.data_dir)
                .unwrap_or_else(|err| panic!("create {}: {err}", place.data_dir.display()));
        }
        let nodes = std::thread::scope(|scope| {
            let starting: Vec<_> = places
                .iter()
                .map(|place| {
                    let args = node_args(&options, &links, place);
                    let env = &options.extra_env;
                    scope.spawn(move || start_node(place, &args, env))
                })
                .collect();
            starting
                .into_iter()
                .map(|start| {
                    start
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        Self {
            paused: vec![false; options.nodes],
            options,
            places,
            nodes,
            links,
        }
    }

    /// The node ids, `1..=N`.
    pub fn ids(&self) -> impl Iterator<Item = u64> {
        ids(self.options.nodes)
    }

    /// Every node's Kafka address, `host:port,host:port,…`, for a client's bootstrap list.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(BrokerProcess::bootstrap)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Node `id`'s process (its Kafka address, pid, log).
    ///
    /// # Panics
    /// If there is no node `id` (here and in every method taking an id).
    pub fn node(&self, id: u64) -> &BrokerProcess {
        self.nodes
            .get(index(id))
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn node_mut(&mut self, id: u64) -> &mut BrokerProcess {
        self.nodes
            .get_mut(index(id))
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn places(&self, id: u64) -> &Places {
        self.places
            .get(index(id))
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Node `id`'s Kafka address.
    pub fn kafka_addr(&self, id: u64) -> SocketAddr {
        self.node(id).addr()
    }

    /// Node `id`'s HTTP address.
    pub fn http_addr(&self, id: u64) -> SocketAddr {
        self.places(id).http
    }

    /// Node `id`'s real cluster address (not a proxy's).
    pub fn cluster_addr(&self, id: u64) -> SocketAddr {
        self.links.cluster_addr(id)
    }

    /// Node `id`'s data directory.
    pub fn data_dir(&self, id: u64) -> &Path {
        &self.places(id).data_dir
    }

    /// The links, for faults over several proxies (partitions, isolation, healing all).
    pub fn links(&self) -> &ClusterLinks {
        &self.links
    }

    /// The proxy of the directed link `from -> to`.
    ///
    /// # Panics
    /// If the links are direct.
    pub fn proxy(&self, from: u64, to: u64) -> &FaultProxy {
        self.links.proxy(from, to)
    }

    /// `SIGKILL` node `id` (running or paused) and reap it.
    pub fn kill9(&mut self, id: u64) {
        self.node_mut(id).kill9();
        self.paused[index(id)] = false;
    }

    /// `SIGSTOP` node `id`: it holds its sockets and answers nothing.
    pub fn pause(&mut self, id: u64) {
        self.node(id).signal("STOP");
        self.paused[index(id)] = true;
    }

    /// `SIGCONT` node `id` after [`Self::pause`].
    pub fn resume(&mut self, id: u64) {
        self.node(id).signal("CONT");
        self.paused[index(id)] = false;
    }

    /// Whether node `id` runs and is not paused.
    pub fn is_up(&self, id: u64) -> bool {
        self.node(id).is_running() && !self.paused[index(id)]
    }

    /// Stops node `id` with `SIGTERM` (resuming it first if paused); whether it exited with
    /// status 0. A node already down is left alone (and counts as a clean stop).
    pub fn stop(&mut self, id: u64) -> bool {
        let clean = self.node_mut(id).stop();
        self.paused[index(id)] = false;
        clean
    }

    /// Starts node `id` again, same directory, ports and flags (after a kill or a stop).
    pub fn restart(&mut self, id: u64) {
        self.node_mut(id).restart();
    }

    /// Starts every node that is not running, all at once: a node may wait for its peers
    /// before it listens, so after a whole-cluster crash one start after another could wait
    /// for a quorum that never comes.
    ///
    /// # Panics
    /// If a node does not start (its log is in the message).
    pub fn restart_stopped(&mut self) {
        std::thread::scope(|scope| {
            for node in self.nodes.iter_mut().filter(|n| !n.is_running()) {
                scope.spawn(move || node.restart());
            }
        });
    }

    /// Kills node `id` if it runs, empties its data directory and starts it again: a node
    /// that lost its disk and rejoins under the same id and addresses.
    pub fn wipe_and_restart(&mut self, id: u64) {
        if self.node(id).is_running() {
            self.kill9(id);
        }
        let dir = self.places(id).data_dir.clone();
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => panic!("wipe {}: {err}", dir.display()),
        }
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|err| panic!("create {}: {err}", dir.display()));
        self.restart(id);
    }

    /// Stops every running node with `SIGTERM` (resuming paused ones first); whether all
    /// exited with status 0.
    pub fn stop_all(&mut self) -> bool {
        // Every node is stopped, whatever the earlier ones returned (no short circuit).
        let exits: Vec<bool> = self.nodes.iter_mut().map(BrokerProcess::stop).collect();
        self.paused.fill(false);
        exits.into_iter().all(|ok| ok)
    }

    /// Node `id`'s `GET /v1/cluster/raft`.
    ///
    /// # Errors
    /// As [`fetch_raft_status`].
    pub fn raft_status(&self, id: u64) -> Result<RaftStatus, FetchError> {
        fetch_raft_status(self.http_addr(id))
    }

    /// The Raft status of every node that is up, by id.
    ///
    /// # Errors
    /// The first node whose status cannot be fetched.
    pub fn raft_statuses(&self) -> Result<Vec<RaftStatus>, FetchError> {
        self.ids()
            .filter(|&id| self.is_up(id))
            .map(|id| self.raft_status(id))
            .collect()
    }

    /// [`check_statuses`] over the nodes that are up: is every node's applied metadata a
    /// prefix of the others'?
    ///
    /// # Errors
    /// As [`Self::raft_statuses`].
    pub fn check_history(&self) -> Result<PrefixReport, FetchError> {
        Ok(check_statuses(&self.raft_statuses()?))
    }

    /// Every node's log and the links' fault logs (with their seed), for a failing test.
    pub fn report(&self) -> String {
        let mut out = self.links.report();
        for (id, node) in self.ids().zip(&self.nodes) {
            let _infallible = write!(
                out,
                "\n===== node {id} ({})\n{}",
                node.addr(),
                node.log_text()
            );
        }
        out
    }
}

/// Node `place.id`'s flags, besides `--listen` and `--data-dir` (which [`BrokerProcess`] gives).
fn node_args(options: &ClusterOptions, links: &ClusterLinks, place: &Places) -> Vec<String> {
    let mut args = vec!["--http-listen".to_owned(), place.http.to_string()];
    if options.membership == Membership::Cluster {
        args.extend([
            "--node-id".to_owned(),
            place.id.to_string(),
            "--cluster-listen".to_owned(),
            links.cluster_addr(place.id).to_string(),
            "--peers".to_owned(),
            links.peers_arg(place.id),
        ]);
    }
    args.extend(options.extra_args.iter().cloned());
    args
}

fn start_node(place: &Places, args: &[String], env: &[(String, String)]) -> BrokerProcess {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    BrokerProcess::start_with_env(&place.data_dir, &place.log_path, &args, &env)
}

/// A free port not already handed out by this harness.
fn distinct_port(taken: &mut Vec<u16>) -> u16 {
    loop {
        let port = free_port();
        if !taken.contains(&port) {
            taken.push(port);
            return port;
        }
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_links_give_each_node_its_own_address_and_its_proxies() {
        let addrs: Vec<SocketAddr> = (1..=3).map(|i| loopback(40_000 + i)).collect();
        let links = ClusterLinks::proxied(addrs.clone(), 9).unwrap();
        let place = Places {
            id: 2,
            data_dir: PathBuf::from("/d"),
            log_path: PathBuf::from("/l"),
            http: loopback(1),
        };
        let options = ClusterOptions::new(3).proxied(9).arg("--flush").arg("os");
        let args = node_args(&options, &links, &place);
        let peers = format!(
            "1@{},2@{},3@{}",
            links.proxy(2, 1).addr(),
            addrs[1],
            links.proxy(2, 3).addr()
        );
        let expected = [
            "--http-listen",
            "127.0.0.1:1",
            "--node-id",
            "2",
            "--cluster-listen",
            "127.0.0.1:40002",
            "--peers",
            &peers,
            "--flush",
            "os",
        ];
        assert_eq!(args, expected);
        assert_eq!(links.proxy(2, 3).upstream(), addrs[2]);
        assert_eq!(links.proxy(3, 2).upstream(), addrs[1]);
        assert_ne!(links.proxy(2, 3).seed(), links.proxy(3, 2).seed());

        let direct = ClusterLinks::direct(addrs.clone());
        assert_eq!(
            direct.peers_arg(1),
            format!("1@{},2@{},3@{}", addrs[0], addrs[1], addrs[2])
        );
        let standalone = ClusterOptions::new(3).standalone();
        assert_eq!(
            node_args(&standalone, &direct, &place),
            ["--http-listen", "127.0.0.1:1"]
        );
    }
}
