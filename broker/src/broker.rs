//! The composition root: the one place where a broker is assembled from its parts.
//!
//! Owns the order of start-up and shutdown, and the choice of the three seams every store
//! shares: the disk ([`Disk`]: allocation, writes, syncs), the wall clock ([`Clock`]) and the
//! sync threads ([`Flusher`]). [`Broker::builder`] takes them (the real ones by default) and
//! threads each to everything that uses it: the topic catalog's [`LogOptions`], the
//! committed-offsets store, the cluster-id file, producer-id blocks, the group coordinator's
//! timers and the request handlers' context.
//!
//! Start-up: check the configuration, lock the data directory (before anything in it is
//! read), read the dynamic broker configs, open the catalog (recovering logs, each topic with
//! its configs), the cluster id, the producer-id allocator and the
//! offsets store, bind the listener last, then run the server ([`crate::server`]) with the
//! background upkeep ([`maintenance`]), the log cleaner ([`cleaner`]) and the group timers
//! beside it. Shutdown, in reverse:
//! the server drains its connections and requests, then the upkeep and timers end, the
//! offsets store and the logs are closed, and only then is the directory lock released.
//!
//! Does no network I/O (the server owns the listener once bound) and decides nothing about
//! requests. Invariants: a client that can connect finds every topic and the offsets open;
//! the lock is held from before the first read of the directory until every file is closed;
//! nothing under `crate::server` constructs a disk, a clock or a flusher of its own.

mod cleaner;
mod cluster_id;
mod cluster_node;
mod dir_lock;
mod maintenance;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::config::{BrokerConfig, ConfigError};
use crate::groups::offsets::{
    OffsetStore, OffsetStoreConfig, OffsetStoreError, OffsetStoreOptions,
};
use crate::groups::service::GroupService;
use crate::http::{self, HttpState};
use crate::log::LogOptions;
use crate::metrics::{Metrics, ScrapeSource, Sources};
use crate::producers::{ProducerIdError, ProducerIds};
use crate::server::{self, Context, ContextParts};
use crate::storage::{Disk, Flusher, OsDisk};
use crate::topics::config::BrokerConfigStore;
use crate::topics::{CatalogError, TopicCatalog};
use dir_lock::DirLock;
pub use dir_lock::DirLockError;

/// The committed-offsets store's directory inside the data directory.
const OFFSETS_DIR: &str = "__consumer_offsets";

/// Sync threads of the default [`Flusher`], shared by every log and the offsets store.
const FLUSHER_THREADS: usize = 2;

/// Why the broker could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// A setting is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory is locked by another broker, or its lock could not be taken.
    #[error(transparent)]
    DirLock(#[from] DirLockError),
    /// Binding the listener failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Opening or closing the topic catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The committed-offsets store could not be opened.
    #[error(transparent)]
    Offsets(#[from] OffsetStoreError),
    /// The producer-id allocator could not be opened.
    #[error(transparent)]
    ProducerIds(#[from] ProducerIdError),
    /// The metadata quorum could not start.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::StartError),
    /// The data directory holds topics of a single broker, which a cluster node cannot
    /// serve (their placement and ids are the cluster's).
    #[error(
        "the data directory holds single-broker topics ({0}); a cluster node needs a new data directory"
    )]
    NotAClusterDirectory(String),
    /// Reading or writing the broker's own files failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A Weir broker, ready to start with the real disk, clock and sync threads.
#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
}

/// A broker being assembled: its configuration and the seams to build it on. Each seam not
/// given is the real one ([`OsDisk`], [`SystemClock`], a [`Flusher`] of its own).
#[derive(Debug)]
pub struct BrokerBuilder {
    config: BrokerConfig,
    disk: Option<Arc<dyn Disk>>,
    clock: Option<Arc<dyn Clock>>,
    flusher: Option<Arc<Flusher>>,
    /// The network between cluster nodes: TCP to `--peers` unless a test injects one.
    cluster_network: Option<crate::cluster::net::mem::MemNetwork>,
}

