//! The few file operations whose failure the broker's stores must survive, behind a trait so
//! tests can inject them.
//!
//! Owns [`Disk`] (allocate, write, sync), the real [`OsDisk`], the failure-injecting
//! [`FaultyDisk`] and `is_disk_full`, the one place that says which errors mean "no space".
//! It does not decide what a failure means for a store (refuse one write or stop): that is the
//! caller's rule.
//!
//! Everything else (opening, mapping, renaming) goes straight to the OS: its failures surface
//! as the owner's I/O error at open time. What is routed here is exactly what can fail while a
//! store is serving: allocating a new segment (disk full), writing on the `pwrite` path
//! (partition logs, the offsets log), and syncing (EIO after a device error, or ENOSPC on
//! filesystems that allocate at writeback).

use std::fmt::Debug;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// Allocation, writes and syncs of store files.
pub trait Disk: Send + Sync + Debug {
    /// Makes `file` at least `len` bytes long with every block allocated, so that writes
    /// through a memory map can never hit ENOSPC (which would be SIGBUS).
    fn allocate(&self, file: &File, len: u64) -> io::Result<()>;
    /// Writes all of `parts`, one after the other, at `offset` (`pwritev`, resumed after short
    /// writes).
    fn write_all_at(&self, file: &File, parts: &[&[u8]], offset: u64) -> io::Result<()> {
        pwritev_all(file, parts, offset)
    }
    /// `fdatasync`: the file's data and the metadata needed to read it are on stable storage.
    fn sync_data(&self, file: &File) -> io::Result<()>;
    /// `fsync` of a directory, so that created, renamed and deleted entries are durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real thing: `fallocate`, `fdatasync`, `fsync`.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsDisk;

impl Disk for OsDisk {
    fn allocate(&self, file: &File, len: u64) -> io::Result<()> {
        let current = file.metadata()?.len();
        if current >= len {
            return Ok(());
        }
        // Mode 0 allocates the blocks and extends the file size: the map over it is then
        // backed by reserved space.
        rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, len)
            .map_err(io::Error::from)
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// True for the errors that mean "no space on the device".
pub(crate) fn is_disk_full(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(code) if code == rustix::io::Errno::NOSPC.raw_os_error() || code == rustix::io::Errno::DQUOT.raw_os_error())
        || err.kind() == io::ErrorKind::StorageFull
}

/// `pwritev` of all of `parts` at `offset`, resuming after short writes and interruptions.
pub(crate) fn pwritev_all(file: &File, parts: &[&[u8]], offset: u64) -> io::Result<()> {
    let mut parts: Vec<&[u8]> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    let mut offset = offset;
    while !parts.is_empty() {
        let slices: Vec<io::IoSlice<'_>> = parts.iter().map(|p| io::IoSlice::new(p)).collect();
        let written = match rustix::io::pwritev(file, &slices, offset) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
        };
        offset += written as u64;
        let mut skip = written;
        while let Some(first) = parts.first_mut() {
            if skip < first.len() {
                *first = &first[skip..];
                break;
            }
            skip -= first.len();
            parts.remove(0);
        }
    }
    Ok(())
}

/// A [`Disk`] that passes through to [`OsDisk`] but can be told to fail: a byte budget for
/// allocation (ENOSPC once exhausted), and switches that make every write or every sync fail
/// with EIO.
/// Used by the failure-injection tests; cheap enough to leave in the library.
#[derive(Debug)]
pub struct FaultyDisk {
    space_left: AtomicI64,
    fail_sync: AtomicBool,
    fail_write: AtomicBool,
    syncs: AtomicU64,
}

impl FaultyDisk {
    /// A disk with `space_bytes` left for allocations.
    pub fn new(space_bytes: i64) -> Self {
        Self {
            space_left: AtomicI64::new(space_bytes),
            fail_sync: AtomicBool::new(false),
            fail_write: AtomicBool::new(false),
            syncs: AtomicU64::new(0),
        }
    }

    /// Frees (or, negative, takes) space.
    pub fn add_space(&self, bytes: i64) {
        self.space_left.fetch_add(bytes, Ordering::SeqCst);
    }

    /// From now on every sync fails (`true`) or succeeds (`false`).
    pub fn set_fail_sync(&self, fail: bool) {
        self.fail_sync.store(fail, Ordering::SeqCst);
    }

    /// From now on every write on the `pwrite` path fails (`true`) or succeeds (`false`).
    pub fn set_fail_write(&self, fail: bool) {
        self.fail_write.store(fail, Ordering::SeqCst);
    }

    /// Number of successful `sync_data` calls so far (to observe group commit).
    pub fn sync_count(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }
}

impl Disk for FaultyDisk {
    fn allocate(&self, file: &File, len: u64) -> io::Result<()> {
        let current = file.metadata()?.len();
        let extra = i64::try_from(len.saturating_sub(current)).unwrap_or(i64::MAX);
        if self.space_left.fetch_sub(extra, Ordering::SeqCst) < extra {
            self.space_left.fetch_add(extra, Ordering::SeqCst);
            return Err(io::Error::from_raw_os_error(
                rustix::io::Errno::NOSPC.raw_os_error(),
            ));
        }
        OsDisk.allocate(file, len)
    }

    fn write_all_at(&self, file: &File, parts: &[&[u8]], offset: u64) -> io::Result<()> {
        if self.fail_write.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(
                rustix::io::Errno::IO.raw_os_error(),
            ));
        }
        pwritev_all(file, parts, offset)
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        if self.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(
                rustix::io::Errno::IO.raw_os_error(),
            ));
        }
        OsDisk.sync_data(file)?;
        self.syncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(
                rustix::io::Errno::IO.raw_os_error(),
            ));
        }
        OsDisk.sync_dir(dir)
    }
}
