//! The store's shared state and its write side: appending records in ticket order, group
//! commit through the shared flusher, fail-stop, and compaction into a snapshot. The public
//! face ([`super::OffsetStore`]) and the file format are in the parent module.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{
    Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak,
};
use std::time::Duration;

use super::codec::encode_snapshot;
use super::error::{OffsetStoreError, io_error};
use super::live::Offsets;
use super::recovery::{list_dir, log_name, remove_older, snapshot_name};
use super::{OffsetStoreConfig, Ticket};
use crate::storage::files::write_atomically;
use crate::storage::{Disk, Durability, Flusher, Syncable, is_disk_full};

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) dir: PathBuf,
    pub(super) disk: Arc<dyn Disk>,
    pub(super) config: OffsetStoreConfig,
    /// The sync threads that run queued syncs.
    pub(super) flusher: Arc<Flusher>,
    /// Handle to ourselves, for queueing on the flusher.
    pub(super) me: Weak<Inner>,
    /// Appends one at a time, in ticket order.
    pub(super) writer: Mutex<Writer>,
    /// The live offsets, changed under `writer` right after the record is written.
    pub(super) offsets: RwLock<Offsets>,
    /// Highest ticket known durable, and the error that stopped the store (once there is
    /// one): waiters watch it.
    pub(super) durable: Durability<u64>,
    /// One sync at a time, between flusher threads and blocking callers.
    pub(super) sync_lock: Mutex<()>,
    /// Set while a sync of the store is queued on the flusher.
    pub(super) sync_queued: AtomicBool,
    /// One compaction at a time.
    pub(super) compact_lock: Mutex<()>,
}

#[derive(Debug)]
pub(super) struct Writer {
    /// The active log, appended at `position`.
    pub(super) file: Arc<File>,
    /// The active log's generation; the next compaction writes `generation + 1`.
    pub(super) generation: u64,
    /// Bytes of whole records in the active log: where the next record goes.
    pub(super) position: u64,
    /// Ticket of the last record written.
    pub(super) written: u64,
    /// Logs switched away from by compaction whose last records the next sync must cover.
    pub(super) retired: Vec<Arc<File>>,
    /// Bytes in the logs since the newest durable snapshot.
    pub(super) log_bytes: u64,
    /// Set by `close`: writes are refused from then on.
    pub(super) closed: bool,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    /// Writes `record` (if any) as the next record and applies it to the live offsets.
    pub(super) fn append(
        &self,
        record: Option<&[u8]>,
        apply: impl FnOnce(&mut Offsets),
    ) -> Result<Ticket, OffsetStoreError> {
        let mut w = lock(&self.writer);
        if let Some(err) = self.refusal(&w) {
            return Err(err);
        }
        let Some(record) = record else {
            // Nothing to write: waiting on the last ticket is waiting on nothing new.
            return Ok(Ticket(w.written));
        };
        if let Err(err) = self.disk.write_all_at(&w.file, &[record], w.position) {
            if !is_disk_full(&err) {
                return Err(self.fail(err));
            }
            // Running out of space is not a device failure: the bytes before `position` are
            // as they were (unlike after a failed fsync). Cut whatever part of the record got
            // in, so the file ends at the last whole record, and refuse this commit only. If
            // the cut itself fails the tail is unknown: fail-stop.
            if let Err(cut) = w.file.set_len(w.position) {
                tracing::error!(dir = %self.dir.display(), error = %cut, "cannot cut a partial offsets record after a full disk");
                return Err(self.fail(err));
            }
            tracing::warn!(dir = %self.dir.display(), error = %err, "offset commit refused: disk full");
            return Err(OffsetStoreError::DiskFull {
                dir: self.dir.clone(),
                source: err,
            });
        }
        let len = record.len() as u64;
        w.position += len;
        w.log_bytes += len;
        w.written += 1;
        apply(&mut write(&self.offsets));
        Ok(Ticket(w.written))
    }

    /// Why writes are refused, if they are.
    pub(super) fn refusal(&self, w: &Writer) -> Option<OffsetStoreError> {
        if let Some(cause) = self.durable.failure() {
            return Some(OffsetStoreError::Failed {
                dir: self.dir.clone(),
                cause: Arc::clone(cause),
            });
        }
        w.closed.then(|| OffsetStoreError::Closed(self.dir.clone()))
    }

    /// Puts the store in the failed state (fail-stop) and wakes every waiter.
    pub(super) fn fail(&self, err: io::Error) -> OffsetStoreError {
        let cause = self.durable.fail(err);
        tracing::error!(dir = %self.dir.display(), error = %cause, "offsets store failed after an I/O error; refusing writes");
        OffsetStoreError::Failed {
            dir: self.dir.clone(),
            cause,
        }
    }