/// A running broker: its address and the means to stop it.
#[derive(Debug)]
pub struct RunningBroker {
    addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    stop: CancellationToken,
    done: tokio::task::JoinHandle<Result<(), BrokerError>>,
    ctx: Arc<Context>,
}

/// Counters of a running broker, for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Long-polling fetches parked now, waiting for an append to one of their partitions.
    pub parked_fetches: u64,
    /// Times a parked fetch was woken by an append to one of its partitions, since start.
    pub fetch_wakeups: u64,
    /// Times a woken fetch read its whole request again, since start: only once the
    /// partitions appended to may have brought `min_bytes`.
    pub fetch_rereads: u64,
}

impl Broker {
    /// A broker with this configuration.
    pub fn new(config: BrokerConfig) -> Self {
        Self { config }
    }

    /// A broker with this configuration, whose disk, clock or sync threads may be chosen
    /// before it starts (failure injection, manual time).
    pub fn builder(config: BrokerConfig) -> BrokerBuilder {
        BrokerBuilder {
            config,
            disk: None,
            clock: None,
            flusher: None,
            cluster_network: None,
        }
    }

    /// Starts with the real disk, clock and sync threads: [`BrokerBuilder::start`].
    ///
    /// # Errors
    /// As [`BrokerBuilder::start`].
    pub async fn start(self) -> Result<RunningBroker, BrokerError> {
        Self::builder(self.config).start().await
    }
}

/// The stores of one data directory, open, and the lock that guards them.
struct Stores {
    lock: DirLock,
    catalog: TopicCatalog,
    cluster_id: String,
    producer_ids: ProducerIds,
    offsets: OffsetStore,
}

impl BrokerBuilder {
    /// File allocation, writes and syncs of every store ([`FaultyDisk`] injects failures).
    ///
    /// [`FaultyDisk`]: crate::storage::FaultyDisk
    #[must_use]
    pub fn disk(mut self, disk: Arc<dyn Disk>) -> Self {
        self.disk = Some(disk);
        self
    }

    /// Wall-clock time: segment rolls, retention by age, group sessions and rebalances,
    /// commit timestamps ([`ManualClock`] moves only when told).
    ///
    /// [`ManualClock`]: crate::clock::ManualClock
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The sync threads shared by every log and the offsets store. The broker does not stop
    /// them: they end when the last reference is dropped (so one flusher may serve brokers
    /// started one after the other).
    #[must_use]
    pub fn flusher(mut self, flusher: Arc<Flusher>) -> Self {
        self.flusher = Some(flusher);
        self
    }

    /// In a cluster: reach the other nodes through this in-process network instead of TCP
    /// (the cluster port is not bound; tests cut and heal its links).
    #[must_use]
    pub fn cluster_network(mut self, network: crate::cluster::net::mem::MemNetwork) -> Self {
        self.cluster_network = Some(network);
        self
    }

