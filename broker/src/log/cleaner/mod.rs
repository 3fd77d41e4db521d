//! The log cleaner: compaction of logs whose `cleanup.policy` includes `compact`, keeping the
//! last record of each key.
//!
//! Owns one cleaning of one log ([`Cleaner::clean`]): deciding whether it is due
//! ([`policy`]), building the key→offset map of the dirty part ([`map`], bounded memory),
//! rewriting the cleanable segments without superseded records ([`rewrite`]) and swapping the
//! results in crash-safely ([`swap`]). It does not schedule itself (the broker's cleaner task,
//! `crate::broker::cleaner`, does) and does not parse topic configs (it reads the log's
//! [`crate::log::LogConfig`]).
//!
//! Invariants:
//! - the active segment is never touched, nor anything at or past the durable offset;
//! - offsets never move: a cleaned segment has the same base offset and covers the same
//!   offsets as the one it replaces, and every batch keeps its offset span (dense from batch
//!   to batch, see [`rewrite`]), so a reader's position stays valid across a swap;
//! - a record is dropped only when a later record of its key exists (in the part mapped by
//!   this pass), or when it has no key, or when it is a tombstone whose delete horizon passed;
//! - the last [`CACHED_BATCHES`] batches of each idempotent producer are kept (emptied if
//!   need be), so replaying the log's headers rebuilds the same producer table;
//! - a pass is installed under the log's writer lock, only if the segments it cleaned are
//!   still the log's (retention or close meanwhile abandons it); readers holding the old
//!   segments keep reading them;
//! - one cleaning per log at a time (the log's cleaner state is locked for it).
//!
//! A log larger than the map is cleaned in several passes: each maps as many dirty batches as
//! fit, then cleans everything from the log start up to there. The first dirty offset is kept
//! in memory only; after a restart the whole log counts as dirty once.

pub(crate) mod map;
pub(crate) mod policy;
pub(crate) mod rewrite;
pub(crate) mod swap;

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use weir_protocol::compression;
use weir_protocol::record_batch::{
    BatchHeader, Compression, HEADER_LEN, Records, validate_stored_batch,
};

use self::map::OffsetMap;
use self::policy::SegmentFacts;
pub use self::rewrite::DECOMPRESSED_BATCH_MAX_BYTES;
use self::rewrite::{BatchRules, Candidate, Outcome, RewriteError, Verdict};
pub use self::swap::{SwapHook, SwapStep};
use super::PartitionLog;
use super::index::{Entries, IndexCursor, OffsetEntry, TimeEntry};
use super::mmap::MappedFile;
use super::partition::LEADER_EPOCH;
use super::scan::{OnDamage, scan_segment};
use super::segment::Segment;
use crate::producers::state::CACHED_BATCHES;

/// Kafka's `log.cleaner.dedupe.buffer.size` default: 128 MiB for all cleaner threads.
pub const DEFAULT_DEDUPE_BUFFER_BYTES: usize = 128 << 20;

/// How a [`Cleaner`] works.
#[derive(Clone)]
pub struct CleanerOptions {
    /// Memory of the key→offset map (this cleaner's share of
    /// `log.cleaner.dedupe.buffer.size`).
    pub dedupe_buffer_bytes: usize,
    /// Shared I/O budget (`log.cleaner.io.max.bytes.per.second`); `None` for no limit.
    pub throttle: Option<Arc<Throttle>>,
    /// Clean whatever is cleanable even when the dirty ratio and lags do not call for it
    /// (tests and tools).
    pub force: bool,
    /// Called after each swap step; an error stops the swap there (crash tests).
    pub hook: Option<SwapHook>,
}

impl std::fmt::Debug for CleanerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CleanerOptions")
            .field("dedupe_buffer_bytes", &self.dedupe_buffer_bytes)
            .field("throttle", &self.throttle)
            .field("force", &self.force)
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

impl Default for CleanerOptions {
    fn default() -> Self {
        Self {
            dedupe_buffer_bytes: DEFAULT_DEDUPE_BUFFER_BYTES,
            throttle: None,
            force: false,
            hook: None,
        }
    }
}

/// A byte-rate limit shared by the cleaner threads: each call to [`Self::pace`] sleeps until
/// the bytes counted so far fit the rate (a token bucket with no burst).
#[derive(Debug)]
pub struct Throttle {
    bytes_per_second: u64,
    /// When the bytes counted so far will have been paid for.
    paid_until: Mutex<Instant>,
}

impl Throttle {
    /// A limit of `bytes_per_second` (at least 1).
    pub fn new(bytes_per_second: u64) -> Self {
        Self {
            bytes_per_second: bytes_per_second.max(1),
            paid_until: Mutex::new(Instant::now()),
        }
    }

