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
//! - `connection`: one task per client; requests are handled concurrently and answered in
//!   order; in-flight requests and produce bytes are bounded (the socket is not read while
//!   full).
//! - `dispatch`: header decoding, version checks, routing, response encoding.
//! - `handlers/`: one module per API.
//! - `maintenance`: the periodic retention and producer-state snapshot pass.

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
use tokio::sync::Semaphore;
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
        let done = tokio::spawn(async move {
            let result = serve(listener, ctx, serving_stop).await;
            // Released only once every log is closed: a broker started next on this
            // directory must not find files still being written.
            drop(lock);
            result
        });
        Ok(RunningBroker { addr, stop, done })
    }
}

impl RunningBroker {
    /// The address the broker accepts connections on (with the real port when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish, syncs every log and writes the
    /// clean-shutdown markers.
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
    let upkeep = tokio::spawn(maintenance::run(Arc::clone(&ctx), stop.clone()));
    let group_timers = tokio::spawn(Arc::clone(&ctx.groups).run_timers(stop.clone()));
    let slots = Arc::new(Semaphore::new(ctx.config.max_connections.max(1)));
    loop {
        // Wait for a free slot first: at the limit, further clients wait in the accept queue.
        let slot = tokio::select! {
            () = stop.cancelled() => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot { Ok(slot) => slot, Err(_closed) => break },
        };
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let (ctx, stop) = (Arc::clone(&ctx), stop.clone());
                connections.spawn(async move {
                    connection::serve(stream, peer, ctx, stop).await;
                    drop(slot);
                });
            }
            Err(err) => {
                // Typically EMFILE: back off briefly rather than spin.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    connections.close();
    connections.wait().await;
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
