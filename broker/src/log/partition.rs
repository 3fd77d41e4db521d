//! [`PartitionLog`]: the public face of one partition's storage.
//!
//! Concurrency: appends are serialised by the writer lock, held only for validation-free work
//! (roll decision, write into the segment, index entries, offset bump). Readers take a snapshot of
//! the segment list (an `Arc<Vec<_>>` swapped under the writer lock on roll, retention and
//! close) and read published bytes without locking. What a read hands out is bounded by one
//! end snapshot taken before that list, never by the bytes a segment has published: an append
//! publishes its bytes before it moves the log end. Syncs run on [`Flusher`] threads under a
//! separate sync lock, so an `fdatasync` never blocks appends.
//!
//! Durability: what is on disk and whether the log failed is one [`Durability`] watermark
//! (counted in offsets), shared in kind with the committed-offsets store; the log is a
//! [`Syncable`] for the [`Flusher`] threads. This file decides what a sync covers (sealed
//! segments, the active segment, the directory after a roll, the recovery point) and when the
//! log stops (fail-stop on any sync or write error, not on a full disk).
//!
//! Layout: this file holds the log's state, opening, appends and rolls, retention and close;
//! `read.rs` the read path (end snapshot, verification, timestamp lookups); `sync.rs`
//! durability (syncs, group commit through the flusher, the interval sweep).

pub(crate) mod clean;
pub(crate) use clean::CleanerView;
pub use restart::Restart;
mod history;
mod read;
mod replica;
mod restart;
mod sync;
mod trim;

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::Instant;

use bytes::Bytes;
use weir_protocol::record_batch::{
    BatchHeader, ProducedBatch, check_records, set_base_offset, set_partition_leader_epoch,
    validate_batch, verify_batch,
};

use super::Offset;
use super::config::{FlushPolicy, LogConfig};
use super::epochs::EpochHistory;
use super::error::LogError;
use super::files::{self, CLEAN_SHUTDOWN, RECOVERY_POINT};
use super::index::{FilePosition, IndexCursor, RelativeOffset};
use super::mmap::AppendError;
use super::policy::{self, Retention, RollInput, SegmentSummary};
use super::recovery::{self, RecoveryReport};
use super::segment::{Capacity, Segment};
use crate::clock::{Clock, SystemClock};
use crate::storage::files::write_atomically;
use crate::storage::{Disk, Durability, Flusher, OsDisk, is_disk_full};

/// Bytes of a batch that the broker patches: base offset, batch length, leader epoch.
const PATCHED_HEAD_BYTES: usize = weir_protocol::record_batch::field::MAGIC;

/// The partition leader epoch this log writes into every batch: a single broker is leader
/// forever, at epoch 0. Reads and recovery check stored epochs against the log's leader-epoch
/// history ([`super::epochs`]), which every append feeds with the epoch it writes.
pub(crate) const LEADER_EPOCH: i32 = 0;

/// Everything a log needs from its surroundings.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Segment, index, retention and flush settings.
    pub config: LogConfig,
    /// The sync threads (shared by all logs of a broker).
    pub flusher: Arc<Flusher>,
    /// File allocation and sync; [`OsDisk`] except in failure-injection tests.
    pub disk: Arc<dyn Disk>,
    /// Time for rolls and retention.
    pub clock: Arc<dyn Clock>,
}