    /// Counts `bytes` of I/O and sleeps as long as the rate requires.
    pub fn pace(&self, bytes: u64) {
        let cost = Duration::from_secs_f64(bytes as f64 / self.bytes_per_second as f64);
        let wake = {
            let mut paid = self
                .paid_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            *paid = (*paid).max(now) + cost;
            *paid
        };
        if let Some(wait) = wake.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

/// What one cleaning did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// Map-and-rewrite passes (more than one when the map could not hold the dirty part).
    pub passes: usize,
    /// Segments rewritten (a segment cleaned in two passes counts twice).
    pub segments: usize,
    /// Bytes of old segments read while rewriting.
    pub bytes_read: u64,
    /// Bytes of cleaned segments written.
    pub bytes_written: u64,
    /// Records dropped.
    pub records_dropped: u64,
}

/// What [`Cleaner::clean`] found to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanOutcome {
    /// The log's policy does not include `compact`.
    NotCompacted,
    /// Nothing cleanable, or not due by the dirty ratio and lags.
    NotDue,
    /// Another cleaner thread is cleaning this log.
    Busy,
    /// An earlier swap of this log failed after its commit; it is left alone until reopened
    /// (recovery finishes the swap).
    Stopped,
    /// The log changed under the pass (retention deleted a segment, or it was closed): the
    /// pass was dropped before its commit.
    Abandoned,
    /// Cleaned.
    Cleaned(CleanStats),
}

/// Why a cleaning failed. The log is untouched unless the swap failed after its commit (then
/// the log reads as before until it is reopened, and recovery finishes the swap).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CleanError {
    /// A batch of a segment to clean is damaged; nothing is rewritten over it.
    #[error("log {dir}: cannot clean segment {segment}: {reason}")]
    Damaged {
        /// The partition directory.
        dir: PathBuf,
        /// Base offset of the segment.
        segment: i64,
        /// What is wrong.
        reason: String,
    },
    /// A batch could not be rewritten.
    #[error("log {dir}: {source}")]
    Rewrite {
        /// The partition directory.
        dir: PathBuf,
        /// The batch's error.
        source: RewriteError,
    },
    /// One batch has more records than the map can hold.
    #[error(
        "log {dir}: a batch of {records} records does not fit the cleaner's map of {capacity} keys; raise --log-cleaner-dedupe-buffer-size"
    )]
    MapTooSmall {
        /// The partition directory.
        dir: PathBuf,
        /// Records of the batch.
        records: i32,
        /// Keys the map holds.
        capacity: usize,
    },
    /// Writing the cleaned files or swapping them in failed.
    #[error("log {}: {op} failed: {source}", dir.display())]
    Io {
        /// The partition directory.
        dir: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The I/O error.
        source: io::Error,
    },
}

/// The cleaner's per-log state, kept by the log and locked for a cleaning.
#[derive(Debug, Default)]
pub(crate) struct CleanerState {
    /// Offsets below this were cleaned by this process.
    pub(crate) first_dirty: i64,
    /// A swap failed after its commit: leave the log alone until it is reopened.
    pub(crate) stopped: bool,
}

/// A cleaned segment written beside its old one, ready to swap in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Written {
    pub(crate) base_offset: i64,
    pub(crate) max_timestamp: i64,
    /// Bytes of the cleaned `.log`, all validated by the scan that built its indexes.
    pub(crate) len: usize,
}

/// One cleaner thread: its map and options.
#[derive(Debug)]
pub struct Cleaner {
    options: CleanerOptions,
    /// Allocated at the first cleaning, so a broker with no compacted log spends no memory.
    map: Option<OffsetMap>,
}

impl Cleaner {
    /// A cleaner with these options.
    pub fn new(options: CleanerOptions) -> Self {
        Self { options, map: None }
    }

