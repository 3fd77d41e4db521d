//! [`Durability`]: how far a store is durable, with fail-stop, for async waiters.
//!
//! Owns the durable watermark of one store (a partition log counts in offsets, the offsets
//! store in tickets), the first I/O error that stopped the store, and the wait on both. It does
//! not sync anything, nor decide what a sync covers: the owner syncs (usually on a
//! [`super::Flusher`] thread), then calls [`Durability::advance`] with the position that sync
//! covered, or [`Durability::fail`] when it failed.
//!
//! Invariants:
//! - the watermark only moves forward;
//! - the first failure is kept for good ([`Durability::failure`] never goes back to `None`)
//!   and wakes every waiter, which then returns [`Unreached::Failed`] unless its position was
//!   already durable;
//! - waiting never blocks a thread: waiters await a `watch` channel.

use std::fmt::Debug;
use std::io;
use std::sync::{Arc, OnceLock};

use tokio::sync::watch;

/// What waiters watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Watermark<P> {
    /// Everything below this position is on disk.
    durable: P,
    /// The store failed: waiters above `durable` will never be satisfied.
    failed: bool,
}

/// Why a wait ended before its position became durable.
#[derive(Debug)]
pub(crate) enum Unreached {
    /// The store failed (fail-stop) with this error.
    Failed(Arc<io::Error>),
    /// The watch channel closed without a failure. Cannot happen while the watermark is
    /// borrowed by the wait; answered as "closed" rather than a panic.
    Closed,
}

/// The durable watermark of one store and its fail-stop state.
#[derive(Debug)]
pub(crate) struct Durability<P> {
    watermark: watch::Sender<Watermark<P>>,
    /// The I/O error that stopped the store, once there is one.
    failure: OnceLock<Arc<io::Error>>,
}

impl<P: Copy + Ord + Debug + Send + Sync> Durability<P> {
    /// Everything below `durable` is on disk already (what opening the store synced or trusts).
    pub(crate) fn new(durable: P) -> Self {
        Self {
            watermark: watch::Sender::new(Watermark {
                durable,
                failed: false,
            }),
            failure: OnceLock::new(),
        }
    }

    /// Everything below this position is on disk.
    pub(crate) fn durable(&self) -> P {
        self.watermark.borrow().durable
    }

    /// A sync covering everything below `to` completed: wakes the waiters it satisfies. Never
    /// moves the watermark back (a slower sync may finish after a faster one).
    pub(crate) fn advance(&self, to: P) {
        self.watermark
            .send_modify(|w| w.durable = w.durable.max(to));
    }

    /// The store dropped everything at or after `to` (a replica's log truncated its
    /// uncommitted tail): what is appended there next is not durable until synced again.
    /// Callers hold the store's sync lock, so no sync computed before the cut lands after it.
    pub(crate) fn rewind(&self, to: P) {
        self.watermark
            .send_modify(|w| w.durable = w.durable.min(to));
    }

    /// Stops the store (fail-stop): keeps the first error, wakes every waiter. Returns the
    /// error that stopped the store (the first one, if it had failed already).
    pub(crate) fn fail(&self, err: io::Error) -> Arc<io::Error> {
        let cause = Arc::clone(self.failure.get_or_init(|| Arc::new(err)));
        self.watermark.send_modify(|w| w.failed = true);
        cause
    }

    /// The error that stopped the store, if one did.
    pub(crate) fn failure(&self) -> Option<&Arc<io::Error>> {
        self.failure.get()
    }

    /// Waits until everything below `target` is durable. When it is not yet, calls
    /// `request_sync` once first (so a sync gets queued), then awaits the watermark. Concurrent
    /// waiters share syncs: one completed sync wakes all those it covers.
    pub(crate) async fn wait(
        &self,
        target: P,
        request_sync: impl FnOnce(),
    ) -> Result<(), Unreached> {
        let mut rx = self.watermark.subscribe();
        if rx.borrow().durable >= target {
            return Ok(());
        }
        request_sync();
        let reached = rx
            .wait_for(|w| w.durable >= target || w.failed)
            .await
            .map(|w| w.durable >= target);
        match reached {
            Ok(true) => Ok(()),
            _ => Err(match self.failure.get() {
                Some(cause) => Unreached::Failed(Arc::clone(cause)),
                None => Unreached::Closed,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_are_woken_by_an_advance_that_covers_them() {
        let durability = Arc::new(Durability::new(0u64));
        let mut requested = false;
        let wait = {
            let durability = Arc::clone(&durability);
            tokio::spawn(async move { durability.wait(5, || ()).await.is_ok() })
        };
        // Already durable: no sync requested.
        durability.wait(0, || requested = true).await.unwrap();
        assert!(!requested);
        durability.advance(3);
        durability.advance(2);
        assert_eq!(durability.durable(), 3, "the watermark never moves back");
        durability.advance(5);
        assert!(wait.await.unwrap());
    }

    #[tokio::test]
    async fn a_failure_wakes_waiters_and_stays() {
        let durability = Arc::new(Durability::new(0i64));
        let wait = {
            let durability = Arc::clone(&durability);
            tokio::spawn(async move { durability.wait(1, || ()).await })
        };
        let first = durability.fail(io::Error::other("first"));
        let second = durability.fail(io::Error::other("second"));
        assert!(Arc::ptr_eq(&first, &second), "the first error is kept");
        assert!(
            matches!(wait.await.unwrap(), Err(Unreached::Failed(cause)) if Arc::ptr_eq(&cause, &first))
        );
        // What was durable before the failure stays durable.
        durability.wait(0, || ()).await.unwrap();
        assert!(durability.failure().is_some());
    }
}
