//! Wake-ups for long-polling fetches, per partition.
//!
//! Owns the registry of parked fetches by the partitions they wait on. An append to a
//! partition wakes the fetches registered on that partition and no other: a produce to one
//! partition costs nothing to the thousands of fetches parked on others (a single broker-wide
//! notification used to wake, and make re-read, every parked fetch on every append). It reads
//! no log and knows nothing of requests beyond (topic, partition) names.
//!
//! Invariants:
//!
//! - A fetch registers ([`AppendWaiters::register`]) before its last read and waits after it,
//!   and a wake-up is stored in the waiter until taken (`Notify::notify_one`), so an append
//!   between the read and the wait is never missed.
//! - A [`Registration`] is removed from every partition when dropped (answered, cancelled or
//!   its task aborted), and a partition without waiters has no entry: the registry's memory is
//!   one entry per (parked fetch, distinct partition it waits on), nothing for idle partitions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// The waiters of one partition: registration id -> the fetch's signal and the partition's
/// index in its registration.
type Waiters = HashMap<u64, (Arc<Signal>, usize)>;

/// How an append reaches one parked fetch.
#[derive(Debug)]
struct Signal {
    notify: Notify,
    /// Per registered partition: appended to since the fetch last looked.
    changed: Box<[AtomicBool]>,
}

/// Parked fetches by topic and partition.
#[derive(Debug, Default)]
pub(crate) struct AppendWaiters {
    topics: Mutex<HashMap<String, HashMap<i32, Waiters>>>,
    /// Ids of registrations (never reused while the broker runs).
    next_id: AtomicU64,
    /// Registrations alive now: fetches parked (or about to be).
    parked: AtomicU64,
    /// Parked fetches woken by an append on one of their partitions, since start.
    wakeups: AtomicU64,
    /// Whole-request reads by woken fetches, since start (the partitions that changed are
    /// read first; the whole request only once `min_bytes` may be reached).
    rereads: AtomicU64,
}

/// A fetch's place in the registry; leaves it when dropped.
#[derive(Debug)]
pub(crate) struct Registration<'a> {
    waiters: &'a AppendWaiters,
    id: u64,
    /// Distinct (topic, partition) pairs registered, in the order of `signal.changed`.
    partitions: Vec<(String, i32)>,
    signal: Arc<Signal>,
}

impl AppendWaiters {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, HashMap<i32, Waiters>>> {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers one waiter on each of `partitions` (duplicates are registered once).
    pub(crate) fn register<'n>(
        &self,
        partitions: impl IntoIterator<Item = (&'n str, i32)>,
    ) -> Registration<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut distinct: Vec<(String, i32)> = Vec::new();
        for (topic, partition) in partitions {
            if !distinct.iter().any(|(t, p)| t == topic && *p == partition) {
                distinct.push((topic.to_owned(), partition));
            }
        }
        let signal = Arc::new(Signal {
            notify: Notify::new(),
            changed: distinct.iter().map(|_| AtomicBool::new(false)).collect(),
        });
        let mut topics = self.lock();
        for (index, (topic, partition)) in distinct.iter().enumerate() {
            let waiters = match topics.get_mut(topic.as_str()) {
                Some(by_partition) => by_partition.entry(*partition).or_default(),
                None => topics
                    .entry(topic.clone())
                    .or_default()
                    .entry(*partition)
                    .or_default(),
            };
            waiters.insert(id, (Arc::clone(&signal), index));
        }
        drop(topics);
        self.parked.fetch_add(1, Ordering::Relaxed);
        Registration {
            waiters: self,
            id,
            partitions: distinct,
            signal,
        }
    }

    /// Wakes the fetches waiting on `topic`/`partition`, and only those.
    pub(crate) fn appended(&self, topic: &str, partition: i32) {
        let topics = self.lock();
        if let Some(waiters) = topics.get(topic).and_then(|t| t.get(&partition)) {
            for (signal, index) in waiters.values() {
                if let Some(changed) = signal.changed.get(*index) {
                    changed.store(true, Ordering::Release);
                }
                signal.notify.notify_one();
            }
        }
    }

    /// Fetches parked now.
    pub(crate) fn parked(&self) -> u64 {
        self.parked.load(Ordering::Relaxed)
    }