impl LogOptions {
    /// Options with the real disk and clock.
    pub fn new(config: LogConfig, flusher: Arc<Flusher>) -> Self {
        Self {
            config,
            flusher,
            disk: Arc::new(OsDisk),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Where an appended batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset assigned to the first record.
    pub base_offset: Offset,
    /// Offset of the last record.
    pub last_offset: Offset,
    /// Broker time of the append (Kafka's LogAppendTime).
    pub log_append_time_ms: i64,
}

impl AppendInfo {
    /// The log end offset right after this batch: wait for this to be durable.
    pub fn next_offset(&self) -> Offset {
        self.last_offset.plus(1)
    }
}

/// The result of a read.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Whole batches, zero-copy from the segment map. Empty at the end of the log. Every
    /// batch lies below `high_watermark`.
    pub records: Bytes,
    /// The end snapshot that bounded this read: no batch in `records` reaches it, and a
    /// read at it is in range. With one replica, the log end offset when the read began.
    pub high_watermark: Offset,
    /// First offset still in the log.
    pub log_start_offset: Offset,
}

/// Where one read must stop, taken once per read.
#[derive(Debug, Clone, Copy)]
struct EndSnapshot {
    /// Offsets above it are out of range.
    log_end: Offset,
    /// No batch at or beyond it is handed out; the read reports it. The log end with one
    /// replica; a replicated log would put its committed offset here.
    high_watermark: Offset,
}

/// State only the appender touches.
#[derive(Debug)]
struct Writer {
    active: Arc<Segment>,
    cursor: IndexCursor,
    /// Clock time of the first append to the active segment (for `segment.ms`).
    first_append_ms: Option<i64>,
    /// Sealed segments whose data and indexes are not yet synced.
    unsynced_sealed: Vec<Arc<Segment>>,
    /// A roll created files since the last sync, so the next sync must sync the directory.
    rolled_since_sync: bool,
    closed: bool,
}

/// One partition's append-only log. See the [module docs](super) for its invariants.
///
/// ```
/// use weir_broker::log::{Flusher, LogConfig, LogOptions, Offset, PartitionLog};
/// use weir_protocol::record_batch::{BatchBuilder, RecordInput, Records};
///
/// let dir = tempfile::tempdir()?;
/// let config = LogConfig { segment_bytes: 1 << 20, ..LogConfig::default() };
/// let log = PartitionLog::open(dir.path(), LogOptions::new(config, Flusher::new(1)))?;
///
/// let mut batch = BatchBuilder::new();
/// batch.push(RecordInput { key: Some(b"k"), value: Some(b"hello"), ..RecordInput::default() });
/// let info = log.append(&batch.build().expect("one record"))?;
/// assert_eq!(info.base_offset, Offset(0));
/// log.sync()?; // async callers share syncs with `log.wait_durable(info.next_offset()).await`
///
/// let read = log.read(Offset(0), 1 << 20)?;
/// let record = Records::new(&read.records)?.next().expect("a record")?;
/// assert_eq!(record.value, Some(&b"hello"[..]));
/// log.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    /// The settings now in force; replaced whole by [`Self::set_config`]. Readers take a
    /// clone of the `Arc`, so a change never tears one decision.
    config: RwLock<Arc<LogConfig>>,
    /// Fixed at open (the flusher registration depends on it).
    flush: FlushPolicy,
    disk: Arc<dyn Disk>,
    clock: Arc<dyn Clock>,
    flusher: Arc<Flusher>,
    /// Handle to ourselves, for queueing on the flusher.
    me: Weak<PartitionLog>,
    /// Oldest first; the last one is the active segment.
    segments: RwLock<Arc<Vec<Arc<Segment>>>>,
    writer: Mutex<Writer>,
    /// Log end offset: published after the batch bytes.
    end_offset: AtomicI64,
    /// Bytes appended since open, and how many of them the last completed sync covered:
    /// their difference is what waits for a sync (a metric). Only ever grow.
    appended_bytes: AtomicU64,
    synced_bytes: AtomicU64,
    /// Log start offset: the first segment's base, or above it once DeleteRecords moved it
    /// (persisted in `log-start-offset` before it is stored here; see `trim.rs`).
    start_offset: AtomicI64,
    /// One move of the log start offset at a time (its checkpoint write is not under the
    /// writer lock, so appends go on meanwhile).
    start_lock: Mutex<()>,
    /// Offset below which everything is on disk, and the error that stopped the log (once
    /// there is one); async waiters watch it.
    durable: Durability<i64>,
    /// One sync at a time per log.
    sync_lock: Mutex<()>,
    /// Set while a sync of this log is queued on the flusher.
    sync_queued: AtomicBool,
    last_sync: Mutex<Instant>,
    recovery: RecoveryReport,
    /// Damaged batches already logged, so a consumer retrying one does not flood the log.
    damage_reported: Mutex<HashSet<(i64, usize)>>,
    /// The cleaner's progress on this log; locked while a cleaning runs.
    cleaner: Mutex<clean::CleanerState>,
    /// For a replicated log, the high watermark (the Raft commit point, in offsets) that
    /// bounds consumers' reads; -1 for a log with one replica, whose every append is readable.
    replicated_hw: AtomicI64,
    /// The leader-epoch history: each epoch's first offset, persisted beside the segments
    /// (see `history.rs`). Its highest epoch bounds the epochs a read accepts in a batch.
    epochs: EpochHistory,
}

