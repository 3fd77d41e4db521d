//! Memory-mapped files with one appender and any number of readers. The only module of the
//! crate that uses `unsafe`.
//!
//! A [`MappedFile`] owns a file, a mapping of it and a *published length*. Bytes below the
//! published length are immutable for as long as the mapping lives: readers get `&[u8]` or
//! zero-copy [`Bytes`] over them without locks. The appender writes new bytes past the
//! published length (where no reader looks) and only then publishes them with a release store;
//! readers load the length with acquire, so they never see a half-written batch.
//!
//! The appender writes either by copying into the map ([`WritePath::Mmap`]) or with `pwritev`
//! into the same file ([`WritePath::Pwrite`]); a shared mapping and the file share one page
//! cache, so readers see the bytes either way. `docs/benchmarks.md` has the measurements behind
//! the default.
//!
//! A writable file is preallocated to its capacity (see [`Disk::allocate`]) so that a store
//! into the map can never fault for lack of disk space. Sealing trims the file to the
//! published length and maps it again read-only; readers still holding the old mapping keep it
//! alive through an `Arc` and only ever touch bytes below the trimmed length.
//!
//! What this module cannot protect against: another process truncating or rewriting the files
//! under a live mapping. The data directory belongs to one broker (see `docs/operations.md`).

#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use memmap2::{Mmap, MmapOptions, MmapRaw};

use super::config::WritePath;
use crate::storage::Disk;

/// The mapping itself; shared with every `Bytes` handed out so it outlives the file handle.
#[derive(Debug)]
enum Map {
    /// Read-write, preallocated, used for the active segment and its indexes.
    Writable(MmapRaw),
    /// Read-only, exactly the file's length; used once sealed.
    ReadOnly(Mmap),
    /// Zero-length files cannot be mapped.
    Empty,
}

impl Map {
    fn base_ptr(&self) -> *const u8 {
        match self {
            Map::Writable(m) => m.as_ptr(),
            Map::ReadOnly(m) => m.as_ptr(),
            Map::Empty => std::ptr::NonNull::<u8>::dangling().as_ptr(),
        }
    }

    fn capacity(&self) -> usize {
        match self {
            Map::Writable(m) => m.len(),
            Map::ReadOnly(m) => m.len(),
            Map::Empty => 0,
        }
    }

    /// The bytes `[start, end)`.
    ///
    /// # Safety
    /// `start <= end <= capacity`, and the range is published: no writer will store into it
    /// while the returned slice lives.
    unsafe fn slice(&self, start: usize, end: usize) -> &[u8] {
        debug_assert!(start <= end && end <= self.capacity());
        // SAFETY: the caller guarantees the range lies inside the mapping and is immutable;
        // the mapping lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.base_ptr().add(start), end - start) }
    }
}

/// A range of a mapping that keeps the mapping alive; the owner behind zero-copy `Bytes`.
struct MapSlice {
    map: Arc<Map>,
    start: usize,
    end: usize,
}

impl AsRef<[u8]> for MapSlice {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `MappedFile::bytes` only builds a MapSlice over a published range, which is
        // never written again, and `self.map` keeps the mapping alive.
        unsafe { self.map.slice(self.start, self.end) }
    }
}

/// Why an append did not happen. Nothing was published in either case.
#[derive(Debug)]
pub(crate) enum AppendError {
    /// The bytes do not fit in the preallocated space (or the file is sealed).
    NoRoom,
    /// `pwritev` failed.
    Io(io::Error),
}

/// A file mapped into memory, appended to by one writer at a time and read without locks.
#[derive(Debug)]
pub(crate) struct MappedFile {
    file: File,
    path: PathBuf,
    map: Arc<Map>,
    /// Published length: bytes below it are complete and immutable.
    len: AtomicUsize,
    /// How the appender writes.
    write_path: WritePath,
    /// Serialises appenders so that two can never write the same unpublished bytes. The
    /// partition's writer lock already does; this keeps the module sound on its own.
    append_lock: Mutex<()>,
}

