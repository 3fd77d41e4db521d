//! Opening many partition logs at once.
//!
//! Owns the bounded pool that start-up uses to open (and, after a crash, recover) every
//! partition: one after the other, thousands of partitions took up to a minute, nearly all of
//! it waiting on reads and syncs. It knows nothing of logs; it maps a fallible job over a list
//! with a fixed number of scoped threads and keeps the results in order.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// Threads per CPU: the work is mostly waiting for the disk, so more threads than CPUs keep
/// it busy.
const THREADS_PER_CPU: usize = 4;
/// Bounds on the pool: at least a few even on one CPU, never hundreds of threads (each holds
/// a partition's files and maps while it works).
const MIN_THREADS: usize = 4;
const MAX_THREADS: usize = 32;

/// The number of threads [`try_map`] uses on this machine.
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .saturating_mul(THREADS_PER_CPU)
        .clamp(MIN_THREADS, MAX_THREADS)
}

/// Runs `job` on every item with up to `threads` threads and returns the results in item
/// order, or the error of the earliest item that failed. After a failure no new item is
/// started. If no thread can be spawned, the items run on the calling thread.
pub(crate) fn try_map<I, T, E, F>(items: &[I], threads: usize, job: F) -> Result<Vec<T>, E>
where
    I: Sync,
    T: Send,
    E: Send,
    F: Fn(&I) -> Result<T, E> + Sync,
{
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Vec<Mutex<Option<Result<T, E>>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let work = || {
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            let result = job(item);
            if result.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            *slots[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
        }
    };
    std::thread::scope(|scope| {
        let mut spawned = 0;
        for n in 0..threads.min(items.len()) {
            match std::thread::Builder::new()
                .name(format!("weir-open-{n}"))
                .spawn_scoped(scope, work)
            {
                Ok(_) => spawned += 1,
                Err(err) => {
                    tracing::warn!(error = %err, spawned, "cannot start another thread to open partitions");
                    break;
                }
            }
        }
        if spawned == 0 {
            work();
        }
    });
    let mut out = Vec::with_capacity(items.len());
    let mut skipped = false;
    for slot in slots {
        match slot.into_inner().unwrap_or_else(PoisonError::into_inner) {
            Some(Ok(value)) => out.push(value),
            Some(Err(err)) => return Err(err),
            // Only items after a failure are skipped, and that failure is returned above or
            // below.
            None => skipped = true,
        }
    }
    debug_assert!(!skipped, "items were skipped although none failed");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::time::Duration;

    #[test]
    fn results_keep_item_order_and_threads_really_overlap() {
        let items: Vec<u32> = (0..200).collect();
        let threads_seen = Mutex::new(HashSet::new());
        let out = try_map(&items, 8, |&i| {
            threads_seen
                .lock()
                .unwrap()
                .insert(std::thread::current().id());
            std::thread::sleep(Duration::from_millis(1));
            Ok::<_, String>(i * 2)
        })
        .unwrap();
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert!(threads_seen.lock().unwrap().len() > 1);
    }

    #[test]
    fn the_earliest_failure_is_returned_and_later_items_are_not_started() {
        let items: Vec<u32> = (0..10_000).collect();
        let started = AtomicUsize::new(0);
        let err = try_map(&items, 4, |&i| {
            started.fetch_add(1, Ordering::SeqCst);
            if i == 5 || i == 7 { Err(i) } else { Ok(i) }
        })
        .unwrap_err();
        assert_eq!(err, 5);
        assert!(started.load(Ordering::SeqCst) < items.len());
        let empty: Vec<u32> = Vec::new();
        assert_eq!(try_map(&empty, 4, |&i| Ok::<_, ()>(i)).unwrap(), empty);
    }
}