    /// One sync covering every record written before it starts.
    pub(super) fn sync(&self) -> Result<(), OffsetStoreError> {
        let _one_at_a_time = lock(&self.sync_lock);
        if let Some(cause) = self.durable.failure() {
            return Err(OffsetStoreError::Failed {
                dir: self.dir.clone(),
                cause: Arc::clone(cause),
            });
        }
        // Together, under the append lock: every record up to `target` is in `retired` or
        // `active`. A log retired after this holds later records too: the next sync covers it.
        let (target, retired, active) = {
            let mut w = lock(&self.writer);
            let retired = std::mem::take(&mut w.retired);
            (w.written, retired, Arc::clone(&w.file))
        };
        if target <= self.durable.durable() && retired.is_empty() {
            return Ok(());
        }
        for file in retired.iter().chain([&active]) {
            if let Err(err) = self.disk.sync_data(file) {
                return Err(self.fail(err));
            }
        }
        self.durable.advance(target);
        Ok(())
    }

    /// Queues a sync on the flusher unless one is queued already.
    pub(super) fn request_sync(&self) {
        if !self.sync_queued.swap(true, Ordering::AcqRel) {
            if let Some(me) = self.me.upgrade() {
                self.flusher.schedule(me);
            }
        }
    }

    pub(super) fn compact(&self) -> Result<(), OffsetStoreError> {
        let _one_at_a_time = lock(&self.compact_lock);
        let generation = {
            let w = lock(&self.writer);
            if let Some(err) = self.refusal(&w) {
                return Err(err);
            }
            w.generation
        };
        let next = generation + 1;

        // 1. The new log, with a durable directory entry before any record in it can be
        //    reported durable.
        let log_path = self.dir.join(log_name(next));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map_err(io_error("create log", &log_path))?;
        if let Err(err) = self.disk.sync_dir(&self.dir) {
            if let Err(remove) = fs::remove_file(&log_path) {
                tracing::warn!(path = %log_path.display(), error = %remove, "cannot remove the log of a failed compaction");
            }
            return Err(io_error("sync", &self.dir)(err));
        }

        // 2. Switch appends; the snapshot is the state at the end of the old log.
        let (snapshot, covered) = {
            let mut w = lock(&self.writer);
            if let Some(err) = self.refusal(&w) {
                return Err(err);
            }
            let old = std::mem::replace(&mut w.file, Arc::new(file));
            w.retired.push(old);
            w.generation = next;
            w.position = 0;
            (encode_snapshot(next, &read(&self.offsets)), w.log_bytes)
        };

        // 3. The snapshot, atomically.
        let name = snapshot_name(next);
        write_atomically(&self.dir, &name, &snapshot, self.disk.as_ref())
            .map_err(io_error("write snapshot", &self.dir.join(&name)))?;
        {
            let mut w = lock(&self.writer);
            w.log_bytes = w.log_bytes.saturating_sub(covered);
        }

        // 4. What the snapshot replaces (including leftovers of failed compactions).
        match list_dir(&self.dir) {
            Ok((logs, snapshots)) => remove_older(&self.dir, &logs, &snapshots, next),
            Err(err) => {
                tracing::warn!(error = %err, "cannot list the offsets directory to remove superseded files");
            }
        }
        if let Err(err) = self.disk.sync_dir(&self.dir) {
            // Harmless: deletions that are lost are redone at the next open.
            tracing::warn!(dir = %self.dir.display(), error = %err, "cannot sync the offsets directory after compaction");
        }
        tracing::info!(dir = %self.dir.display(), generation = next, snapshot_bytes = snapshot.len(),
            compacted_log_bytes = covered, "compacted the offsets log");
        Ok(())
    }
}

impl Syncable for Inner {
    /// Called by a flusher thread for a queued sync.
    fn run_scheduled_sync(&self) {
        // Cleared before syncing: records written during the sync queue the next one.
        self.sync_queued.store(false, Ordering::Release);
        if let Err(err) = self.sync() {
            // Waiters get the error through the durable watermark.
            tracing::debug!(dir = %self.dir.display(), error = %err, "offsets sync failed");
        }
    }

    /// The store is never registered for interval sweeps (every commit is waited for before it
    /// is answered); were it swept, any record not yet durable counts as old enough.
    fn sync_if_older_than(&self, _every: Duration) {
        if lock(&self.writer).written > self.durable.durable() {
            self.request_sync();
        }
    }
}
