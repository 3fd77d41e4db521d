//! The persisted log start offset: the `log-start-offset` file of a partition directory and the
//! rule that recovers the start from it.
//!
//! Owns the file's name, its bytes (the checksummed `i64` record of
//! [`crate::storage::files`], written with its atomic write) and [`recover_start`], the pure
//! decision of where a reopened log starts. It does not move the start (that is
//! `PartitionLog::delete_records_before`) nor delete segments.
//!
//! Invariants:
//! - the start a log opens with is at least its first segment's base offset and at most its
//!   recovered log end offset;
//! - a start offset that was durable (the file written and synced) is never gone back below
//!   by a crash: the atomic write leaves the old or the new value, and the old value was
//!   written only after every record below it was durable, so recovery never cuts the log
//!   below a durable start (except for damage, see [`StartDecision::PastEnd`]);
//! - a missing file means no DeleteRecords ever advanced the start (or retention has since
//!   deleted past it): the first segment's base offset is the start.
//!
//! ```text
//! <dir>/log-start-offset   12 bytes: start offset i64 big-endian, CRC-32 of those 8 bytes u32
//! ```

use std::io;
use std::path::Path;

use crate::storage::Disk;
use crate::storage::files::{decode_checksummed_i64, encode_checksummed_i64, write_atomically};

/// Name of the start-offset checkpoint in a partition directory (Kafka keeps the same value
/// for all partitions of a data directory in `log-start-offset-checkpoint`).
pub(crate) const LOG_START_OFFSET: &str = "log-start-offset";

/// What the checkpoint file held when the log opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checkpoint {
    /// No file: DeleteRecords never advanced this log's start.
    Missing,
    /// A file whose length or checksum is wrong.
    Damaged,
    /// A valid record.
    Valid(i64),
}

/// Where a reopened log starts, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartDecision {
    /// No checkpoint above the first segment's base (missing, or retention deleted past it).
    FirstSegment(i64),
    /// The checkpoint, inside the log.
    Checkpoint(i64),
    /// The checkpoint lies past the recovered log end: recovery cut records the start had
    /// already covered (damage, since the start is written only once everything below it is
    /// durable). The log starts at its end: nothing below the durable start is exposed.
    PastEnd {
        /// The checkpoint's value.
        checkpoint: i64,
        /// Where the log starts: its end.
        end: i64,
    },
    /// The file is damaged: the first segment's base offset is all that is known.
    Damaged(i64),
}

impl StartDecision {
    /// The log start offset decided.
    pub(crate) fn offset(self) -> i64 {
        match self {
            Self::FirstSegment(o) | Self::Checkpoint(o) | Self::Damaged(o) => o,
            Self::PastEnd { end, .. } => end,
        }
    }
}

/// Reads the checkpoint of `dir`. An unreadable file other than a missing one is an error.
pub(crate) fn read(dir: &Path) -> io::Result<Checkpoint> {
    match std::fs::read(dir.join(LOG_START_OFFSET)) {
        Ok(bytes) => {
            Ok(decode_checksummed_i64(&bytes).map_or(Checkpoint::Damaged, Checkpoint::Valid))
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Checkpoint::Missing),
        Err(err) => Err(err),
    }
}

/// Writes `offset` as the checkpoint of `dir`, atomically and durably.
pub(crate) fn write(dir: &Path, offset: i64, disk: &dyn Disk) -> io::Result<()> {
    write_atomically(dir, LOG_START_OFFSET, &encode_checksummed_i64(offset), disk)
}

/// The start of a log whose first segment begins at `first_base` and whose recovered end is
/// `end`, given its checkpoint.
///
/// A damaged checkpoint falls back to the first segment: the atomic write never leaves a torn
/// file, so damage means the disk changed the bytes after they were written, and the segments
/// wholly below the lost start were deleted when it was set, so at most the records of the
/// first segment below it come back.
pub(crate) fn recover_start(checkpoint: Checkpoint, first_base: i64, end: i64) -> StartDecision {
    match checkpoint {
        Checkpoint::Missing => StartDecision::FirstSegment(first_base),
        Checkpoint::Damaged => StartDecision::Damaged(first_base),
        Checkpoint::Valid(offset) if offset <= first_base => {
            StartDecision::FirstSegment(first_base)
        }
        Checkpoint::Valid(offset) if offset > end => StartDecision::PastEnd {
            checkpoint: offset,
            end: end.max(first_base),
        },
        Checkpoint::Valid(offset) => StartDecision::Checkpoint(offset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::OsDisk;

    #[test]
    fn missing_file_starts_at_the_first_segment() {
        assert_eq!(
            recover_start(Checkpoint::Missing, 40, 100),
            StartDecision::FirstSegment(40)
        );
    }

    #[test]
    fn checkpoint_inside_the_log_wins() {
        assert_eq!(
            recover_start(Checkpoint::Valid(57), 40, 100),
            StartDecision::Checkpoint(57)
        );
        assert_eq!(recover_start(Checkpoint::Valid(100), 40, 100).offset(), 100);
    }

    #[test]
    fn retention_past_the_checkpoint_wins() {
        assert_eq!(
            recover_start(Checkpoint::Valid(10), 40, 100),
            StartDecision::FirstSegment(40)
        );
    }

    #[test]
    fn checkpoint_past_the_end_exposes_nothing() {
        let decision = recover_start(Checkpoint::Valid(150), 40, 100);
        assert_eq!(
            decision,
            StartDecision::PastEnd {
                checkpoint: 150,
                end: 100
            }
        );
        assert_eq!(decision.offset(), 100);
    }

    #[test]
    fn damaged_file_falls_back_to_the_first_segment() {
        assert_eq!(
            recover_start(Checkpoint::Damaged, 40, 100),
            StartDecision::Damaged(40)
        );
    }

    #[test]
    fn file_round_trips_and_detects_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), Checkpoint::Missing);
        write(dir.path(), 1234, &OsDisk).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Checkpoint::Valid(1234));
        let path = dir.path().join(LOG_START_OFFSET);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[3] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Checkpoint::Damaged);
        std::fs::write(&path, &bytes[..7]).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Checkpoint::Damaged);
    }
}
