//! How one node reaches another: the [`Transport`] seam, and its TCP implementation.
//!
//! The Raft network, forwarded proposals and broker heartbeats all go through a
//! `Transport`, so tests can replace the network (an in-process one with faults,
//! [`super::mem`]) without touching the node. [`TcpTransport`] keeps one connection per peer,
//! multiplexed by request id, opened on first use and again after a failure; every call has
//! a deadline, so a dead or paused peer costs a timeout, never a hang.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::wire::{self, Body, Envelope, Request, Response, VERSION};
use crate::cluster::peers::Peers;
use crate::cluster::types::NodeId;

/// Why a call to a peer failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum NetError {
    /// No address for the node, or no connection could be made.
    #[error("node {node} is unreachable: {why}")]
    Unreachable {
        /// The peer.
        node: NodeId,
        /// Why.
        why: String,
    },
    /// The connection broke or the answer did not come in time.
    #[error("call to node {node} failed: {why}")]
    Failed {
        /// The peer.
        node: NodeId,
        /// Why.
        why: String,
    },
}

/// Sends requests to other nodes.
pub trait Transport: Send + Sync + Debug + 'static {
    /// Sends `request` to `target` and waits for its answer, at most `timeout`.
    fn call(
        &self,
        target: NodeId,
        request: Request,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Response, NetError>>;
}

/// One open connection: a writer task fed by a channel, a reader task completing waiters.
#[derive(Debug)]
struct Conn {
    outgoing: mpsc::Sender<Envelope>,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Response>>>>,
    next_id: AtomicU64,
    /// Stops the reader when the connection is dropped (a silent peer never closes it).
    closed: CancellationToken,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.closed.cancel();
    }
}

impl Conn {
    async fn open(address: &str, connect_timeout: Duration) -> std::io::Result<Arc<Self>> {
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(address))
            .await
            .map_err(|_elapsed| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        stream.set_nodelay(true)?;
        let (mut sink, mut stream) = Framed::new(stream, wire::codec()).split();
        let (outgoing, mut queue) = mpsc::channel::<Envelope>(256);
        let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Response>>>> = Arc::default();
        let closed = CancellationToken::new();
        let writer_stop = closed.clone();
        tokio::spawn(async move {
            loop {
                let envelope = tokio::select! {
                    () = writer_stop.cancelled() => break,
                    envelope = queue.recv() => envelope,
                };
                let Some(envelope) = envelope else { break };
                let Ok(bytes) = wire::encode(&envelope) else {
                    continue;
                };
                if sink.send(bytes::Bytes::from(bytes)).await.is_err() {
                    break;
                }
            }
        });
        let waiters = Arc::clone(&pending);
        let stop = closed.clone();
        tokio::spawn(async move {
            loop {
                let frame = tokio::select! {
                    () = stop.cancelled() => break,
                    frame = stream.next() => frame,
                };
                let Some(Ok(frame)) = frame else { break };
                let Ok(envelope) = wire::decode(&frame) else {
                    break;
                };
                if let Body::Response(response) = envelope.body {
                    let waiter = waiters
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&envelope.id);
                    if let Some(waiter) = waiter {
                        let _ignored = waiter.send(response);
                    }
                }
            }
            // The connection is gone (the peer died, or closed it): mark it closed, so no call
            // waits on it any more, and fail every waiter now rather than at its deadline.
            let mut waiting = waiters.lock().unwrap_or_else(PoisonError::into_inner);
            stop.cancel();
            waiting.clear();
        });
        Ok(Arc::new(Self {
            outgoing,
            pending,
            next_id: AtomicU64::new(1),
            closed,
        }))
    }

    fn is_closed(&self) -> bool {
        self.closed.is_cancelled() || self.outgoing.is_closed()
    }
}

/// The TCP transport: addresses from this node's `--peers`.
#[derive(Debug)]
pub struct TcpTransport {
    peers: Peers,
    conns: Mutex<HashMap<NodeId, Arc<Conn>>>,
    /// One connect at a time per peer, so a burst of calls opens one connection.
    connecting: Mutex<HashMap<NodeId, Arc<tokio::sync::Mutex<()>>>>,
}

impl TcpTransport {
    /// A transport reaching `peers`.
    #[must_use]
    pub fn new(peers: Peers) -> Arc<Self> {
        Arc::new(Self {
            peers,
            conns: Mutex::default(),
            connecting: Mutex::default(),
        })
    }

    async fn conn(
        self: &Arc<Self>,
        target: NodeId,
        timeout: Duration,
    ) -> Result<Arc<Conn>, NetError> {
        if let Some(conn) = self.live(target) {
            return Ok(conn);
        }
        let gate = Arc::clone(
            self.connecting
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(target)
                .or_default(),
        );
        let _one = gate.lock().await;
        if let Some(conn) = self.live(target) {
            return Ok(conn);
        }
        let address = self
            .peers
            .address(target)
            .ok_or_else(|| NetError::Unreachable {
                node: target,
                why: "not in --peers".into(),
            })?;
        let conn = Conn::open(address, timeout)
            .await
            .map_err(|e| NetError::Unreachable {
                node: target,
                why: e.to_string(),
            })?;
        self.conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(target, Arc::clone(&conn));
        Ok(conn)
    }

    fn live(&self, target: NodeId) -> Option<Arc<Conn>> {
        let conns = self.conns.lock().unwrap_or_else(PoisonError::into_inner);
        conns.get(&target).filter(|c| !c.is_closed()).cloned()
    }

    fn forget(&self, target: NodeId, conn: &Arc<Conn>) {
        let mut conns = self.conns.lock().unwrap_or_else(PoisonError::into_inner);
        if conns.get(&target).is_some_and(|c| Arc::ptr_eq(c, conn)) {
            conns.remove(&target);
        }
    }
}

impl Transport for Arc<TcpTransport> {
    fn call(
        &self,
        target: NodeId,
        request: Request,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Response, NetError>> {
        let this = Arc::clone(self);
        Box::pin(async move {
            let failed = |why: String| NetError::Failed { node: target, why };
            let deadline = tokio::time::Instant::now() + timeout;
            let conn = this.conn(target, timeout).await?;
            let id = conn.next_id.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            {
                // Checked under the waiters' lock, which the reader holds while it marks the
                // connection closed: a request is either answered or failed, never left to
                // its deadline on a connection already gone.
                let mut pending = conn.pending.lock().unwrap_or_else(PoisonError::into_inner);
                if conn.is_closed() {
                    drop(pending);
                    this.forget(target, &conn);
                    return Err(NetError::Unreachable {
                        node: target,
                        why: "connection closed before the request was sent".into(),
                    });
                }
                pending.insert(id, tx);
            }
            let envelope = Envelope {
                version: VERSION,
                id,
                body: Body::Request(request),
            };
            if conn.outgoing.send(envelope).await.is_err() {
                this.forget(target, &conn);
                return Err(NetError::Unreachable {
                    node: target,
                    why: "connection closed before the request was sent".into(),
                });
            }
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(_closed)) => {
                    this.forget(target, &conn);
                    Err(failed("connection closed".into()))
                }
                Err(_elapsed) => {
                    conn.pending
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&id);
                    // A paused peer keeps the connection open but silent: start afresh next
                    // time, so the answers of a backlog never pile up behind new calls.
                    this.forget(target, &conn);
                    Err(failed(format!("no answer within {timeout:?}")))
                }
            }
        })
    }
}
