//! The Kafka-protocol server: listener, connections, dispatch and one handler per API.
//!
//! Owns sockets and request routing. It translates between wire messages (through
//! `kafka-protocol`'s codecs and `weir-protocol`'s framing) and the topic catalog and logs; it
//! stores nothing itself.
//!
//! # Layout
//!
//! - [`Broker`]: start in-process (tests, embedding) or from `main`; returns the bound address
//!   and a handle for graceful shutdown.
//! - `admission`: the connection limits (broker-wide, per IP address) and the eviction of
//!   connections that have sent nothing when a newcomer finds the broker full.
//! - `connection`: one task per client; requests are handled concurrently and answered in
//!   order; in-flight requests and request bytes are bounded (the socket is not read while
//!   full); parked requests end when the connection closes.
//! - `appends`: long-polling fetches by partition, woken by appends to their partitions.
//! - `dispatch`: header decoding, version checks, routing, response encoding.
//! - `handlers/`: one module per API.
//! - `maintenance`: the periodic retention and producer-state snapshot pass.

mod admission;
mod appends;
mod connection;
mod context;
mod dir_lock;
mod dispatch;
mod group_service;
mod handlers;
mod maintenance;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::{Clock, SystemClock};
use crate::config::BrokerConfig;
use crate::groups::offsets::{
    OffsetStore, OffsetStoreConfig, OffsetStoreError, OffsetStoreOptions,
};
use crate::log::OsDisk;
use crate::log::{Flusher, LogOptions};
use crate::producers::{ProducerIdError, ProducerIds};

/// The committed-offsets store's directory inside the data directory.
const OFFSETS_DIR: &str = "__consumer_offsets";
use crate::config::ConfigError;
use crate::topics::{CatalogError, TopicCatalog};
use admission::Admission;
pub(crate) use context::Context;
use dir_lock::DirLock;
pub use dir_lock::DirLockError;

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

/// A Weir broker, ready to start.
#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
}

/// A running broker: its address and the means to stop it.
#[derive(Debug)]
pub struct RunningBroker {
    addr: SocketAddr,
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

    /// Checks the configuration, locks the data directory (refused if another broker holds
    /// it), opens it (recovering logs as needed), binds the listener and starts serving. The
    /// lock is held until the broker has stopped. Must be called inside a Tokio runtime.
    pub async fn start(self) -> Result<RunningBroker, BrokerError> {
        let config = self.config;
        config.validate()?;
        // Before anything in the directory is read: recovery must never run on the files of
        // a broker that is serving them.
        let lock = DirLock::acquire(&config.data_dir)?;
        let flusher = Flusher::new(2);
        let catalog = TopicCatalog::open_with(
            &config.data_dir,
            LogOptions::new(config.log_config(), Arc::clone(&flusher)),
            config.catalog_options(),
        )?;
        let cluster_id =
            context::cluster_id(&config.data_dir).map_err(|source| BrokerError::Io {
                op: "read or write cluster id",
                source,
            })?;
        let producer_ids = ProducerIds::open(&config.data_dir)?;
        let offsets = OffsetStore::open_with(
            &config.data_dir.join(OFFSETS_DIR),
            OffsetStoreOptions {
                disk: Arc::new(OsDisk),
                flusher,
                config: OffsetStoreConfig::default(),
            },
        )?;
        // Bound last: a client that can connect finds every topic and the offsets open.
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| BrokerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| BrokerError::Io {
            op: "read bound address",
            source,
        })?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ctx = Arc::new(Context::new(
            config,
            addr,
            catalog,
            cluster_id,
            producer_ids,
            offsets,
            clock,
        ));
        tracing::info!(%addr, data_dir = %ctx.config.data_dir.display(), "weir-broker listening");
        let stop = CancellationToken::new();
        let serving_stop = stop.clone();
        let serving_ctx = Arc::clone(&ctx);
        let done = tokio::spawn(async move {
            let result = serve(listener, serving_ctx, serving_stop).await;
            // Released only once every log is closed: a broker started next on this
            // directory must not find files still being written.
            drop(lock);
            result
        });
        Ok(RunningBroker {
            addr,
            stop,
            done,
            ctx,
        })
    }
}

impl RunningBroker {
    /// The address the broker accepts connections on (with the real port when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
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
    pub async fn shutdown(self) -> Result<(), BrokerError> {
        self.stop.cancel();
        self.wait().await
    }

    /// Waits until the broker stops (after [`Self::shutdown`] or a fatal error).
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

async fn serve(
    listener: TcpListener,
    ctx: Arc<Context>,
    stop: CancellationToken,
) -> Result<(), BrokerError> {
    let connections = TaskTracker::new();
    let requests = TaskTracker::new();
    let force = CancellationToken::new();
    let upkeep = tokio::spawn(maintenance::run(Arc::clone(&ctx), stop.clone()));
    let group_timers = tokio::spawn(Arc::clone(&ctx.groups).run_timers(stop.clone()));
    let admission = Admission::new(
        ctx.config.max_connections,
        ctx.config.max_connections_per_ip,
    );
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Typically EMFILE: back off briefly rather than spin.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // Over its address's limit: closed at once (dropping the stream), before it can
        // take a slot.
        let address = match admission.count_address(peer.ip()) {
            Ok(address) => address,
            Err(count) => {
                tracing::debug!(%peer, count, "too many connections from this address; closing");
                continue;
            }
        };
        // At the limit this evicts a connection that has sent nothing, or waits for a slot
        // (further clients wait in the accept queue meanwhile).
        let slot = tokio::select! {
            () = stop.cancelled() => break,
            slot = admission.slot() => match slot { Some(slot) => slot, None => break },
        };
        let cancel = stop.child_token();
        let life = connection::Lifecycle {
            unproven: Some(admission.unproven(cancel.clone())),
            cancel,
            force: force.clone(),
            requests: requests.clone(),
        };
        let ctx = Arc::clone(&ctx);
        connections.spawn(async move {
            connection::serve(stream, peer, ctx, life).await;
            drop((slot, address));
        });
    }
    drop(listener);
    // Every connection's token is a child of `stop`: parked requests are answering now.
    // Connections get the grace period to deliver their last responses, then are closed.
    let grace = ctx.config.shutdown_grace();
    let started = tokio::time::Instant::now();
    connections.close();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the shutdown grace period; closing them"
        );
        force.cancel();
        connections.wait().await;
    }
    // Requests still running (a produce waiting for its sync) finish before the logs close;
    // none waits for a client any more.
    requests.close();
    if tokio::time::timeout(grace, requests.wait()).await.is_err() {
        tracing::warn!(
            running = requests.len(),
            "requests still running after the shutdown grace period; closing the logs anyway"
        );
    }
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis(),
        "connections closed"
    );
    if let Err(join) = upkeep.await {
        tracing::error!(error = %join, "maintenance task failed");
    }
    if let Err(join) = group_timers.await {
        tracing::error!(error = %join, "group timer task failed");
    }
    // close() syncs: off the async workers.
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