    /// Checks the configuration, locks the data directory (refused if another broker holds
    /// it), opens it (recovering logs as needed), binds the listener and starts serving. The
    /// lock is held until the broker has stopped. Must be called inside a Tokio runtime.
    ///
    /// # Errors
    /// A setting out of range, the directory locked or unreadable, a store that cannot be
    /// opened, or an address that cannot be bound.
    pub async fn start(self) -> Result<RunningBroker, BrokerError> {
        let config = self.config;
        config.validate()?;
        let disk = self.disk.unwrap_or_else(|| Arc::new(OsDisk));
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let flusher = self
            .flusher
            .unwrap_or_else(|| Flusher::new(FLUSHER_THREADS));
        let metrics = Arc::new(Metrics::new());
        let disk = metrics.meter_disk(disk);
        let ready = Arc::new(AtomicBool::new(false));
        // Stops the HTTP listener once the broker has stopped, or now if the start fails.
        let http_stop = CancellationToken::new();
        let http_guard = http_stop.clone().drop_guard();
        // Bound before the stores open, so /health answers during a long recovery.
        let http_ctx = Arc::new(OnceLock::new());
        let state = HttpState {
            metrics: Arc::clone(&metrics),
            ready: Arc::clone(&ready),
            ctx: Arc::clone(&http_ctx),
        };
        let http_addr = start_http(&config, state, &http_stop).await?;
        let stores = open_stores_blocking(&config, &disk, &clock, flusher).await?;
        // Bound last: a client that can connect finds every topic and the offsets open.
        let (listener, addr) = bind_kafka(config.listen).await?;
        let groups = Arc::new(GroupService::new(config.group_config(), Arc::clone(&clock)));
        let Stores {
            lock,
            catalog,
            cluster_id,
            producer_ids,
            offsets,
        } = stores;
        let catalog = Arc::new(catalog);
        let cluster =
            cluster_node::start(&config, addr, &catalog, &disk, self.cluster_network).await?;
        let offsets = Arc::new(offsets);
        let ctx = Arc::new(Context::new(ContextParts {
            config,
            bound: addr,
            catalog,
            cluster_id,
            producer_ids,
            groups,
            offsets,
            clock,
            disk,
            metrics: Arc::clone(&metrics),
            cluster,
        }));
        attach_observers(&ctx, &metrics, &http_ctx);
        tracing::info!(%addr, data_dir = %ctx.config.data_dir.display(), "weir-broker listening");
        tracing::debug!(cleaner = ?ctx.cleaner_settings(), "log cleaner settings in force");
        let stop = CancellationToken::new();
        ready.store(true, Ordering::Release);
        let unready = stop.clone();
        tokio::spawn(async move {
            unready.cancelled().await;
            // Load balancers stop sending new clients as soon as shutdown starts.
            ready.store(false, Ordering::Release);
        });
        let http_stop = http_guard.disarm();
        let running_ctx = Arc::clone(&ctx);
        let running_stop = stop.clone();
        let done = tokio::spawn(async move {
            let result = run(listener, ctx, running_stop, lock).await;
            http_stop.cancel();
            result
        });
        Ok(RunningBroker {
            addr,
            http_addr,
            stop,
            done,
            ctx: running_ctx,
        })
    }
}

/// Binds the Kafka listener.
async fn bind_kafka(listen: SocketAddr) -> Result<(TcpListener, SocketAddr), BrokerError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| BrokerError::Bind {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| BrokerError::Io {
        op: "read bound address",
        source,
    })?;
    Ok((listener, addr))
}

/// Hands the running broker's state to the metrics' scrape and the HTTP API (weakly: they
/// must not keep a stopped broker's stores alive).
fn attach_observers(ctx: &Arc<Context>, metrics: &Metrics, http_ctx: &OnceLock<Weak<Context>>) {
    let source: Weak<dyn ScrapeSource> = Arc::downgrade(ctx) as Weak<dyn ScrapeSource>;
    metrics.attach(Sources { source });
    // Set once: this start made the slot.
    if http_ctx.set(Arc::downgrade(ctx)).is_err() {
        tracing::warn!("the HTTP API's context was set twice");
    }
}

/// Binds and starts the HTTP listener as `--http-listen` says; returns its address, or
/// `None` when there is none (off, or the default address taken).
async fn start_http(
    config: &BrokerConfig,
    state: HttpState,
    stop: &CancellationToken,
) -> Result<Option<SocketAddr>, BrokerError> {
    let bound = http::bind(&config.http())
        .await
        .map_err(|(addr, source)| BrokerError::Bind { addr, source })?;
    let Some((listener, addr)) = bound else {
        return Ok(None);
    };
    tracing::info!(%addr, "http listening");
    tokio::spawn(http::serve(listener, state, stop.clone()));
    Ok(Some(addr))
}