    /// Cleans `log` if its policy includes `compact` and it is due (or `force`).
    ///
    /// # Errors
    /// [`CleanError`]; the log then stays as it was (see there).
    pub fn clean(&mut self, log: &PartitionLog) -> Result<CleanOutcome, CleanError> {
        let config = log.config();
        if !config.cleanup_policy.compact {
            return Ok(CleanOutcome::NotCompacted);
        }
        let state = log.cleaner_state();
        let mut state = match state.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return Ok(CleanOutcome::Busy),
        };
        if state.stopped {
            return Ok(CleanOutcome::Stopped);
        }
        let view = log.cleaner_view();
        let facts = facts(&view.segments, view.log_end);
        let compaction = &config.compaction;
        let n = policy::cleanable_prefix(&facts, view.durable, view.now_ms, compaction);
        if n == 0 {
            return Ok(CleanOutcome::NotDue);
        }
        let start = facts[0].base_offset;
        let cleanable_end = facts[n - 1].end_offset;
        let mut first_dirty = if self.options.force {
            start
        } else {
            state.first_dirty.max(start)
        };
        if !self.options.force {
            let first_dirty_ms = view
                .segments
                .iter()
                .rev()
                .find(|s| s.base_offset() <= first_dirty)
                .and_then(|s| s.find(first_dirty))
                .map(|b| b.header.max_timestamp);
            if policy::due(
                &facts[..n],
                first_dirty,
                first_dirty_ms,
                view.now_ms,
                compaction,
            )
            .is_none()
            {
                return Ok(CleanOutcome::NotDue);
            }
        }
        let producer_keeps = producer_batches(&view.segments);
        let dedupe = self.options.dedupe_buffer_bytes;
        let map = self
            .map
            .get_or_insert_with(|| OffsetMap::with_memory(dedupe));
        let mut stats = CleanStats::default();
        let mut segments = view.segments;
        let job = Job {
            log,
            now_ms: view.now_ms,
            delete_retention_ms: compaction.delete_retention_ms,
            index_interval_bytes: config.index_interval_bytes,
            producer_keeps: &producer_keeps,
            throttle: self.options.throttle.as_deref(),
        };
        loop {
            map.clear();
            let map_end = job.build_map(&segments, first_dirty, cleanable_end, map)?;
            let k = segments
                .iter()
                .take_while(|s| s.base_offset() < map_end)
                .count()
                .min(segments.len().saturating_sub(1));
            let old: Vec<Arc<Segment>> = segments[..k].to_vec();
            let ends: Vec<i64> = (0..k).map(|i| segments[i + 1].base_offset()).collect();
            let mut written = Vec::with_capacity(k);
            for (segment, &end) in old.iter().zip(&ends) {
                match job.write_segment(segment, end, map, &mut stats) {
                    Ok(w) => written.push(w),
                    Err(err) => {
                        let bases: Vec<i64> = old.iter().map(|s| s.base_offset()).collect();
                        swap::discard(log.dir(), &bases);
                        return Err(err);
                    }
                }
            }
            let hook = self.options.hook.clone();
            let hook = move |step| hook.as_ref().map_or(Ok(()), |h| h(step));
            match log.install_cleaned(&old, &written, &hook) {
                Ok(true) => {}
                Ok(false) => {
                    let bases: Vec<i64> = old.iter().map(|s| s.base_offset()).collect();
                    swap::discard(log.dir(), &bases);
                    return Ok(CleanOutcome::Abandoned);
                }
                Err(err) => {
                    state.stopped = true;
                    return Err(err);
                }
            }
            stats.passes += 1;
            state.first_dirty = map_end;
            first_dirty = map_end;
            if map_end >= cleanable_end {
                break;
            }
            segments = log.cleaner_view().segments;
        }
        tracing::debug!(dir = %log.dir().display(), ?stats, "cleaned log");
        Ok(CleanOutcome::Cleaned(stats))
    }
}

/// What the policy needs of each segment.
fn facts(segments: &[Arc<Segment>], log_end: i64) -> Vec<SegmentFacts> {
    segments
        .iter()
        .enumerate()
        .map(|(i, s)| SegmentFacts {
            bytes: s.size() as u64,
            base_offset: s.base_offset(),
            end_offset: segments.get(i + 1).map_or(log_end, |n| n.base_offset()),
            newest_ms: s.max_timestamp(),
        })
        .collect()
}

/// Base offsets of the last [`CACHED_BATCHES`] batches of each idempotent producer in the log
/// (the batches the producer table is rebuilt from).
fn producer_batches(segments: &[Arc<Segment>]) -> HashSet<i64> {
    let mut last: HashMap<i64, VecDeque<i64>> = HashMap::new();
    for segment in segments {
        for b in segment.batches_from(0) {
            if b.header.producer_id < 0 || b.header.attributes.is_control() {
                continue;
            }
            let q = last.entry(b.header.producer_id).or_default();
            if q.len() == CACHED_BATCHES {
                q.pop_front();
            }
            q.push_back(b.header.base_offset);
        }
    }
    last.into_values().flatten().collect()
}

/// One cleaning's fixed inputs.
struct Job<'a> {
    log: &'a PartitionLog,
    now_ms: i64,
    delete_retention_ms: i64,
    index_interval_bytes: u32,
    producer_keeps: &'a HashSet<i64>,
    throttle: Option<&'a Throttle>,
}

