//! Moving the log start offset: DeleteRecords (`delete_records_before`), its recovery at open,
//! and the deletion of sealed segments wholly below it.
//!
//! Order of a move, for crash safety: (1) every record below the new start is made durable,
//! (2) the new start is written to `log-start-offset` atomically and synced, (3) it is
//! published to readers, (4) the sealed segments wholly below it are deleted. A crash before
//! (2) completes leaves the old start (the request was not answered); after it, recovery reads
//! the new one and, since the records below it were durable, never cuts the log below it; a
//! crash before (4) leaves segments that the next retention pass deletes (they are never read:
//! reads below the start are out of range).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{PartitionLog, lock};
use crate::log::Offset;
use crate::log::error::LogError;
use crate::log::segment::Segment;
use crate::log::start_offset::{self, StartDecision};
use crate::storage::{Disk, is_disk_full};

/// The request offset that means "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

impl PartitionLog {
    /// Where a log opened in `dir` starts: its checkpoint (if any) bounded by its first
    /// segment's base and its recovered end. Logs what it decided when that is not plain, and
    /// rewrites a checkpoint it did not follow (damaged, or past the end): records appended
    /// from here must not fall below a stale checkpoint at the next open.
    pub(super) fn recover_start(
        dir: &Path,
        first_base: i64,
        end: i64,
        disk: &dyn Disk,
    ) -> Result<i64, LogError> {
        let checkpoint =
            start_offset::read(dir).map_err(LogError::io("read log start offset of", dir))?;
        let decision = start_offset::recover_start(checkpoint, first_base, end);
        match decision {
            StartDecision::Damaged(start) => {
                tracing::error!(dir = %dir.display(), log_start_offset = start,
                    "log-start-offset is damaged; starting at the first segment");
            }
            StartDecision::PastEnd { checkpoint, end } => {
                tracing::error!(dir = %dir.display(), checkpoint, log_end_offset = end,
                    "log start offset lies past the recovered log end; starting at the end");
            }
            StartDecision::FirstSegment(_) | StartDecision::Checkpoint(_) => {}
        }
        if matches!(
            decision,
            StartDecision::Damaged(_) | StartDecision::PastEnd { .. }
        ) {
            start_offset::write(dir, decision.offset(), disk)
                .map_err(LogError::io("rewrite log start offset of", dir))?;
        }
        Ok(decision.offset())
    }

    /// DeleteRecords: makes `offset` the log start offset (`-1`: the high watermark), durably,
    /// and deletes the sealed segments wholly below it. Returns the log start offset after the
    /// call: `offset` when it moved, the current start when `offset` is at or below it (a
    /// no-op, as in Kafka).
    ///
    /// # Errors
    /// [`LogError::OffsetOutOfRange`] for an offset past the high watermark or negative (other
    /// than -1); [`LogError::DeleteForbidden`] when the log's cleanup policy does not include
    /// `delete`; a sync or checkpoint failure (the log fails, except on a full disk, which
    /// leaves the start unchanged); [`LogError::Closed`].
    pub fn delete_records_before(&self, offset: Offset) -> Result<Offset, LogError> {
        let _one_move = lock(&self.start_lock);
        if !self.config().cleanup_policy.delete {
            return Err(LogError::DeleteForbidden(self.dir.clone()));
        }
        {
            let w = lock(&self.writer);
            self.check_writable(&w)?;
        }
        let high_watermark = self.high_watermark();
        let current = self.log_start_offset();
        let target = if offset.0 == HIGH_WATERMARK {
            high_watermark
        } else {
            offset
        };
        if target.0 < 0 || target > high_watermark {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                start: current,
                end: high_watermark,
            });
        }
        if target <= current {
            return Ok(current);
        }
        // Everything below the new start must be durable before the start is: otherwise a
        // crash could cut the log below a start that survived it.
        if self.durable_offset() < target {
            self.sync()?;
        }
        start_offset::write(&self.dir, target.0, self.disk.as_ref()).map_err(|source| {
            if is_disk_full(&source) {
                LogError::DiskFull {
                    path: self.dir.join(start_offset::LOG_START_OFFSET),
                    source,
                }
            } else {
                self.fail(source)
            }
        })?;
        self.start_offset.fetch_max(target.0, Ordering::AcqRel);
        self.epochs_start_moved(self.log_start_offset().0);
        let deleted = self.delete_segments_below_start()?;
        tracing::info!(dir = %self.dir.display(), log_start_offset = target.0, segments_deleted = deleted,
            "log start offset moved by DeleteRecords");
        Ok(self.log_start_offset())
    }

    /// Deletes the sealed segments whose every offset lies below the log start offset (the
    /// next segment begins at or below it); never the active segment. Returns how many.
    pub(super) fn delete_segments_below_start(&self) -> Result<usize, LogError> {
        self.delete_segments_below_bound(i64::MAX)
    }

    /// [`Self::delete_segments_below_start`] bounded by `bound` as well: only segments whose
    /// every offset lies below both the start and `bound`.
    pub(super) fn delete_segments_below_bound(&self, bound: i64) -> Result<usize, LogError> {
        let deleted: Vec<Arc<Segment>> = {
            let mut w = lock(&self.writer);
            let start = self.log_start_offset().0.min(bound);
            let segments = self.snapshot();
            let n = segments
                .windows(2)
                .take_while(|pair| pair[1].base_offset() <= start)
                .count();
            if n == 0 {
                return Ok(0);
            }
            let deleted = segments[..n].to_vec();
            self.replace_segments(|list| {
                list.drain(..n);
            });
            w.unsynced_sealed
                .retain(|s| !deleted.iter().any(|d| Arc::ptr_eq(d, s)));
            deleted
        };
        for segment in &deleted {
            segment
                .delete_files()
                .map_err(LogError::io("delete segment", &self.dir))?;
        }
        Ok(deleted.len())
    }

    /// The first offset any segment still holds: at or below the log start offset. The
    /// producer-state replay starts here, so the state of producers whose batches lie below
    /// the start is kept while their segment exists (as Kafka keeps it).
    pub(crate) fn oldest_retained_offset(&self) -> Offset {
        self.snapshot()
            .first()
            .map_or_else(|| self.log_start_offset(), |s| Offset(s.base_offset()))
    }
}
