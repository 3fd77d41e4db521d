//! The log's side of its leader-epoch history ([`crate::log::epochs`]): loading or rebuilding
//! it at open, keeping it in step with appends and log start moves, and the public lookups
//! (latest epoch, OffsetForLeaderEpoch).
//!
//! Order at open: the file is read *before* recovery, because its latest epoch bounds the
//! epochs recovery accepts in a batch (the field lies outside the CRC: a value this log never
//! wrote is damage). Without a file the bound is the epoch a log may hold without one; with a
//! damaged file nothing bounds them but the field's range. Either way the history is then
//! rebuilt from the recovered batches. After recovery, entries at or past the
//! recovered end (their batch never reached the disk) and below the log start are dropped.

use std::path::Path;

use super::PartitionLog;
use crate::log::Offset;
use crate::log::epochs::{self, EpochEntry, EpochError, EpochHistory, FILELESS_EPOCH, Stored};
use crate::log::error::LogError;
use crate::log::segment::Segment;
use crate::storage::{Disk, is_disk_full};

/// The history file as read before recovery, and the epoch bound recovery applies.
pub(super) struct Loaded {
    stored: Stored,
}

impl Loaded {
    /// Reads the history file of `dir` (missing when the directory does not exist yet).
    pub(super) fn read(dir: &Path) -> Result<Self, LogError> {
        let stored =
            epochs::read(dir).map_err(LogError::io("read leader-epoch history of", dir))?;
        Ok(Self { stored })
    }

    /// The largest epoch recovery accepts in a batch: the file's latest; without a file,
    /// [`FILELESS_EPOCH`] (a later epoch creates the file before its first batch); any epoch
    /// when the file is damaged.
    pub(super) fn max_epoch(&self) -> i32 {
        match &self.stored {
            Stored::Valid(entries) => entries
                .last()
                .map_or(FILELESS_EPOCH, |e| e.epoch.max(FILELESS_EPOCH)),
            Stored::Missing => FILELESS_EPOCH,
            Stored::Damaged => i32::MAX,
        }
    }

    /// The history of the recovered log: the file's entries, or those rebuilt from the batch
    /// headers of `segments` below `end`; cut to `[start, end)` and saved when it changed.
    pub(super) fn finish(
        self,
        dir: &Path,
        segments: &[std::sync::Arc<Segment>],
        start: i64,
        end: i64,
        disk: &dyn Disk,
    ) -> Result<EpochHistory, LogError> {
        let damaged = self.stored == Stored::Damaged;
        let (entries, rebuilt) = match self.stored {
            Stored::Valid(entries) => (entries, false),
            stored => {
                if stored == Stored::Damaged {
                    tracing::error!(dir = %dir.display(),
                        "leader-epoch-checkpoint is damaged; rebuilding it from the batches");
                }
                let headers = segments.iter().flat_map(|s| {
                    s.batches_from(0)
                        .map(|b| (b.header.partition_leader_epoch, b.header.base_offset))
                        .take_while(|&(_, base)| base < end)
                });
                (epochs::rebuild(headers), true)
            }
        };
        let history = EpochHistory::new(dir, entries, !rebuilt);
        let io = |err: EpochError| match err {
            EpochError::Io { path, source } => LogError::Io {
                op: "write leader-epoch history",
                path,
                source,
            },
            other => LogError::Epoch(other),
        };
        let cut_end = history.truncate_from(end, disk).map_err(io)?;
        let cut_start = history.truncate_before(start, disk).map_err(io)?;
        // A new (or never written) log without a file stays without one until its first
        // append: creating thousands of partitions must not cost a synced write each.
        let worth_saving = damaged || history.latest_epoch().is_some();
        if rebuilt && !cut_end && !cut_start && worth_saving {
            history.save(disk).map_err(io)?;
        }
        Ok(history)
    }
}

impl PartitionLog {
    /// Records that the batch about to be written at `base` carries `epoch` (caller holds the
    /// writer lock, and writes the batch only if this succeeds). A failed history write
    /// refuses the append: a full disk leaves the log usable, any other error stops it.
    pub(super) fn observe_epoch(&self, epoch: i32, base: i64) -> Result<(), LogError> {
        match self.epochs.observe(epoch, base, self.disk.as_ref()) {
            Ok(()) => Ok(()),
            Err(EpochError::Io { path, source }) if is_disk_full(&source) => {
                Err(LogError::DiskFull { path, source })
            }
            Err(EpochError::Io { source, .. }) => Err(self.fail(source)),
            Err(err) => Err(LogError::Epoch(err)),
        }
    }

    /// At close: the history file is created if the log has none (best effort; see
    /// [`EpochHistory::save_if_missing`]). Never fails the close.
    pub(super) fn epochs_closed(&self) -> std::io::Result<()> {
        if let Err(err) = self.epochs.save_if_missing(self.disk.as_ref()) {
            tracing::warn!(dir = %self.dir.display(), error = %err,
                "could not write the leader-epoch history at close; the next open rebuilds it");
        }
        Ok(())
    }

    /// The log start moved to `start`: epochs wholly below it leave the history. A failure is
    /// logged, not returned: entries below the start answer nothing wrong (a request for an
    /// epoch below the first still gets the first start), and the next open cuts them again.
    pub(super) fn epochs_start_moved(&self, start: i64) {
        if let Err(err) = self.epochs.truncate_before(start, self.disk.as_ref()) {
            tracing::warn!(dir = %self.dir.display(), error = %err,
                "could not trim the leader-epoch history to the new log start");
        }
    }

    /// The latest leader epoch of the log (the epoch of its last batch's leader), if any batch
    /// was written with one.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// The largest epoch a stored batch of this log may carry (the highest the history has
    /// held since open): what verifying scans check the field against.
    pub(crate) fn max_stored_epoch(&self) -> i32 {
        self.epochs.max_epoch()
    }

    /// The epoch of the leader that wrote `offset` (the entry starting at or below it; Kafka's
    /// `epochForOffset`), if the history places it.
    pub fn epoch_for_offset(&self, offset: Offset) -> Option<i32> {
        self.epochs.epoch_for_offset(offset.0)
    }

    /// The leader-epoch history, oldest first.
    pub fn epoch_history(&self) -> Vec<EpochEntry> {
        self.epochs.entries()
    }

    /// OffsetForLeaderEpoch: the largest epoch at or below `requested` and the offset where
    /// it ends (the log end offset for the latest epoch); `(-1, -1)` for an epoch the log
    /// cannot place. See [`EpochHistory::end_offset_for`] for every case.
    pub fn end_offset_for_epoch(&self, requested: i32) -> (i32, Offset) {
        // The history before the end: an append records its epoch before it moves the end, so
        // the end read second covers the latest epoch's batches.
        let latest = self.epochs.latest_epoch();
        let end = self.log_end_offset().0;
        let (epoch, offset) = if latest == Some(requested) {
            (requested, end)
        } else {
            self.epochs.end_offset_for(requested, end)
        };
        (epoch, Offset(offset))
    }

    /// Drops the history's entries at or past `offset`, after the log was cut to end there
    /// (a suffix truncation: the log first, then the history, see [`crate::log::epochs`]).
    pub fn truncate_epochs_from(&self, offset: Offset) -> Result<(), LogError> {
        match self.epochs.truncate_from(offset.0, self.disk.as_ref()) {
            Ok(_) => Ok(()),
            Err(EpochError::Io { source, .. }) => Err(self.fail(source)),
            Err(err) => Err(LogError::Epoch(err)),
        }
    }
}
