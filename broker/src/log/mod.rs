//! One partition's append-only log.
//!
//! Owns the files of one partition directory: segments of raw v2 record batches
//! (`<base offset>.log`, memory-mapped), their sparse offset and time indexes, the recovery
//! checkpoint and the clean-shutdown marker. It assigns offsets, makes appends durable with
//! group commit, recovers after a crash and applies retention.
//!
//! It does not know about topics, requests, producers or consumers: the only wire type it sees
//! is the raw batch it stores (validated through `weir_protocol::record_batch`, or handed in
//! as a `ProducedBatch` whose header that module parsed; the log still verifies its contents).
//!
//! Invariants (checked by the tests in `broker/tests/`):
//! - offsets are dense and strictly increasing across batches and segments;
//! - a reader only ever sees whole, validated batches below the published end of a segment;
//! - an offset reported durable by [`PartitionLog::wait_durable`] survives a crash of the
//!   process or the machine;
//! - after a write or fsync error the log accepts no more writes ([`LogError::Failed`]) and never
//!   touches what was already acknowledged; running out of space is not such an error: it is
//!   met before anything is published (a segment is allocated whole before use), refused as
//!   [`LogError::DiskFull`], and later appends succeed once there is space;
//! - a read never hands out a damaged batch: batches are verified on the way out
//!   ([`LogError::Corrupt`] for one that fails), and one damaged batch hides none of its
//!   intact neighbours (walks resynchronise after it);
//! - a read never hands out a batch at or beyond the high watermark it reports: it is bounded
//!   by one end snapshot taken before the segment list, not by the bytes segments publish;
//! - recovery cuts only the last segment; damage in a sealed segment is kept, refused on read
//!   and reported, and later segments are kept;
//! - indexes are caches: deleting or damaging them loses nothing, they are rebuilt from `.log`.
//!
//! The byte layout of every file and the crash analysis live in `docs/storage-format.md`.
//!
//! What it shares with the other stores lives one floor below, in [`crate::storage`]: the
//! [`Disk`] seam, atomic small-file writes, the [`Flusher`] threads and the durable watermark
//! ([`PartitionLog`] implements the flusher's `Syncable`).

pub mod cleaner;
mod config;
pub mod epochs;
mod error;
pub(crate) mod files;
mod index;
mod mmap;
mod partition;
pub mod policy;
mod recovery;
mod scan;
mod segment;
mod start_offset;
pub(crate) mod swap;

pub use config::{
    CleanupPolicy, CompactionConfig, FlushPolicy, LogConfig, MessageRules, TimestampType, WritePath,
};
pub use epochs::{EpochEntry, EpochError};
pub use error::LogError;
// The disk seam and the sync threads moved to `crate::storage`; re-exported where they used to
// be so that callers of `weir_broker::log::{Disk, Flusher, ...}` keep compiling.
pub use crate::storage::disk;
pub use crate::storage::{Disk, FaultyDisk, Flusher, OsDisk};
pub use partition::{AppendInfo, LogOptions, PartitionLog, ReadResult, Restart};
pub use recovery::{DamagedRange, RecoveryReport, TruncatedTail};

use std::fmt;

/// A position in a partition: the index of a record, counted from 0 when the partition was
/// created. A newtype so it cannot be confused with a timestamp or a byte position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(pub i64);

impl Offset {
    /// The offset `n` records later.
    pub fn plus(self, n: i64) -> Offset {
        Offset(self.0.saturating_add(n))
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
