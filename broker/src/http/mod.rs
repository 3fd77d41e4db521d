//! The HTTP listener beside the Kafka port: `GET /metrics` (Prometheus text), `GET /health`
//! (the process serves) and `GET /ready` (logs recovered and the Kafka listener bound; false
//! again once shutdown starts), for scrapers, load balancers and orchestrators.
//!
//! Bounded like the Kafka port, so that nothing sent here can hurt it: at most
//! [`MAX_CONNECTIONS`] connections (more are closed at once), headers within
//! [`MAX_HEADER_BYTES`] and [`HEADER_TIMEOUT`], each connection closed after
//! [`CONNECTION_LIFETIME`], no request body read. HTTP/1.1 only, through hyper; the routes
//! are an axum router ([`routes`]).
//!
//! Beside them: a read-only JSON admin API under `/v1/` ([`api`]) and the web console at `/`
//! ([`console`]), assets embedded in the binary.
//!
//! Bound before the stores open, so `/health` answers while a long recovery runs (a liveness
//! probe must not kill a broker that is recovering) and `/ready` says when clients can come.

mod api;
mod console;
mod routes;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::server::Context;

/// Connections served at once; a scraper and a few probes need a handful.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// Bytes of request line and headers (hyper's read buffer).
pub(crate) const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Time to send a request's headers.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest life of one connection, keep-alive included.
pub(crate) const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// What the routes read.
#[derive(Debug, Clone)]
pub(crate) struct HttpState {
    pub(crate) metrics: Arc<Metrics>,
    /// Set once the stores are open and the Kafka listener is bound; cleared at shutdown.
    pub(crate) ready: Arc<AtomicBool>,
    /// The server's shared state, for the JSON API: set once the stores are open. Weak, so a
    /// stopped broker's stores are not kept alive by an HTTP connection.
    pub(crate) ctx: Arc<OnceLock<Weak<Context>>>,
}

impl HttpState {
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The server's shared state: `None` until the stores are open, and again once the
    /// broker has stopped.
    pub(crate) fn context(&self) -> Option<Arc<Context>> {
        self.ctx.get().and_then(Weak::upgrade)
    }
}

/// Serves `listener` until `stop` is cancelled.
pub(crate) async fn serve(listener: TcpListener, state: HttpState, stop: CancellationToken) {
    let router = routes::router(state);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    tracing::warn!(error = %err, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(%peer, "http connection refused: {MAX_CONNECTIONS} already open");
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let stop = stop.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                served = connection.as_mut() => served,
                () = stop.cancelled() => return,
                () = tokio::time::sleep(CONNECTION_LIFETIME) => return,
            };
            if let Err(err) = ended {
                tracing::debug!(%peer, error = %err, "http connection ended with an error");
            }
        });
    }
}

/// Where `--http-listen` said to listen, bound: `None` when it is off, or when the default
/// address is taken (another broker on this machine has it; logged, and the broker runs
/// without HTTP). An explicit address that cannot be bound is an error.
pub(crate) async fn bind(
    listen: &crate::config::HttpListen,
) -> Result<Option<(TcpListener, SocketAddr)>, (SocketAddr, std::io::Error)> {
    use crate::config::HttpListen;
    let (addr, explicit) = match listen {
        HttpListen::Off => return Ok(None),
        HttpListen::Default => (crate::config::DEFAULT_HTTP_LISTEN, false),
        HttpListen::At(addr) => (*addr, true),
    };
    match TcpListener::bind(addr).await {
        Ok(listener) => {
            let bound = listener.local_addr().map_err(|err| (addr, err))?;
            Ok(Some((listener, bound)))
        }
        Err(err) if !explicit => {
            tracing::warn!(%addr, error = %err, "the default HTTP address is taken; running without metrics and health endpoints (set --http-listen to choose another)");
            Ok(None)
        }
        Err(err) => Err((addr, err)),
    }
}