impl MappedFile {
    /// Creates a new file, allocates `capacity` bytes for it and maps it read-write.
    pub(crate) fn create(
        path: &Path,
        capacity: usize,
        write_path: WritePath,
        disk: &dyn Disk,
    ) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        match Self::map_writable(file, path, 0, capacity, write_path, disk) {
            Ok(mapped) => Ok(mapped),
            Err(err) => {
                // Leave no half-made segment behind (for example after ENOSPC). The error being
                // returned is the one that matters; a failed unlink is reported next to it.
                if let Err(unlink) = std::fs::remove_file(path) {
                    tracing::warn!(path = %path.display(), error = %unlink, "could not remove partially created file");
                }
                Err(err)
            }
        }
    }

    /// Opens an existing file for appending after its first `valid_len` bytes. Anything after
    /// `valid_len` is discarded first (truncate, then allocate again), so that stale bytes from
    /// before a crash can never be mistaken for new data.
    pub(crate) fn open_writable(
        path: &Path,
        valid_len: usize,
        capacity: usize,
        write_path: WritePath,
        disk: &dyn Disk,
    ) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        file.set_len(valid_len as u64)?;
        Self::map_writable(
            file,
            path,
            valid_len,
            capacity.max(valid_len),
            write_path,
            disk,
        )
    }

    fn map_writable(
        file: File,
        path: &Path,
        valid_len: usize,
        capacity: usize,
        write_path: WritePath,
        disk: &dyn Disk,
    ) -> io::Result<Self> {
        let map = if capacity == 0 {
            Map::Empty
        } else {
            disk.allocate(&file, capacity as u64)?;
            Map::Writable(MmapOptions::new().len(capacity).map_raw(&file)?)
        };
        Ok(Self {
            file,
            path: path.to_path_buf(),
            map: Arc::new(map),
            len: AtomicUsize::new(valid_len),
            write_path,
            append_lock: Mutex::new(()),
        })
    }

    /// Opens an existing file read-only; its whole length is published.
    pub(crate) fn open_read_only(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let map = if len == 0 {
            Map::Empty
        } else {
            // SAFETY: the data directory belongs to this broker; nothing else truncates or
            // writes the file while it is mapped (see the module docs).
            Map::ReadOnly(unsafe { MmapOptions::new().len(len).map(&file)? })
        };
        Ok(Self {
            file,
            path: path.to_path_buf(),
            map: Arc::new(map),
            len: AtomicUsize::new(len),
            write_path: WritePath::default(),
            append_lock: Mutex::new(()),
        })
    }

    /// Published length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Bytes that fit in the mapping in total (published plus free).
    pub(crate) fn capacity(&self) -> usize {
        self.map.capacity()
    }

    /// The published bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        let len = self.len();
        // SAFETY: `len` is published (acquire load) and at most the capacity.
        unsafe { self.map.slice(0, len) }
    }

    /// Zero-copy `Bytes` over published bytes `[start, end)`; clamped to the published length.
    pub(crate) fn bytes(&self, start: usize, end: usize) -> Bytes {
        let len = self.len();
        let end = end.min(len);
        let start = start.min(end);
        if start == end {
            return Bytes::new();
        }
        Bytes::from_owner(MapSlice {
            map: Arc::clone(&self.map),
            start,
            end,
        })
    }

    /// Writes the concatenation of `parts` after the published bytes, then publishes it.
    /// Returns the position it starts at. `disk` performs the write on the `pwrite` path.
    pub(crate) fn append(&self, parts: &[&[u8]], disk: &dyn Disk) -> Result<usize, AppendError> {
        let _appender = self
            .append_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Map::Writable(raw) = &*self.map else {
            return Err(AppendError::NoRoom);
        };
        let start = self.len.load(Ordering::Relaxed);
        let total = parts.iter().map(|p| p.len()).sum::<usize>();
        let end = start.checked_add(total).ok_or(AppendError::NoRoom)?;
        if end > raw.len() {
            return Err(AppendError::NoRoom);
        }
        match self.write_path {
            WritePath::Mmap => {
                let mut at = start;
                for part in parts {
                    // SAFETY: [at, at + part.len()) lies inside [start, end), which is inside
                    // the writable mapping and above the published length: no reader has a
                    // reference into it, and `append_lock` excludes other appenders. The
                    // mapping lives as long as `self`.
                    let dst = unsafe {
                        std::slice::from_raw_parts_mut(raw.as_mut_ptr().add(at), part.len())
                    };
                    dst.copy_from_slice(part);
                    at += part.len();
                }
            }
            WritePath::Pwrite => disk
                .write_all_at(&self.file, parts, start as u64)
                .map_err(AppendError::Io)?,
        }
        self.len.store(end, Ordering::Release);
        Ok(start)
    }

    /// Trims the file to its published length and maps it again, read-only. `self` stays
    /// valid for readers that still hold it.
    pub(crate) fn seal(&self) -> io::Result<MappedFile> {
        let _guard = self
            .append_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.file.set_len(self.len() as u64)?;
        MappedFile::open_read_only(&self.path)
    }

    /// The underlying file, for syncing.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Where the file lives.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::OsDisk;

    fn no_room(r: Result<usize, AppendError>) -> bool {
        matches!(r, Err(AppendError::NoRoom))
    }

    #[test]
    fn append_publish_seal_and_reopen_on_both_write_paths() {
        for path_kind in [WritePath::Mmap, WritePath::Pwrite] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f");
            let f = MappedFile::create(&path, 16, path_kind, &OsDisk).unwrap();
            assert_eq!(f.len(), 0);
            assert_eq!(f.append(&[b"j", b"ello"], &OsDisk).unwrap(), 0);
            assert_eq!(f.append(&[b"world"], &OsDisk).unwrap(), 5);
            assert_eq!(f.as_slice(), b"jelloworld");
            let held = f.bytes(0, 5);
            assert!(no_room(f.append(&[b"too long!"], &OsDisk)));
            let sealed = f.seal().unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 10);
            assert_eq!(sealed.as_slice(), b"jelloworld");
            assert!(no_room(sealed.append(&[b"x"], &OsDisk)));
            drop(f);
            // Bytes handed out before the seal still read correctly after the writer is gone.
            assert_eq!(&held[..], b"jello");
            let reopened = MappedFile::open_writable(&path, 5, 16, path_kind, &OsDisk).unwrap();
            assert_eq!(reopened.as_slice(), b"jello");
            reopened.append(&[b"!"], &OsDisk).unwrap();
            assert_eq!(reopened.as_slice(), b"jello!");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 16);
            // What was written through either path is in the file itself.
            assert_eq!(&std::fs::read(&path).unwrap()[..6], b"jello!");
        }
    }

    #[test]
    fn empty_files_map_and_seal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e");
        let f = MappedFile::create(&path, 0, WritePath::Pwrite, &OsDisk).unwrap();
        assert!(f.as_slice().is_empty());
        assert!(f.bytes(0, 10).is_empty());
        let sealed = f.seal().unwrap();
        assert_eq!(sealed.len(), 0);
    }
}