/// A run of dropped batches waiting to be covered by one filler batch.
#[derive(Debug, Clone, Copy)]
struct Gap {
    first: i64,
    last: i64,
    max_timestamp: i64,
}

impl Job<'_> {
    fn damaged(&self, segment: i64, reason: impl Into<String>) -> CleanError {
        CleanError::Damaged {
            dir: self.log.dir().to_path_buf(),
            segment,
            reason: reason.into(),
        }
    }

    fn io(&self, op: &'static str) -> impl FnOnce(io::Error) -> CleanError + '_ {
        move |source| CleanError::Io {
            dir: self.log.dir().to_path_buf(),
            op,
            source,
        }
    }

    /// The batch `b` of `segment`, verified, with its header.
    fn verified<'s>(
        &self,
        segment: &'s Segment,
        position: usize,
        len: usize,
    ) -> Result<(&'s [u8], BatchHeader), CleanError> {
        let bytes = &segment.data()[position..position + len];
        let header = validate_stored_batch(bytes).map_err(|e| {
            self.damaged(segment.base_offset(), format!("position {position}: {e}"))
        })?;
        Ok((bytes, header))
    }

    /// Fills `map` with the last offset of each key in `[from, to)`, batch by batch, until the
    /// next batch might not fit. Returns where the mapped part ends (a batch boundary).
    fn build_map(
        &self,
        segments: &[Arc<Segment>],
        from: i64,
        to: i64,
        map: &mut OffsetMap,
    ) -> Result<i64, CleanError> {
        let mut end = from;
        for segment in segments {
            let start = match segment.find(from) {
                Some(b) if segment.base_offset() <= from => b.position,
                _ if segment.base_offset() > from => 0,
                _ => continue,
            };
            for b in segment.batches_from(start) {
                if b.header.base_offset >= to {
                    return Ok(end);
                }
                if b.header.last_offset() < from {
                    continue;
                }
                let (bytes, header) = self.verified(segment, b.position, b.len)?;
                if !map.has_room_for(usize::try_from(header.records_count).unwrap_or(0)) {
                    if map.len() == 0 {
                        return Err(CleanError::MapTooSmall {
                            dir: self.log.dir().to_path_buf(),
                            records: header.records_count,
                            capacity: map.capacity(),
                        });
                    }
                    return Ok(end);
                }
                if !header.attributes.is_control() {
                    for_each_key(bytes, &header, |key, offset| {
                        map.put(key, offset);
                    })
                    .map_err(|source| CleanError::Rewrite {
                        dir: self.log.dir().to_path_buf(),
                        source,
                    })?;
                }
                end = header.next_offset();
            }
        }
        Ok(end)
    }

    /// Writes the cleaned copy of `segment` (whose offsets end before `end`) and its indexes
    /// as `.cleaned` files, synced.
    fn write_segment(
        &self,
        segment: &Segment,
        end: i64,
        map: &OffsetMap,
        stats: &mut CleanStats,
    ) -> Result<Written, CleanError> {
        let base = segment.base_offset();
        let dir = self.log.dir();
        let disk = self.log.disk();
        let [(log_path, _), (index_path, _), (time_path, _)] = swap::cleaned_paths(dir, base);
        let file = File::create(&log_path).map_err(self.io("create cleaned segment"))?;
        let mut out = BufWriter::with_capacity(1 << 20, &file);
        let mut written = 0usize;
        let mut put = |bytes: &[u8], out: &mut BufWriter<&File>| -> Result<(), CleanError> {
            written += bytes.len();
            out.write_all(bytes)
                .map_err(self.io("write cleaned segment"))
        };
        let mut gap: Option<Gap> = None;
        let flush_gap = |gap: &mut Option<Gap>| {
            gap.take()
                .map(|g| rewrite::filler(g.first, g.last, g.max_timestamp, LEADER_EPOCH))
        };
        let mut expected = base;
        for b in segment.batches_from(0) {
            let (bytes, header) = self.verified(segment, b.position, b.len)?;
            if header.base_offset != expected {
                return Err(self.damaged(
                    base,
                    format!(
                        "batch at position {} starts at offset {} where {expected} was expected",
                        b.position, header.base_offset
                    ),
                ));
            }
            expected = header.next_offset();
            let rules = BatchRules {
                now_ms: self.now_ms,
                delete_retention_ms: self.delete_retention_ms,
                producer_keeps: self.producer_keeps.contains(&header.base_offset),
            };
            let mut dropped = 0u64;
            let outcome = rewrite::clean_batch(bytes, &header, rules, |c: Candidate<'_>| {
                let verdict = match c.key {
                    // Kafka drops keyless records from a compacted log too.
                    None => Verdict::Drop,
                    Some(key) => match map.get(key) {
                        Some(latest) if c.offset < latest => Verdict::Drop,
                        _ => Verdict::Keep,
                    },
                };
                if verdict == Verdict::Drop {
                    dropped += 1;
                }
                verdict
            })
            .map_err(|source| CleanError::Rewrite {
                dir: dir.to_path_buf(),
                source,
            })?;
            let kept = match outcome {
                Outcome::Dropped => {
                    stats.records_dropped += u64::try_from(header.records_count).unwrap_or(0);
                    let extend =
                        gap.is_some_and(|g| header.last_offset() - g.first <= i64::from(i32::MAX));
                    if extend {
                        if let Some(g) = gap.as_mut() {
                            g.last = header.last_offset();
                            g.max_timestamp = g.max_timestamp.max(header.max_timestamp);
                        }
                    } else {
                        if let Some(f) = flush_gap(&mut gap) {
                            put(&f, &mut out)?;
                        }
                        gap = Some(Gap {
                            first: header.base_offset,
                            last: header.last_offset(),
                            max_timestamp: header.max_timestamp,
                        });
                    }
                    continue;
                }
                Outcome::Unchanged => None,
                Outcome::Rewritten(v) => Some(v),
            };
            stats.records_dropped += dropped;
            if let Some(f) = flush_gap(&mut gap) {
                put(&f, &mut out)?;
            }
            put(kept.as_deref().unwrap_or(bytes), &mut out)?;
        }
        if expected != end {
            return Err(self.damaged(
                base,
                format!("batches end at offset {expected} but the next segment starts at {end}"),
            ));
        }
        if let Some(f) = flush_gap(&mut gap) {
            put(&f, &mut out)?;
        }
        out.flush().map_err(self.io("write cleaned segment"))?;
        drop(out);
        disk.sync_data(&file)
            .map_err(self.io("sync cleaned segment"))?;
        drop(file);
        if let Some(t) = self.throttle {
            t.pace((segment.size() + written) as u64);
        }
        stats.segments += 1;
        stats.bytes_read += segment.size() as u64;
        stats.bytes_written += written as u64;
        // Indexes from a validating scan of what was written: it also checks the result is
        // whole, dense from `base` and ends where the old segment ended.
        let cleaned =
            MappedFile::open_read_only(&log_path).map_err(self.io("open cleaned segment"))?;
        let scan = scan_segment(
            cleaned.as_slice(),
            base,
            self.index_interval_bytes,
            LEADER_EPOCH,
            OnDamage::Stop,
        );
        if scan.stop.is_some() || scan.next_offset != end {
            return Err(self.damaged(
                base,
                format!(
                    "the cleaned copy does not verify (ends at {}, stop {:?})",
                    scan.next_offset, scan.stop
                ),
            ));
        }
        let mut time_entries: Vec<TimeEntry> = scan.time_entries.clone();
        time_entries
            .extend(IndexCursor::resume(self.index_interval_bytes, scan.cursor).final_time_entry());
        let offsets: &[OffsetEntry] = &scan.offset_entries;
        Entries::rebuild(&index_path, offsets, None, disk)
            .and_then(|e| e.sync(disk))
            .map_err(self.io("write cleaned offset index"))?;
        Entries::rebuild(&time_path, &time_entries, None, disk)
            .and_then(|e| e.sync(disk))
            .map_err(self.io("write cleaned time index"))?;
        Ok(Written {
            base_offset: base,
            max_timestamp: scan.cursor.max_timestamp,
            len: scan.valid_len,
        })
    }
}

/// Calls `f` with each keyed record's key and offset (decompressing, bounded).
fn for_each_key(
    bytes: &[u8],
    header: &BatchHeader,
    mut f: impl FnMut(&[u8], i64),
) -> Result<(), RewriteError> {
    let offset = header.base_offset;
    let malformed = |source| RewriteError::Malformed { offset, source };
    let codec = header.attributes.compression().map_err(malformed)?;
    let decompressed;
    let records = if codec == Compression::None {
        &bytes[HEADER_LEN..]
    } else {
        decompressed = compression::decompress(
            codec,
            &bytes[HEADER_LEN..],
            rewrite::DECOMPRESSED_BATCH_MAX_BYTES,
        )
        .map_err(|source| RewriteError::Codec { offset, source })?;
        &decompressed[..]
    };
    for record in Records::from_raw(records, header.records_count) {
        let record = record.map_err(malformed)?;
        if let Some(key) = record.key {
            f(key, record.offset(header.base_offset));
        }
    }
    Ok(())
}