/// [`open_stores`] on a blocking thread: recovery may take seconds, and the HTTP listener's
/// `/health` must keep answering meanwhile.
async fn open_stores_blocking(
    config: &BrokerConfig,
    disk: &Arc<dyn Disk>,
    clock: &Arc<dyn Clock>,
    flusher: Arc<Flusher>,
) -> Result<Stores, BrokerError> {
    let config = config.clone();
    let (disk, clock) = (Arc::clone(disk), Arc::clone(clock));
    tokio::task::spawn_blocking(move || open_stores(&config, &disk, &clock, flusher))
        .await
        .map_err(|join| BrokerError::Io {
            op: "open stores",
            source: std::io::Error::other(join.to_string()),
        })?
}

/// Locks the data directory and opens every store in it on the chosen seams.
fn open_stores(
    config: &BrokerConfig,
    disk: &Arc<dyn Disk>,
    clock: &Arc<dyn Clock>,
    flusher: Arc<Flusher>,
) -> Result<Stores, BrokerError> {
    // Before anything in the directory is read: recovery must never run on the files of a
    // broker that is serving them.
    let lock = DirLock::acquire(&config.data_dir)?;
    // The cleaner's flags set its static settings; dynamic broker configs replace them live.
    let broker_configs = BrokerConfigStore::open(
        &config.data_dir,
        Arc::clone(disk),
        config.cleaner_settings(),
    )
    .map_err(CatalogError::from)?;
    let mut catalog_options = config.catalog_options();
    catalog_options.broker_configs = Some(Arc::new(broker_configs));
    let catalog = TopicCatalog::open_with(
        &config.data_dir,
        LogOptions {
            config: config.log_config(),
            flusher: Arc::clone(&flusher),
            disk: Arc::clone(disk),
            clock: Arc::clone(clock),
        },
        catalog_options,
    )?;
    let cluster_id =
        cluster_id::cluster_id(&config.data_dir, &**disk).map_err(|source| BrokerError::Io {
            op: "read or write cluster id",
            source,
        })?;
    let producer_ids = ProducerIds::open(&config.data_dir)?;
    let offsets = OffsetStore::open_with(
        &config.data_dir.join(OFFSETS_DIR),
        OffsetStoreOptions {
            disk: Arc::clone(disk),
            flusher,
            config: OffsetStoreConfig::default(),
        },
    )?;
    Ok(Stores {
        lock,
        catalog,
        cluster_id,
        producer_ids,
        offsets,
    })
}

/// The broker's life after start: the server with the upkeep and the group timers beside
/// it, then the stores closed in order and the lock released.
async fn run(
    listener: TcpListener,
    ctx: Arc<Context>,
    stop: CancellationToken,
    lock: DirLock,
) -> Result<(), BrokerError> {
    let upkeep = tokio::spawn(maintenance::run(Arc::clone(&ctx), stop.clone()));
    let compaction = tokio::spawn(cleaner::run(Arc::clone(&ctx), stop.clone()));
    let group_timers = tokio::spawn(Arc::clone(&ctx.groups).run_timers(stop.clone()));
    if let Some(node) = &ctx.cluster {
        // A replicated partition's records become readable when its group commits them:
        // that wakes the fetches parked on it.
        let woken = Arc::downgrade(&ctx);
        node.replicas()
            .set_commit_listener(Arc::new(move |topic: &str, partition: i32| {
                if let Some(ctx) = woken.upgrade() {
                    ctx.appended.appended(topic, partition);
                }
            }));
    }
    let cluster_tasks = spawn_cluster_tasks(&ctx, &stop);
    server::serve(listener, Arc::clone(&ctx), stop).await;
    // In the order they were started: the reconciler first, so no local log changes
    // under the others while they stop.
    for (what, task) in cluster_tasks {
        if let Err(join) = task.await {
            tracing::error!(error = %join, "{what} failed");
        }
    }
    if let Some(node) = &ctx.cluster {
        node.shutdown().await;
    }
    if let Err(join) = upkeep.await {
        tracing::error!(error = %join, "maintenance task failed");
    }
    if let Err(join) = compaction.await {
        tracing::error!(error = %join, "log cleaner task failed");
    }
    if let Err(join) = group_timers.await {
        tracing::error!(error = %join, "group timer task failed");
    }
    let closed = close_stores(&ctx).await;
    // Released only once every log is closed: a broker started next on this directory must
    // not find files still being written.
    drop(lock);
    closed
}