    /// Parked fetches woken by an append since the broker started.
    pub(crate) fn wakeups(&self) -> u64 {
        self.wakeups.load(Ordering::Relaxed)
    }

    /// Whole-request reads made by woken fetches since the broker started.
    pub(crate) fn rereads(&self) -> u64 {
        self.rereads.load(Ordering::Relaxed)
    }

    /// Counts a whole-request read by a woken fetch.
    pub(crate) fn count_reread(&self) {
        self.rereads.fetch_add(1, Ordering::Relaxed);
    }
}

impl Registration<'_> {
    /// Waits until an append on one of the registered partitions (at once if one happened
    /// since the last wake-up), counts the wake-up, and returns the partitions appended to
    /// since the last call (so the fetch re-reads only those).
    pub(crate) async fn appended(&self) -> Vec<(&str, i32)> {
        self.signal.notify.notified().await;
        self.waiters.wakeups.fetch_add(1, Ordering::Relaxed);
        self.partitions
            .iter()
            .zip(self.signal.changed.iter())
            .filter(|(_, changed)| changed.swap(false, Ordering::AcqRel))
            .map(|((topic, partition), _)| (topic.as_str(), *partition))
            .collect()
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut topics = self.waiters.lock();
        for (topic, partition) in &self.partitions {
            let Some(by_partition) = topics.get_mut(topic) else {
                continue;
            };
            if let Some(waiters) = by_partition.get_mut(partition) {
                waiters.remove(&self.id);
                if waiters.is_empty() {
                    by_partition.remove(partition);
                }
            }
            if by_partition.is_empty() {
                topics.remove(topic);
            }
        }
        drop(topics);
        self.waiters.parked.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Whether the registration has a wake-up waiting (without waiting for one).
    async fn woken(registration: &Registration<'_>) -> bool {
        tokio::time::timeout(Duration::from_millis(1), registration.appended())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_wake_up_names_the_partitions_appended_to() {
        let waiters = AppendWaiters::default();
        let registration = waiters.register([("a", 0), ("a", 1), ("b", 0)]);
        waiters.appended("b", 0);
        waiters.appended("a", 1);
        waiters.appended("a", 1);
        let mut changed = registration.appended().await;
        changed.sort_unstable();
        assert_eq!(changed, [("a", 1), ("b", 0)]);
        waiters.appended("a", 0);
        assert_eq!(registration.appended().await, [("a", 0)]);
    }

    #[tokio::test]
    async fn an_append_wakes_only_the_waiters_of_its_partition() {
        let waiters = AppendWaiters::default();
        let on_a0: Vec<_> = (0..100).map(|_| waiters.register([("a", 0)])).collect();
        let on_a1 = waiters.register([("a", 1), ("b", 7)]);
        let on_b = waiters.register([("b", 0)]);
        assert_eq!(waiters.parked(), 102);
        for _ in 0..1_000 {
            waiters.appended("a", 0);
        }
        waiters.appended("c", 0);
        assert!(
            !woken(&on_a1).await,
            "an append to a-0 woke a waiter on a-1"
        );
        assert!(!woken(&on_b).await, "an append to a-0 woke a waiter on b-0");
        for registration in &on_a0 {
            assert!(woken(registration).await);
            // Many appends while it was not looking are one wake-up.
            assert!(!woken(registration).await);
        }
        assert_eq!(waiters.wakeups(), 100);
        waiters.appended("b", 7);
        assert!(
            woken(&on_a1).await,
            "a waiter on two partitions is woken by either"
        );
    }

    #[tokio::test]
    async fn an_append_before_the_wait_is_not_lost() {
        let waiters = AppendWaiters::default();
        let registration = waiters.register([("t", 0)]);
        // Between the fetch's last read and its wait.
        waiters.appended("t", 0);
        assert!(woken(&registration).await);
    }

    #[test]
    fn dropped_registrations_leave_nothing_behind() {
        let waiters = AppendWaiters::default();
        let a = waiters.register([("t", 0), ("t", 0), ("t", 1)]);
        let b = waiters.register([("t", 0), ("u", 3)]);
        assert_eq!(a.partitions.len(), 2, "duplicates are registered once");
        drop(a);
        assert_eq!(waiters.lock()["t"].len(), 1);
        drop(b);
        assert!(waiters.lock().is_empty());
        assert_eq!(waiters.parked(), 0);
    }
}
