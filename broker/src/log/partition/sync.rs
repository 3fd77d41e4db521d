//! Making a partition log durable: syncs on the calling thread or queued on the shared
//! flusher (group commit), waiting for durability, and the interval sweep. What a sync covers:
//! sealed segments, the active segment, the directory after a roll, the recovery point.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{PartitionLog, lock};
use crate::log::Offset;
use crate::log::config::FlushPolicy;
use crate::log::error::LogError;
use crate::log::files::{self, RECOVERY_POINT};
use crate::storage::files::write_atomically;
use crate::storage::{Syncable, Unreached, is_disk_full};

impl PartitionLog {
    /// Syncs everything appended so far, now, on the calling thread. Returns the durable
    /// offset. Concurrent callers share syncs: see [`crate::storage::Flusher`] for the asynchronous path.
    pub fn sync(&self) -> Result<Offset, LogError> {
        let _one_at_a_time = lock(&self.sync_lock);
        if let Some(cause) = self.durable.failure() {
            return Err(LogError::Failed {
                dir: self.dir.clone(),
                cause: Arc::clone(cause),
            });
        }
        let (target, target_bytes, sealed, rolled, active) = {
            let mut w = lock(&self.writer);
            (
                self.end_offset.load(Ordering::Acquire),
                // Read under the writer lock with the end: the bytes of exactly those batches.
                self.appended_bytes.load(Ordering::Relaxed),
                std::mem::take(&mut w.unsynced_sealed),
                std::mem::take(&mut w.rolled_since_sync),
                Arc::clone(&w.active),
            )
        };
        if target <= self.durable_offset().0 && !rolled {
            return Ok(Offset(target));
        }
        let synced = (|| {
            for segment in &sealed {
                segment.sync_all(self.disk.as_ref())?;
            }
            active.sync_log(self.disk.as_ref())?;
            if rolled {
                // A roll created files: their directory entries must be durable before the
                // records in them are reported durable. (Retention may already have deleted
                // the sealed segments; the new active segment's entry still needs the sync.)
                self.disk.sync_dir(&self.dir)?;
                // Everything before the active segment is now synced: recovery can skip it.
                if let Err(err) = write_atomically(
                    &self.dir,
                    RECOVERY_POINT,
                    &files::encode_recovery_point(active.base_offset()),
                    self.disk.as_ref(),
                ) {
                    if !is_disk_full(&err) {
                        return Err(err);
                    }
                    // The data is synced; only the shortcut for recovery was not written. The
                    // old point stays valid (recovery scans more), so a full disk must not stop
                    // the log: try again at the next sync.
                    tracing::warn!(dir = %self.dir.display(), error = %err, "cannot advance the recovery point: disk full");
                    lock(&self.writer).rolled_since_sync = true;
                }
            }
            Ok(())
        })();
        match synced {
            Ok(()) => {
                *lock(&self.last_sync) = Instant::now();
                self.synced_bytes.fetch_max(target_bytes, Ordering::Relaxed);
                self.durable.advance(target);
                Ok(Offset(target))
            }
            Err(err) => Err(self.fail(err)),
        }
    }

    /// Waits until every record below `offset` is on disk, sharing syncs with every other
    /// waiter (group commit). Fails if the log fails before that.
    pub async fn wait_durable(&self, offset: Offset) -> Result<(), LogError> {
        self.durable
            .wait(offset.0, || self.request_sync())
            .await
            .map_err(|unreached| match unreached {
                Unreached::Failed(cause) => LogError::Failed {
                    dir: self.dir.clone(),
                    cause,
                },
                Unreached::Closed => LogError::Closed(self.dir.clone()),
            })
    }

    /// Queues a sync on the flusher unless one is queued already. Callers about to wait for
    /// several logs call this on each first, so the syncs run in parallel.
    pub fn request_sync(&self) {
        if !self.sync_queued.swap(true, Ordering::AcqRel) {
            if let Some(me) = self.me.upgrade() {
                self.flusher.schedule(me);
            }
        }
    }

    /// Whether this log's policy wants appends acknowledged only once durable.
    pub fn sync_before_ack(&self) -> bool {
        self.flush == FlushPolicy::EveryAppend
    }
}

impl Syncable for PartitionLog {
    /// Called by a flusher thread for a queued sync.
    fn run_scheduled_sync(&self) {
        // Cleared before syncing: appends arriving during the sync queue the next one.
        self.sync_queued.store(false, Ordering::Release);
        if let Err(err) = self.sync() {
            tracing::debug!(dir = %self.dir.display(), error = %err, "scheduled sync failed");
        }
    }

    /// Called by the flusher's ticker for logs with an interval policy.
    fn sync_if_older_than(&self, every: Duration) {
        let dirty = self.end_offset.load(Ordering::Acquire) > self.durable_offset().0;
        if dirty && lock(&self.last_sync).elapsed() >= every {
            self.request_sync();
        }
    }
}
