//! An in-process network for tests: nodes' handlers called directly, with faults (a link cut
//! in one direction, or a node isolated) switched on and off at run time. The in-process
//! cluster ([`crate::cluster::testing`]) uses it.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::server::Handler;
use super::transport::{NetError, Transport};
use super::wire::{Request, Response};
use crate::cluster::types::NodeId;

#[derive(Default)]
struct Inner {
    handlers: HashMap<NodeId, Handler>,
    /// Directed links (from, to) that lose every message.
    cut: BTreeSet<(NodeId, NodeId)>,
}

/// The shared in-process network.
#[derive(Clone, Default)]
pub struct MemNetwork {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for MemNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemNetwork")
            .field("nodes", &inner.handlers.keys().collect::<Vec<_>>())
            .field("cut", &inner.cut)
            .finish()
    }
}

impl MemNetwork {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `node` reachable through `handler`.
    pub fn register(&self, node: NodeId, handler: Handler) {
        self.lock().handlers.insert(node, handler);
    }

    /// Makes `node` unreachable (it stopped).
    pub fn unregister(&self, node: NodeId) {
        self.lock().handlers.remove(&node);
    }

    /// Cuts the link from `from` to `to` (one way).
    pub fn cut(&self, from: NodeId, to: NodeId) {
        self.lock().cut.insert((from, to));
    }

    /// Cuts every link to and from `node`.
    pub fn isolate(&self, node: NodeId, all: &[NodeId]) {
        for other in all.iter().filter(|o| **o != node) {
            self.cut(node, *other);
            self.cut(*other, node);
        }
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.lock().cut.clear();
    }

    /// The transport node `from` sends with.
    #[must_use]
    pub fn transport(&self, from: NodeId) -> MemTransport {
        MemTransport {
            from,
            network: self.clone(),
        }
    }
}

/// One node's end of a [`MemNetwork`].
#[derive(Debug, Clone)]
pub struct MemTransport {
    from: NodeId,
    network: MemNetwork,
}

impl Transport for MemTransport {
    fn call(
        &self,
        target: NodeId,
        request: Request,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Response, NetError>> {
        let (handler, cut_there, cut_back) = {
            let inner = self.network.lock();
            (
                inner.handlers.get(&target).cloned(),
                inner.cut.contains(&(self.from, target)),
                inner.cut.contains(&(target, self.from)),
            )
        };
        Box::pin(async move {
            let Some(handler) = handler.filter(|_| !cut_there) else {
                return Err(NetError::Unreachable {
                    node: target,
                    why: "cut".into(),
                });
            };
            let response = tokio::time::timeout(timeout, handler(request)).await;
            match response {
                // A one-way cut the other way loses the answer: the request had its effect.
                Ok(_) if cut_back => {
                    tokio::time::sleep(timeout).await;
                    Err(NetError::Failed {
                        node: target,
                        why: "answer lost".into(),
                    })
                }
                Ok(response) => Ok(response),
                Err(_elapsed) => Err(NetError::Failed {
                    node: target,
                    why: "timed out".into(),
                }),
            }
        })
    }
}
