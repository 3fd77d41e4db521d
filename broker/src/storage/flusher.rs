//! Background syncing with group commit, for anything that syncs.
//!
//! A [`Flusher`] is a small pool of OS threads shared by all the stores of a broker (every
//! partition log and the committed-offsets store), so `fdatasync` never runs on the async
//! runtime. What it syncs is anything [`Syncable`]: it does not know logs, offsets or files,
//! and it decides nothing about what a sync covers.
//!
//! A store that has waiters asks for a sync; the request is queued at most once per store (a
//! flag the store keeps, set when it schedules and cleared by
//! [`Syncable::run_scheduled_sync`] before it syncs), and a worker syncs *everything written up
//! to the moment it starts*. Writes that arrive during a sync queue the store again and are
//! covered by the next one: however many writers wait, each store has at most one sync running
//! and one pending. That is group commit.
//!
//! Stores with an interval policy are also swept by a ticker thread, which calls
//! [`Syncable::sync_if_older_than`] on them; the ticker holds them weakly, so a dropped store
//! leaves the sweep.
//!
//! Invariants: a sync queued before [`Flusher::shutdown`] still runs; one asked for after it
//! runs on the caller's thread, so no waiter is left hanging.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// Something a [`Flusher`] syncs: a partition log, the committed-offsets store.
pub(crate) trait Syncable: Send + Sync + Debug {
    /// A sync queued with [`Flusher::schedule`] is due. Clears the store's "queued" flag
    /// first (so writes arriving during the sync queue the next one), then syncs everything
    /// written so far; errors go to the store's waiters, not to the flusher.
    fn run_scheduled_sync(&self);
    /// Called by the ticker for stores registered with [`Flusher::register_interval`]: queue
    /// a sync if data unsynced for at least `every` is waiting.
    fn sync_if_older_than(&self, every: Duration);
}

/// A pool of sync threads shared by many stores.
#[derive(Debug)]
pub struct Flusher {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct Queue {
    ready: VecDeque<Arc<dyn Syncable>>,
    /// Stores swept by the ticker, with their interval.
    interval_logs: Vec<(Weak<dyn Syncable>, Duration)>,
    shutdown: bool,
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Signals workers that `ready` has work (or shutdown).
    work: Condvar,
    /// Signals the ticker that the set of interval logs changed (or shutdown).
    tick: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Flusher {
    /// Starts `threads` sync workers (at least one) and the interval ticker.
    pub fn new(threads: usize) -> Arc<Self> {
        let shared = Arc::new(Shared::default());
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let shared = Arc::clone(&shared);
            handles.push(spawn(format!("weir-flush-{i}"), move || worker(&shared)));
        }
        let ticker_shared = Arc::clone(&shared);
        handles.push(spawn("weir-flush-tick".to_owned(), move || {
            ticker(&ticker_shared)
        }));
        Arc::new(Self {
            shared,
            threads: Mutex::new(handles),
        })
    }

    /// Queues a sync of `log`. The caller guarantees it is not queued already.
    pub(crate) fn schedule(&self, log: Arc<dyn Syncable>) {
        let mut q = self.shared.lock();
        if q.shutdown {
            drop(q);
            // No worker left: sync on the caller's thread rather than leave waiters hanging.
            log.run_scheduled_sync();
            return;
        }
        q.ready.push_back(log);
        self.shared.work.notify_one();
    }

    /// Has the ticker sync `log` at least every `every`.
    pub(crate) fn register_interval(&self, log: Weak<dyn Syncable>, every: Duration) {
        let mut q = self.shared.lock();
        q.interval_logs.push((log, every));
        self.shared.tick.notify_all();
    }

    /// Stops the threads after the queued syncs are done. Further requests run inline.
    pub fn shutdown(&self) {
        self.shared.lock().shutdown = true;
        self.shared.work.notify_all();
        self.shared.tick.notify_all();
        let handles =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        let me = std::thread::current().id();
        // The last reference can be dropped on a flusher thread itself; it must not join itself.
        for handle in handles.into_iter().filter(|h| h.thread().id() != me) {
            if handle.join().is_err() {
                tracing::error!("a flusher thread panicked");
            }
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    match std::thread::Builder::new().name(name).spawn(f) {
        Ok(handle) => handle,
        // Without its threads the broker cannot make anything durable; refusing to start is
        // the only honest answer.
        Err(err) => panic!("cannot start a flusher thread: {err}"),
    }
}

fn worker(shared: &Shared) {
    loop {
        let log = {
            let mut q = shared.lock();
            loop {
                if let Some(log) = q.ready.pop_front() {
                    break log;
                }
                if q.shutdown {
                    return;
                }
                q = shared.work.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
        };
        log.run_scheduled_sync();
    }
}

fn ticker(shared: &Shared) {
    let mut q = shared.lock();
    loop {
        if q.shutdown {
            return;
        }
        q.interval_logs.retain(|(log, _)| log.strong_count() > 0);
        let Some(period) = q.interval_logs.iter().map(|(_, every)| *every).min() else {
            q = shared.tick.wait(q).unwrap_or_else(PoisonError::into_inner);
            continue;
        };
        // Sweep at half the shortest interval, so no data waits much longer than its interval.
        let wait = (period / 2).max(Duration::from_millis(1));
        q = shared
            .tick
            .wait_timeout(q, wait)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        let due: Vec<_> = q
            .interval_logs
            .iter()
            .filter_map(|(log, every)| log.upgrade().map(|l| (l, *every)))
            .collect();
        drop(q);
        for (log, every) in due {
            log.sync_if_older_than(every);
        }
        q = shared.lock();
    }
}