/// Damaged batches logged at `error` per log, each once; reads of one already reported (or
/// beyond this many) log at `debug`. Every such read also returns the error to its caller.
const MAX_DAMAGE_REPORTS: usize = 1024;

/// Segment positions are 32-bit in the index: a segment is at most `i32::MAX` bytes.
fn clamp(config: LogConfig) -> LogConfig {
    LogConfig {
        segment_bytes: config.segment_bytes.min(i32::MAX as u32),
        ..config
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PartitionLog {
    /// Opens the log in `dir`, creating it if needed and recovering it after a crash.
    pub fn open(dir: impl AsRef<Path>, options: LogOptions) -> Result<Arc<Self>, LogError> {
        Self::open_as(dir.as_ref(), options, false)
    }

    /// [`Self::open`] for a log with one replica (`replicated` false) or for a replica of a
    /// replicated partition, whose batches carry Raft terms as epochs and whose reads stop at
    /// the high watermark set by [`Self::set_high_watermark`].
    fn open_as(dir: &Path, options: LogOptions, replicated: bool) -> Result<Arc<Self>, LogError> {
        let dir = dir.to_path_buf();
        let replicated = replicated || dir.join(files::REPLICATED).exists();
        let LogOptions {
            config,
            flusher,
            disk,
            clock,
        } = options;
        let config = clamp(config);
        // A replica's restart from a snapshot that a crash interrupted is finished before
        // anything reads the directory (`restart.rs`).
        restart::finish_interrupted(&dir, &config, disk.as_ref())?;
        let history = history::Loaded::read(&dir)?;
        let recovered = recovery::recover(&dir, &config, history.max_epoch(), disk.as_ref())?;
        let segments: Vec<Arc<Segment>> = recovered.segments.into_iter().map(Arc::new).collect();
        let active = Arc::clone(
            segments
                .last()
                .ok_or_else(|| LogError::io("open log", &dir)(io::Error::other("no segments")))?,
        );
        let next = recovered.next_offset;
        let start = Self::recover_start(&dir, segments[0].base_offset(), next, disk.as_ref())?;
        let epochs = history.finish(&dir, &segments, start, next, disk.as_ref())?;
        let report = recovered.report;
        if !report.clean && (report.segments_scanned > 0 || !report.truncated.is_empty()) {
            tracing::info!(dir = %dir.display(), scanned = report.segments_scanned, cut = report.truncated.len(),
                removed = report.removed.len(), damaged_kept = report.damaged.len(), end_offset = next,
                "recovered log after unclean shutdown");
        }
        let first_append_ms = (active.size() > 0).then(|| clock.now_ms());
        let log = Arc::new_cyclic(|me| Self {
            flush: config.flush,
            dir,
            disk,
            clock,
            flusher: Arc::clone(&flusher),
            me: me.clone(),
            segments: RwLock::new(Arc::new(segments)),
            writer: Mutex::new(Writer {
                active,
                cursor: recovered.cursor,
                first_append_ms,
                unsynced_sealed: Vec::new(),
                rolled_since_sync: false,
                closed: false,
            }),
            end_offset: AtomicI64::new(next),
            appended_bytes: AtomicU64::new(0),
            synced_bytes: AtomicU64::new(0),
            start_offset: AtomicI64::new(start),
            start_lock: Mutex::new(()),
            // Recovery synced or trusted everything it kept.
            durable: Durability::new(next),
            sync_lock: Mutex::new(()),
            sync_queued: AtomicBool::new(false),
            last_sync: Mutex::new(Instant::now()),
            recovery: report,
            damage_reported: Mutex::new(HashSet::new()),
            cleaner: Mutex::new(clean::CleanerState::default()),
            epochs,
            config: RwLock::new(Arc::new(config)),
            // Nothing is committed until the replica's Raft group says so.
            replicated_hw: AtomicI64::new(if replicated { 0 } else { -1 }),
        });
        if let FlushPolicy::Interval(every) = log.flush {
            let swept = Arc::downgrade(&log);
            flusher.register_interval(swept, every);
        }
        Ok(log)
    }

    /// Validates a v2 batch (length, magic, CRC-32C, record count, record offset deltas),
    /// assigns it the next offsets, writes base offset and leader epoch in place and appends
    /// it. The batch is readable at once and durable after [`Self::wait_durable`].
    ///
    /// The path for raw bytes (tests, benches, tools); appends from the network come as a
    /// [`ProducedBatch`] through [`Self::append_produced`].
    pub fn append(&self, batch: &[u8]) -> Result<AppendInfo, LogError> {
        let header = validate_batch(batch)?;
        self.append_verified(batch, &header, LEADER_EPOCH)
    }

    /// [`Self::append`] for a batch whose shape and header a [`ProducedBatch`] already holds:
    /// the header is not parsed again, but the contents (CRC-32C, record count, records) are
    /// verified here as for raw bytes, so nothing unverified is stored.
    pub fn append_produced(&self, batch: &ProducedBatch<'_>) -> Result<AppendInfo, LogError> {
        verify_batch(batch.bytes(), batch.header())?;
        self.append_verified(batch.bytes(), batch.header(), LEADER_EPOCH)
    }

    /// The append once `header` is `batch`'s, parsed and verified up to its records.
    fn append_verified(
        &self,
        batch: &[u8],
        header: &BatchHeader,
        epoch: i32,
    ) -> Result<AppendInfo, LogError> {
        check_records(batch, header)?;
        let config = self.config();
        let capacity = Capacity::new(&config);
        if batch.len() > capacity.log_bytes {
            return Err(LogError::BatchTooLarge {
                size: batch.len(),
                max: capacity.log_bytes,
            });
        }
        let mut w = lock(&self.writer);
        self.check_writable(&w)?;
        let now = self.clock.now_ms();
        let roll = policy::roll_reason(RollInput {
            active_bytes: w.active.size(),
            free_bytes: w.active.free(),
            batch_bytes: batch.len(),
            first_append_ms: w.first_append_ms.unwrap_or(now),
            now_ms: now,
            segment_ms: config.segment_ms,
        });
        if let Some(reason) = roll {
            self.roll(&mut w, reason)?;
        }
        let base = self.end_offset.load(Ordering::Relaxed);
        // A segment holds less than 2 GiB and a record takes at least one byte, so relative
        // offsets and positions fit in 32 bits; the conversions cannot fail.
        let relative = u32::try_from(base - w.active.base_offset()).unwrap_or(u32::MAX);
        // The broker-assigned fields (base offset, leader epoch) lie in the first 16 bytes,
        // outside the CRC: patch a copy of those and write the rest of the batch as sent.
        let mut head = [0u8; PATCHED_HEAD_BYTES];
        head.copy_from_slice(&batch[..PATCHED_HEAD_BYTES]);
        set_base_offset(&mut head, base);
        set_partition_leader_epoch(&mut head, epoch);
        // The history learns a new epoch (durably) before any batch carrying it is written.
        self.observe_epoch(epoch, base)?;
        let position = match w.active.append(
            &head,
            &batch[PATCHED_HEAD_BYTES..],
            header.max_timestamp,
            self.disk.as_ref(),
        ) {
            Ok(position) => position,
            Err(AppendError::NoRoom) => {
                return Err(LogError::BatchTooLarge {
                    size: batch.len(),
                    max: w.active.free(),
                });
            }
            // Refused for lack of space: nothing was published (the segment length did not
            // move, so whatever part got in is overwritten by the next append) and the bytes
            // before it are untouched, so the log stays usable. Only a filesystem that does
            // not honour `fallocate` gets here.
            Err(AppendError::Io(err)) if is_disk_full(&err) => {
                let path = super::files::SegmentPaths::new(&self.dir, w.active.base_offset()).log;
                tracing::warn!(path = %path.display(), error = %err, "append refused: disk full");
                return Err(LogError::DiskFull { path, source: err });
            }
            // A failed write may have left the page cache in an unknown state: fail-stop.
            Err(AppendError::Io(err)) => return Err(self.fail(err)),
        };
        let due = w.cursor.on_batch(
            RelativeOffset(relative),
            FilePosition(u32::try_from(position).unwrap_or(u32::MAX)),
            u32::try_from(batch.len()).unwrap_or(u32::MAX),
            header.max_timestamp,
        );
        w.active.add_index_entries(due.offset, due.time);
        w.first_append_ms.get_or_insert(now);
        let last = base + i64::from(header.last_offset_delta);
        self.appended_bytes
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.end_offset.store(last + 1, Ordering::Release);
        Ok(AppendInfo {
            base_offset: Offset(base),
            last_offset: Offset(last),
            log_append_time_ms: now,
        })
    }

    fn check_writable(&self, w: &Writer) -> Result<(), LogError> {
        if let Some(cause) = self.durable.failure() {
            return Err(LogError::Failed {
                dir: self.dir.clone(),
                cause: Arc::clone(cause),
            });
        }
        if w.closed {
            return Err(LogError::Closed(self.dir.clone()));
        }
        Ok(())
    }

    /// Seals the active segment and starts a new one at the log end offset. The new segment is
    /// created first: if that fails (disk full), nothing has changed and the append can be
    /// retried later.
    fn roll(&self, w: &mut Writer, reason: policy::RollReason) -> Result<(), LogError> {
        let base = self.end_offset.load(Ordering::Relaxed);
        let config = self.config();
        let created = Segment::create(&self.dir, base, Capacity::new(&config), self.disk.as_ref()).map_err(|source| {
            let path = super::files::SegmentPaths::new(&self.dir, base).log;
            if is_disk_full(&source) {
                tracing::warn!(path = %path.display(), error = %source, "cannot roll: disk full");
                LogError::DiskFull { path, source }
            } else {
                LogError::Io { op: "create segment", path, source }
            }
        })?;
        let final_entry = w.cursor.final_time_entry();
        let sealed = match w.active.seal(final_entry) {
            Ok(sealed) => Arc::new(sealed),
            Err(err) => {
                if let Err(e) = created.delete_files() {
                    tracing::warn!(error = %e, "could not remove the segment created for a failed roll");
                }
                return Err(self.fail(err));
            }
        };
        w.cursor.note_final_time_entry();
        let created = Arc::new(created);
        self.replace_segments(|list| {
            if let Some(last) = list.last_mut() {
                *last = Arc::clone(&sealed);
            }
            list.push(Arc::clone(&created));
        });
        tracing::debug!(dir = %self.dir.display(), base_offset = base, ?reason, "rolled segment");
        w.unsynced_sealed.push(sealed);
        w.rolled_since_sync = true;
        w.active = created;
        w.cursor = IndexCursor::new(config.index_interval_bytes);
        w.first_append_ms = None;
        Ok(())
    }

    /// Swaps in a new segment list. Caller holds the writer lock.
    fn replace_segments(&self, edit: impl FnOnce(&mut Vec<Arc<Segment>>)) {
        let mut guard = self
            .segments
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut list = Vec::clone(&guard);
        edit(&mut list);
        *guard = Arc::new(list);
    }

    fn snapshot(&self) -> Arc<Vec<Arc<Segment>>> {
        Arc::clone(&self.segments.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Puts the log in the failed state (fail-stop) and wakes every waiter.
    fn fail(&self, err: io::Error) -> LogError {
        let cause = self.durable.fail(err);
        tracing::error!(dir = %self.dir.display(), error = %cause, "log failed after an I/O error; refusing writes");
        LogError::Failed {
            dir: self.dir.clone(),
            cause,
        }
    }

    /// The settings now in force.
    pub fn config(&self) -> Arc<LogConfig> {
        Arc::clone(&self.config.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the settings while the log is open (a topic's configuration changed). The
    /// flush policy and write path stay as they were at open; a new `segment.bytes` applies
    /// from the next roll, retention and compaction from their next pass.
    pub fn set_config(&self, config: LogConfig) {
        let mut current = self.config.write().unwrap_or_else(PoisonError::into_inner);
        let config = clamp(LogConfig {
            flush: current.flush,
            write_path: current.write_path,
            ..config
        });
        *current = Arc::new(config);
    }

    /// Deletes the oldest sealed segments beyond `retention.bytes` or older than
    /// `retention.ms`, never the active one, and advances the log start offset. Returns the
    /// number of segments deleted.
    pub fn apply_retention(&self) -> Result<usize, LogError> {
        // Segments left wholly below a start that DeleteRecords moved (a crash between its
        // checkpoint and the deletion) go first, whatever the policy.
        if self.is_replicated() {
            // A replica's segments are its Raft log, which openraft may still read to catch a
            // follower up: its data group decides when they go
            // ([`Self::replicated_retention_floor`], then the group's snapshot and purge,
            // `cluster/replica/store.rs`).
            return Ok(0);
        }
        let below_start = self.delete_segments_below_start()?;
        let now = self.clock.now_ms();
        let config = self.config();
        if !config.cleanup_policy.delete {
            // A compact-only log keeps its old segments; the cleaner shrinks them instead.
            return Ok(below_start);
        }
        let deleted: Vec<Arc<Segment>> = {
            let mut w = lock(&self.writer);
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
            let n = policy::segments_to_delete(&summaries, active[0].size() as u64, retention, now);
            if n == 0 {
                return Ok(below_start);
            }
            let deleted = segments[..n].to_vec();
            self.replace_segments(|list| {
                list.drain(..n);
            });
            w.unsynced_sealed
                .retain(|s| !deleted.iter().any(|d| Arc::ptr_eq(d, s)));
            // DeleteRecords may have moved the start past this segment's base already.
            self.start_offset
                .fetch_max(segments[n].base_offset(), Ordering::AcqRel);
            deleted
        };
        self.epochs_start_moved(self.log_start_offset().0);
        for segment in &deleted {
            segment
                .delete_files()
                .map_err(LogError::io("delete segment", &self.dir))?;
        }
        tracing::info!(dir = %self.dir.display(), segments = deleted.len(), log_start_offset = self.log_start_offset().0, "retention deleted segments");
        Ok(deleted.len() + below_start)
    }

    /// Syncs, trims the active segment, writes its indexes and the clean-shutdown marker, so
    /// the next open skips recovery. Appends fail with [`LogError::Closed`] afterwards; reads
    /// keep working.
    pub fn close(&self) -> Result<(), LogError> {
        {
            let mut w = lock(&self.writer);
            if w.closed {
                return Ok(());
            }
            w.closed = true;
        }
        self.sync()?;
        let mut w = lock(&self.writer);
        let final_entry = w.cursor.final_time_entry();
        let sealed = w.active.seal(final_entry).map_err(|e| self.fail(e))?;
        let sealed = Arc::new(sealed);
        sealed
            .sync_all(self.disk.as_ref())
            .map_err(|e| self.fail(e))?;
        self.replace_segments(|list| {
            if let Some(last) = list.last_mut() {
                *last = Arc::clone(&sealed);
            }
        });
        w.active = sealed;
        write_atomically(
            &self.dir,
            RECOVERY_POINT,
            &files::encode_recovery_point(w.active.base_offset()),
            self.disk.as_ref(),
        )
        .and_then(|()| write_atomically(&self.dir, CLEAN_SHUTDOWN, b"", self.disk.as_ref()))
        .and_then(|()| self.epochs_closed())
        .map_err(|e| self.fail(e))?;
        Ok(())
    }

    /// First offset still in the log.
    pub fn log_start_offset(&self) -> Offset {
        Offset(self.start_offset.load(Ordering::Acquire))
    }

    /// Offset the next appended record will get.
    pub fn log_end_offset(&self) -> Offset {
        Offset(self.end_offset.load(Ordering::Acquire))
    }

    /// Offset up to which consumers may read. With a single replica every appended batch is
    /// readable, so this equals the log end offset (as in Kafka with one in-sync replica);
    /// producers that need durability wait with [`Self::wait_durable`]. A replicated log's is
    /// its Raft commit point ([`Self::set_high_watermark`]), never above the log end.
    pub fn high_watermark(&self) -> Offset {
        let end = self.log_end_offset();
        match self.replicated_hw.load(Ordering::Acquire) {
            hw if hw < 0 => end,
            hw => Offset(hw).min(end),
        }
    }

    /// Bytes appended and not yet covered by a completed sync (0 when everything appended
    /// since open is on disk).
    pub fn unsynced_bytes(&self) -> u64 {
        let synced = self.synced_bytes.load(Ordering::Relaxed);
        self.appended_bytes
            .load(Ordering::Relaxed)
            .saturating_sub(synced)
    }

    /// Everything below this offset is on disk.
    pub fn durable_offset(&self) -> Offset {
        Offset(self.durable.durable())
    }

    /// True after an I/O error stopped the log.
    pub fn is_failed(&self) -> bool {
        self.durable.failure().is_some()
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.snapshot().iter().map(|s| s.size() as u64).sum()
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.snapshot().len()
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The disk this log writes through (files kept beside the log use it too, so fault
    /// injection covers them).
    pub fn disk(&self) -> &dyn Disk {
        self.disk.as_ref()
    }

    /// What opening the log found.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }
}
