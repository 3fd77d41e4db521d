//! Errors of the partition log, split by what the caller can do about them.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use weir_protocol::record_batch::BatchError;

use super::Offset;

/// A failed log operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The batch is malformed; nothing was written. Maps to Kafka's CORRUPT_MESSAGE.
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] BatchError),
    /// The batch is larger than a segment can ever hold. Maps to MESSAGE_TOO_LARGE.
    #[error("record batch of {size} bytes exceeds the segment size of {max} bytes")]
    BatchTooLarge {
        /// Size of the rejected batch.
        size: usize,
        /// Largest batch a segment holds.
        max: usize,
    },
    /// A replica was asked to cut its log below what is committed (a Raft invariant broken
    /// by the caller); nothing was changed. Maps to KAFKA_STORAGE_ERROR.
    #[error("refusing to cut the log at {offset}, below its high watermark {high_watermark}")]
    TruncateBelowCommitted {
        /// Where the cut was asked for.
        offset: Offset,
        /// The committed offset.
        high_watermark: Offset,
    },
    /// A replica was asked to cut its log at an offset where no batch starts; nothing was
    /// changed. Maps to KAFKA_STORAGE_ERROR.
    #[error("no batch of the log starts at offset {0}")]
    NotABatchStart(Offset),
    /// The requested offset is outside `[log start, log end]`. Maps to OFFSET_OUT_OF_RANGE.
    #[error("offset {requested} is out of range [{start}, {end}]")]
    OffsetOutOfRange {
        /// The offset asked for.
        requested: Offset,
        /// Log start offset.
        start: Offset,
        /// Log end offset.
        end: Offset,
    },
    /// No space for a new segment. Nothing was written and the log stays usable: the append
    /// can be retried once space is freed. Maps to KAFKA_STORAGE_ERROR.
    #[error("no space left to allocate segment {path}: {source}")]
    DiskFull {
        /// The segment file that could not be allocated.
        path: PathBuf,
        /// The underlying error (ENOSPC or EDQUOT).
        #[source]
        source: io::Error,
    },
    /// An earlier write or sync failed, so the log refuses writes until it is reopened (and
    /// recovered). Acknowledged data is untouched. Maps to KAFKA_STORAGE_ERROR.
    #[error("log {dir} is failed after an I/O error and accepts no writes: {cause}")]
    Failed {
        /// The partition directory.
        dir: PathBuf,
        /// The error that stopped the log.
        #[source]
        cause: Arc<io::Error>,
    },
    /// The batch at `offset` failed its check on the read path (CRC-32C, length, magic, or an
    /// offset that breaks the dense sequence): the bytes on disk are damaged. It is not
    /// served; batches before it still are. Maps to CORRUPT_MESSAGE.
    #[error(
        "damaged batch in {dir} at offset {offset} (segment {segment}, byte {position}): {reason}"
    )]
    Corrupt {
        /// The partition directory.
        dir: PathBuf,
        /// The offset that was asked for (the damaged batch holds it or lies just before it).
        offset: Offset,
        /// Base offset of the segment holding the damage.
        segment: i64,
        /// Byte position of the damaged batch in the segment.
        position: usize,
        /// What is wrong.
        reason: String,
    },
    /// The log was closed.
    #[error("log {0} is closed")]
    Closed(PathBuf),
    /// DeleteRecords on a log whose cleanup policy does not include `delete` (Kafka's
    /// POLICY_VIOLATION: a compacted log keeps its records by key, not by offset).
    #[error("records of {0} cannot be deleted: its cleanup policy does not include delete")]
    DeleteForbidden(PathBuf),
    /// The leader-epoch history refused an append: its epoch is older than the log's latest
    /// (a deposed leader's write). Nothing was written. Maps to FENCED_LEADER_EPOCH.
    #[error(transparent)]
    Epoch(#[from] super::epochs::EpochError),
    /// An I/O error while opening, recovering or rolling.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("create segment", "read checkpoint", ...).
        op: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl LogError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { op, path, source }
    }
}