/// The cluster's background tasks, each with what it is (for its failure's log line), the
/// reconciler first; none without a cluster.
fn spawn_cluster_tasks(
    ctx: &Arc<Context>,
    stop: &CancellationToken,
) -> Vec<(&'static str, tokio::task::JoinHandle<()>)> {
    let Some(node) = &ctx.cluster else {
        return Vec::new();
    };
    let mut tasks = vec![(
        "cluster reconciler",
        tokio::spawn(crate::cluster::reconcile::run(
            Arc::clone(node),
            Arc::clone(&ctx.catalog),
            Arc::clone(&ctx.offsets),
            stop.clone(),
        )),
    )];
    if ctx.replicated_offsets.is_some() {
        // Loads the offsets partitions this broker comes to lead, and creates the topic.
        tasks.push((
            "offsets partitions' coordinator",
            tokio::spawn(server::run_offsets_coordinator(
                Arc::clone(ctx),
                stop.clone(),
            )),
        ));
    }
    tasks.push((
        "partition leadership reports",
        tokio::spawn(crate::cluster::replica::report::run(
            Arc::clone(node),
            stop.clone(),
        )),
    ));
    let balance = ctx
        .config
        .cluster
        .settings()
        .ok()
        .flatten()
        .and_then(|s| s.leader_balance);
    if let Some(interval) = balance {
        tasks.push((
            "leader balancing",
            tokio::spawn(crate::cluster::replica::balance::run(
                Arc::clone(node),
                interval,
                stop.clone(),
            )),
        ));
    }
    tasks
}

/// Closes the offsets store, then syncs and closes every log (off the async workers: both
/// sync).
async fn close_stores(ctx: &Context) -> Result<(), BrokerError> {
    let offsets = Arc::clone(&ctx.offsets);
    match tokio::task::spawn_blocking(move || offsets.close()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::error!(error = %err, "closing the offsets store failed"),
        Err(join) => tracing::error!(error = %join, "closing the offsets store panicked"),
    }
    tracing::info!("all connections closed; syncing logs");
    let catalog = Arc::clone(&ctx.catalog);
    tokio::task::spawn_blocking(move || catalog.close())
        .await
        .map_err(|join| BrokerError::Io {
            op: "close logs",
            source: std::io::Error::other(join.to_string()),
        })??;
    tracing::info!("weir-broker stopped cleanly");
    Ok(())
}

impl RunningBroker {
    /// The address the broker accepts connections on (with the real port when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The HTTP listener's address (`/metrics`, `/health`, `/ready`), if there is one.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The broker's metrics in the Prometheus text format, as `GET /metrics` serves them.
    pub fn metrics_text(&self) -> String {
        self.ctx.metrics.render()
    }

    /// Counters: parked fetches and their wake-ups.
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            parked_fetches: self.ctx.appended.parked(),
            fetch_wakeups: self.ctx.appended.wakeups(),
            fetch_rereads: self.ctx.appended.rereads(),
        }
    }

    /// Stops accepting, answers parked requests at once (fetches with what they have,
    /// JoinGroup and SyncGroup with NOT_COORDINATOR), lets other requests in flight finish,
    /// closes connections (at the latest after `--shutdown-grace-ms`), syncs every log and
    /// writes the clean-shutdown markers.
    ///
    /// # Errors
    /// When the logs could not be closed cleanly.
    pub async fn shutdown(self) -> Result<(), BrokerError> {
        self.stop.cancel();
        self.wait().await
    }

    /// Waits until the broker stops (after [`Self::shutdown`] or a fatal error).
    ///
    /// # Errors
    /// When the logs could not be closed cleanly, or the broker's task panicked.
    pub async fn wait(self) -> Result<(), BrokerError> {
        match self.done.await {
            Ok(result) => result,
            Err(join) => Err(BrokerError::Io {
                op: "broker task",
                source: std::io::Error::other(join.to_string()),
            }),
        }
    }
}
