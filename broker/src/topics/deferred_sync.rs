//! Directory syncs of start-up, done together once every partition is open.
//!
//! Opening a partition ends with an `fsync` of its directory (the clean-shutdown marker
//! removed, a recovery point renamed into place): one sync per partition, each a journal
//! commit, taken one after another. While the catalog opens its partitions, the logs get a
//! [`Disk`] that only notes which directories need a sync; when all are open the catalog
//! syncs them, on its pool, before any log is handed out.
//!
//! Why this is safe: only *directory* syncs wait, never a file's data sync, so every ordering
//! the log relies on between data and the entries naming it is kept (data is synced before a
//! rename, as before). Nothing a directory sync covers is depended on until a log accepts a
//! write, and no log is reachable before [`DeferredDirSyncs::finish`] has synced everything
//! it noted. A crash before that finds each directory as the crashed start left it, and
//! recovery runs again. After `finish` the wrapper passes every call straight through.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::parallel;
use crate::log::Disk;

/// A [`Disk`] whose directory syncs wait for [`Self::finish`] while it is deferring.
#[derive(Debug)]
pub(crate) struct DeferredDirSyncs {
    inner: Arc<dyn Disk>,
    deferring: AtomicBool,
    /// Directories whose sync is owed, each once however often it was asked for.
    pending: Mutex<BTreeSet<PathBuf>>,
}

impl DeferredDirSyncs {
    /// Defers `inner`'s directory syncs until [`Self::finish`].
    pub(crate) fn new(inner: Arc<dyn Disk>) -> Self {
        Self {
            inner,
            deferring: AtomicBool::new(true),
            pending: Mutex::new(BTreeSet::new()),
        }
    }

    /// Stops deferring and syncs every directory noted so far, on up to `threads` threads.
    /// Must be called before any log opened with this disk is used.
    pub(crate) fn finish(&self, threads: usize) -> Result<(), (PathBuf, io::Error)> {
        self.deferring.store(false, Ordering::SeqCst);
        let dirs: Vec<PathBuf> =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner))
                .into_iter()
                .collect();
        parallel::try_map(&dirs, threads, |dir| {
            self.inner
                .sync_dir(dir)
                .map_err(|source| (dir.clone(), source))
        })
        .map(drop)
    }
}

impl Disk for DeferredDirSyncs {
    fn allocate(&self, file: &File, len: u64) -> io::Result<()> {
        self.inner.allocate(file, len)
    }

    fn write_all_at(&self, file: &File, parts: &[&[u8]], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(file, parts, offset)
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        self.inner.sync_data(file)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.deferring.load(Ordering::SeqCst) {
            self.pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(dir.to_path_buf());
            return Ok(());
        }
        self.inner.sync_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::FaultyDisk;

    #[test]
    fn directory_syncs_wait_for_finish_then_pass_through() {
        let dir = tempfile::tempdir().unwrap();
        let faulty = Arc::new(FaultyDisk::new(1 << 20));
        let disk = DeferredDirSyncs::new(Arc::clone(&faulty) as Arc<dyn Disk>);
        // While deferring, a failing sync is not even attempted...
        faulty.set_fail_sync(true);
        disk.sync_dir(dir.path()).unwrap();
        disk.sync_dir(dir.path()).unwrap();
        assert_eq!(disk.pending.lock().unwrap().len(), 1);
        // ...finish does it, and reports its failure with the directory.
        let (failed_dir, _) = disk.finish(4).unwrap_err();
        assert_eq!(failed_dir, dir.path());
        // Afterwards every sync goes straight to the disk.
        assert!(disk.sync_dir(dir.path()).is_err());
        faulty.set_fail_sync(false);
        disk.sync_dir(dir.path()).unwrap();
        assert!(disk.pending.lock().unwrap().is_empty());
        // File data syncs are never deferred.
        let file = File::create(dir.path().join("f")).unwrap();
        let before = faulty.sync_count();
        let fresh = DeferredDirSyncs::new(Arc::clone(&faulty) as Arc<dyn Disk>);
        fresh.sync_data(&file).unwrap();
        assert_eq!(faulty.sync_count(), before + 1);
        fresh.finish(1).unwrap();
    }
}
