//! Why an offset-store operation failed: refusals that wrote nothing (too large, too long),
//! the store's fail-stop and full-disk states, damaged files and plain I/O errors. Each maps
//! to one Kafka error code in the OffsetCommit handler.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A failed offset-store operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OffsetStoreError {
    /// A metadata string is too long; nothing was written. OFFSET_METADATA_TOO_LARGE.
    #[error("metadata of {topic}-{partition} is {size} bytes, more than {max}")]
    MetadataTooLarge {
        /// The topic of the offending entry.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Size of the metadata.
        size: usize,
        /// Largest allowed.
        max: usize,
    },
    /// A group or topic name is too long; nothing was written. INVALID_COMMIT_OFFSET_SIZE.
    #[error("{what} name of {size} bytes is longer than {max}")]
    NameTooLong {
        /// "group" or "topic".
        what: &'static str,
        /// Size of the name.
        size: usize,
        /// Largest allowed.
        max: usize,
    },
    /// The whole commit does not fit one record; nothing was written.
    /// INVALID_COMMIT_OFFSET_SIZE.
    #[error("commit of {size} bytes is larger than {max}")]
    CommitTooLarge {
        /// Size of the encoded commit.
        size: usize,
        /// Largest record.
        max: usize,
    },
    /// An earlier write or sync failed: the store accepts no writes until it is reopened.
    /// Acknowledged commits are untouched.
    #[error("offset store {dir} is failed after an I/O error and accepts no writes: {cause}")]
    Failed {
        /// The store's directory.
        dir: PathBuf,
        /// The error that stopped the store.
        #[source]
        cause: Arc<io::Error>,
    },
    /// No space for the record. Nothing was kept (a partial write is cut off again) and the
    /// store stays usable: the commit can be retried once space is freed.
    #[error("no space left to write to the offset store {dir}: {source}")]
    DiskFull {
        /// The store's directory.
        dir: PathBuf,
        /// The underlying error (ENOSPC or EDQUOT).
        #[source]
        source: io::Error,
    },
    /// The store was closed.
    #[error("offset store {0} is closed")]
    Closed(PathBuf),
    /// The files cannot be trusted and guessing could lose commits (see the module docs).
    #[error("offset store file {path} is damaged: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O error while opening or compacting.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

pub(super) fn io_error(
    op: &'static str,
    path: &Path,
) -> impl FnOnce(io::Error) -> OffsetStoreError {
    let path = path.to_path_buf();
    move |source| OffsetStoreError::Io { op, path, source }
}
