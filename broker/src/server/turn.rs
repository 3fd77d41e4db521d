//! A request's place in its connection's order of effects.
//!
//! Owns the hand-over between consecutive requests of one connection: each request's task
//! waits for the previous request's [`Turn`] to be released before it acts, and releases its
//! own as soon as its effect is done (a produce after appending, before waiting for the sync;
//! a fetch before long-polling). Does not order responses (the connection's writer does).
//! Invariant: a turn is released at most once, and dropping it releases it, so a request that
//! fails or is cancelled never blocks the ones behind it.

use tokio::sync::oneshot;

/// A request's place in its connection's order of effects (see the module docs): drop it,
/// or call [`Turn::release`], once the request's effect is done.
#[derive(Debug)]
pub(crate) struct Turn {
    /// Fires (or is dropped) when the previous request has taken effect; `None` for the
    /// first request, or once waited for.
    previous: Option<oneshot::Receiver<()>>,
    /// Released to let the next request act.
    done: Option<oneshot::Sender<()>>,
}

impl Turn {
    /// The turn after `previous` (`None`: the connection's first request), and the receiver
    /// the request after this one waits on.
    pub(crate) fn next(previous: Option<oneshot::Receiver<()>>) -> (Self, oneshot::Receiver<()>) {
        let (done, next) = oneshot::channel();
        let turn = Self {
            previous,
            done: Some(done),
        };
        (turn, next)
    }

    /// Waits until every earlier request on the connection has taken effect.
    pub(crate) async fn wait(&mut self) {
        if let Some(previous) = self.previous.take() {
            // An error means the earlier request's task ended without releasing (it dropped
            // its turn): it is done either way.
            let _done = previous.await;
        }
    }

    /// Lets the next request take effect. Dropping the turn does the same.
    pub(crate) fn release(&mut self) {
        if let Some(done) = self.done.take() {
            // The next request may not exist yet or be gone; either is fine.
            let _unwanted = done.send(());
        }
    }
}
