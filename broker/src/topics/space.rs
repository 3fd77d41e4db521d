//! Free space for new partitions: how much one preallocates, and how much the data
//! directory's filesystem has left.
//!
//! Owns the estimate that lets CreateTopics refuse, before allocating anything, a topic whose
//! partitions cannot all fit: without it a 10,000-partition request on a nearly full disk
//! would allocate until `ENOSPC` and then have to undo its work. It does not reserve space:
//! another writer can still take it between the check and the allocation, which the catalog's
//! rollback covers.

use std::fmt::Debug;
use std::io;
use std::path::Path;

use crate::log::LogConfig;

/// Where the catalog learns the free space of the data directory's filesystem; injected so
/// tests can pose any figure.
pub trait SpaceProbe: Send + Sync + Debug {
    /// Bytes an unprivileged writer may still allocate on the filesystem holding `dir`.
    fn available_bytes(&self, dir: &Path) -> io::Result<u64>;
}

/// The real figure: `statvfs`'s blocks available to unprivileged users times the fragment
/// size (what `df` shows as "Avail").
#[derive(Debug, Default, Clone, Copy)]
pub struct Statvfs;

impl SpaceProbe for Statvfs {
    fn available_bytes(&self, dir: &Path) -> io::Result<u64> {
        let stat = rustix::fs::statvfs(dir)?;
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }
}

/// The size of the filesystem holding a directory, as DescribeLogDirs v4 reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilesystemBytes {
    /// Its whole size (`df`'s "Size").
    pub total_bytes: i64,
    /// What an unprivileged writer may still allocate (`df`'s "Avail", Kafka's usable).
    pub usable_bytes: i64,
}

/// The size of the filesystem holding `dir`, from `statvfs`.
pub fn filesystem_bytes(dir: &Path) -> io::Result<FilesystemBytes> {
    let stat = rustix::fs::statvfs(dir)?;
    let bytes =
        |blocks: u64| i64::try_from(blocks.saturating_mul(stat.f_frsize)).unwrap_or(i64::MAX);
    Ok(FilesystemBytes {
        total_bytes: bytes(stat.f_blocks),
        usable_bytes: bytes(stat.f_bavail),
    })
}

/// Filesystem blocks are allocated whole; 4 KiB is the usual block (ext4, XFS, tmpfs pages).
const BLOCK_BYTES: u64 = 4096;
/// Smallest spacing of index entries, as the log sizes its indexes (a batch is at least 61
/// bytes, so entries can never be closer than that).
const MIN_INDEX_SPACING: u64 = 61;
/// Bytes of one offset-index entry and one time-index entry.
const INDEX_ENTRY_BYTES: u64 = 8;
const TIME_INDEX_ENTRY_BYTES: u64 = 12;

/// Bytes a new partition allocates at once: its first segment, preallocated whole, and the
/// offset and time indexes sized for it (the same sizing as the log's), each in whole blocks.
pub fn preallocated_bytes(config: &LogConfig) -> u64 {
    let segment = u64::from(config.segment_bytes.min(i32::MAX as u32));
    let entries = segment / u64::from(config.index_interval_bytes).max(MIN_INDEX_SPACING) + 2;
    whole_blocks(segment)
        + whole_blocks(entries * INDEX_ENTRY_BYTES)
        + whole_blocks(entries * TIME_INDEX_ENTRY_BYTES)
}

fn whole_blocks(bytes: u64) -> u64 {
    bytes.div_ceil(BLOCK_BYTES) * BLOCK_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_costs_its_segment_and_indexes_in_whole_blocks() {
        let config = LogConfig {
            segment_bytes: 1 << 20,
            index_interval_bytes: 4096,
            ..LogConfig::default()
        };
        // 258 entries: 2,064 bytes of offset index, 3,096 of time index, one block each.
        assert_eq!(preallocated_bytes(&config), (1 << 20) + 2 * 4096);
        let dense = LogConfig {
            index_interval_bytes: 1,
            ..config
        };
        // Entries at most every 61 bytes: 17,191 entries.
        let entries: u64 = (1 << 20) / 61 + 2;
        assert_eq!(
            preallocated_bytes(&dense),
            (1 << 20) + whole_blocks(entries * 8) + whole_blocks(entries * 12)
        );
    }

    #[test]
    fn statvfs_reports_some_space_for_a_temporary_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Statvfs.available_bytes(dir.path()).unwrap() > 0);
        assert!(
            Statvfs
                .available_bytes(&dir.path().join("missing"))
                .is_err()
        );
    }
}
