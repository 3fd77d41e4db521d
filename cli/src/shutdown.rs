//! Ctrl-C and SIGTERM: a flag the long-running commands check between steps, so that they
//! stop at a clean point (a consumer commits and leaves its group, a producer delivers what
//! it read) instead of dying mid-request. A second Ctrl-C exits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

use crate::error::EXIT_INTERRUPTED;

/// Set once a stop was asked for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    requested: AtomicBool,
    /// Wakes whoever waits in [`Shutdown::requested`].
    notify: Notify,
}

impl Shutdown {
    /// A flag set by SIGINT or SIGTERM (needs a running tokio runtime).
    pub(crate) fn on_signals() -> Self {
        let shutdown = Self::default();
        let flag = shutdown.clone();
        tokio::spawn(async move {
            let mut count = 0u32;
            loop {
                wait_signal().await;
                count += 1;
                if count > 1 {
                    std::process::exit(i32::from(EXIT_INTERRUPTED));
                }
                flag.request();
            }
        });
        shutdown
    }

    /// Asks for a stop.
    pub(crate) fn request(&self) {
        self.inner.requested.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Whether a stop was asked for.
    pub(crate) fn is_requested(&self) -> bool {
        self.inner.requested.load(Ordering::SeqCst)
    }

    /// Resolves once a stop is asked for.
    pub(crate) async fn requested(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.is_requested() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(unix)]
async fn wait_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                () = ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => ctrl_c().await,
    }
}

#[cfg(not(unix))]
async fn wait_signal() {
    ctrl_c().await;
}

/// Ctrl-C; never, when the handler cannot be installed (the process then dies of the signal
/// as it would without one).
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_wake_when_a_stop_is_requested() {
        let shutdown = Shutdown::default();
        assert!(!shutdown.is_requested());
        let waiter = tokio::spawn({
            let s = shutdown.clone();
            async move { s.requested().await }
        });
        shutdown.request();
        tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
            .await
            .expect("woken")
            .expect("task ran");
        assert!(shutdown.is_requested());
    }
}
