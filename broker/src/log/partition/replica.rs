//! What a replica of a replicated partition needs from its log beyond a single broker's:
//! opening in replicated mode, appends that carry the leader epoch (the Raft term) given by
//! the caller, the high watermark (the commit point) that bounds consumers, and cutting an
//! uncommitted tail that a new leader's log replaced.
//!
//! Invariant: the tail cut by [`PartitionLog::truncate_from`] lies wholly at or above the
//! high watermark, so no consumer read (bounded by the high watermark) ever sees bytes that
//! are cut, and the files can be cut and recovered under readers.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use weir_protocol::record_batch::validate_batch;

use super::{LogOptions, PartitionLog, lock};
use crate::log::error::LogError;
use crate::log::files::{self, RECOVERY_POINT};
use crate::log::policy::{self, Retention, SegmentSummary};
use crate::log::{AppendInfo, Offset, recovery, start_offset};
use crate::storage::files::write_atomically;
use crate::storage::is_disk_full;

impl PartitionLog {
    /// Opens (recovering if needed) a replica's log. Its batches carry Raft terms as leader
    /// epochs, and consumers read only below [`Self::high_watermark`], which starts at 0 and
    /// moves with [`Self::set_high_watermark`].
    pub fn open_replicated(
        dir: impl AsRef<Path>,
        options: LogOptions,
    ) -> Result<Arc<Self>, LogError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(LogError::io("create log directory", dir))?;
        write_atomically(dir, files::REPLICATED, b"", options.disk.as_ref())
            .map_err(LogError::io("mark the log replicated", dir))?;
        Self::open_as(dir, options, true)
    }

    /// Turns an open log with one replica into a replica's log (a cluster created the
    /// partition, then its Raft group): durably marked as such first, so the next open
    /// knows. Only for a log nothing was appended to.
    pub fn make_replicated(&self) -> Result<(), LogError> {
        if self.is_replicated() {
            return Ok(());
        }
        write_atomically(&self.dir, files::REPLICATED, b"", self.disk.as_ref())
            .map_err(LogError::io("mark the log replicated", &self.dir))?;
        let _was_replicated =
            self.replicated_hw
                .compare_exchange(-1, 0, Ordering::AcqRel, Ordering::Acquire);
        Ok(())
    }

    /// Whether this log is a replica of a replicated partition.
    pub fn is_replicated(&self) -> bool {
        self.replicated_hw.load(Ordering::Acquire) >= 0
    }

    /// Validates a v2 batch (control batches included: a replica stores its group's leader
    /// and membership entries as control batches) and appends it with `epoch` as its
    /// partition leader epoch.
    pub fn append_at_epoch(&self, batch: &[u8], epoch: i32) -> Result<AppendInfo, LogError> {
        let header = validate_batch(batch)?;
        self.append_verified(batch, &header, epoch)
    }

    /// Moves a replicated log's high watermark up to `offset` (never down: what was
    /// committed stays committed). No effect on a log with one replica.
    pub fn set_high_watermark(&self, offset: Offset) {
        let _moved = self
            .replicated_hw
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |hw| {
                (hw >= 0 && offset.0 > hw).then_some(offset.0)
            });
    }

    /// Moves a replica's log start offset up to `offset` (clamped to the high watermark:
    /// only committed records leave), durably, without deleting anything: the segments are
    /// the Raft log, which goes only when the data group purges it
    /// ([`Self::delete_segments_below`]). Every replica does this when it applies the same
    /// DeleteRecords entry, and when its group purges entries. Returns the start after the
    /// call (unchanged when `offset` is at or below it).
    ///
    /// Order, as for DeleteRecords on one broker (`trim.rs`): what lies below the new start
    /// is made durable, then the start is written atomically, then published.
    pub fn advance_start(&self, offset: Offset) -> Result<Offset, LogError> {
        let _one_move = lock(&self.start_lock);
        let target = offset.min(self.high_watermark());
        let current = self.log_start_offset();
        if target <= current {
            return Ok(current);
        }
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
        tracing::info!(dir = %self.dir.display(), log_start_offset = target.0, "replica log start moved");
        Ok(self.log_start_offset())
    }

    /// Deletes the sealed segments of a replica whose every offset lies below both `offset`
    /// (where its data group's purged entries end) and the log start. Returns how many.
    pub fn delete_segments_below(&self, offset: Offset) -> Result<usize, LogError> {
        let deleted = self.delete_segments_below_bound(offset.0)?;
        if deleted > 0 {
            tracing::info!(dir = %self.dir.display(), segments = deleted, below = offset.0, "replica deleted purged segments");
        }
        Ok(deleted)
    }

    /// Where a replica's retention would start its log: the base offset of the first segment
    /// `retention.ms` and `retention.bytes` keep (the same policy as a single broker's log,
    /// applied to this replica's own segments), counting only sealed segments that lie
    /// wholly below the high watermark (committed), and never below the log start
    /// (DeleteRecords may have moved it further).
    pub fn replicated_retention_floor(&self) -> Offset {
        let start = self.log_start_offset();
        let config = self.config();
        if !config.cleanup_policy.delete {
            return start;
        }
        let high_watermark = self.high_watermark().0;
        let segments = self.snapshot();
        let (sealed, active) = segments.split_at(segments.len() - 1);
        let summaries: Vec<SegmentSummary> = sealed
            .iter()
            .map(|s| SegmentSummary {
                bytes: s.size() as u64,
                newest_ms: s.max_timestamp(),
            })
            .collect();
        let retention = Retention {
            max_bytes: config.retention_bytes,
            max_age_ms: config.retention_ms,
        };
        let wanted = policy::segments_to_delete(
            &summaries,
            active[0].size() as u64,
            retention,
            self.clock.now_ms(),
        );
        // Segment i lies wholly below the high watermark when the next one starts at or
        // below it.
        let committed = segments
            .windows(2)
            .take_while(|pair| pair[1].base_offset() <= high_watermark)
            .count();
        let n = wanted.min(committed);
        if n == 0 {
            return start;
        }
        Offset(segments[n].base_offset()).max(start)
    }

    /// Drops every batch at or after `offset`, which must start a batch and lie at or above
    /// the high watermark (a follower's uncommitted tail that the leader's log replaces). The
    /// segments after it are deleted, the one holding it is cut there and recovered, and the
    /// durable watermark comes back to `offset`.
    pub fn truncate_from(&self, offset: Offset) -> Result<(), LogError> {
        // No sync may run across the cut: one computed before it would mark bytes appended
        // after it durable.
        let _no_sync = lock(&self.sync_lock);
        let mut w = lock(&self.writer);
        self.check_writable(&w)?;
        let end = self.end_offset.load(Ordering::Acquire);
        if offset.0 >= end {
            return Ok(());
        }
        let committed = self.replicated_hw.load(Ordering::Acquire);
        if offset.0 < committed.max(self.log_start_offset().0) {
            return Err(LogError::TruncateBelowCommitted {
                offset,
                high_watermark: Offset(committed),
            });
        }
        let segments = self.snapshot();
        let at = segments
            .partition_point(|s| s.base_offset() <= offset.0)
            .saturating_sub(1);
        let holder = &segments[at];
        let position = if holder.base_offset() == offset.0 {
            0
        } else {
            match holder.find(offset.0) {
                Some(batch) if batch.header.base_offset == offset.0 => batch.position,
                _ => return Err(LogError::NotABatchStart(offset)),
            }
        };
        for later in &segments[at + 1..] {
            later
                .delete_files()
                .map_err(LogError::io("delete segment", &self.dir))?;
        }
        let paths = files::SegmentPaths::new(&self.dir, holder.base_offset());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&paths.log)
            .and_then(|file| file.set_len(position as u64))
            .map_err(LogError::io("cut segment", &paths.log))?;
        // Recovery scans from the cut segment on: it rebuilds that segment's indexes and
        // finds the new end.
        write_atomically(
            &self.dir,
            RECOVERY_POINT,
            &files::encode_recovery_point(holder.base_offset()),
            self.disk.as_ref(),
        )
        .map_err(LogError::io("write recovery point", &self.dir))?;
        let config = self.config();
        let recovered = recovery::recover(
            &self.dir,
            &config,
            self.max_stored_epoch(),
            self.disk.as_ref(),
        )?;
        if recovered.next_offset != offset.0 {
            return Err(LogError::NotABatchStart(offset));
        }
        let list: Vec<_> = recovered.segments.into_iter().map(Arc::new).collect();
        let Some(active) = list.last().cloned() else {
            return Err(LogError::NotABatchStart(offset));
        };
        self.replace_segments(|segments| *segments = list);
        w.active = active;
        w.cursor = recovered.cursor;
        w.first_append_ms = None;
        w.unsynced_sealed.clear();
        w.rolled_since_sync = true;
        self.end_offset.store(offset.0, Ordering::Release);
        self.durable.rewind(offset.0);
        // The log first, then its epoch history (entries past the cut go).
        self.truncate_epochs_from(offset)?;
        tracing::info!(dir = %self.dir.display(), from = offset.0, dropped_to = end, "replica log cut an uncommitted tail");
        Ok(())
    }
}
