//! The log cleaner: compaction of logs whose `cleanup.policy` includes `compact`, keeping the
//! last record of each key.
//!
//! Owns one cleaning of one log ([`Cleaner::clean`]): deciding whether it is due
//! (`policy.rs`), building the key→offset map of the dirty part (`map.rs`, bounded memory),
//! rewriting the cleanable segments without superseded records (`rewrite.rs`) and swapping the
//! results in crash-safely (`swap.rs`). It does not schedule itself (the broker's cleaner task,
//! `crate::broker::cleaner`, does) and does not parse topic configs (it reads the log's
//! [`crate::log::LogConfig`]).
//!
//! Invariants:
//! - the active segment is never touched, nor anything at or past the durable offset;
//! - offsets never move: a cleaned segment has the same base offset and covers the same
//!   offsets as the consecutive old segments it replaces (several small ones are merged), and every batch keeps its offset span (dense from batch
//!   to batch, see `rewrite.rs`), so a reader's position stays valid across a swap;
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
mod pass;
pub(crate) mod policy;
pub(crate) mod rewrite;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use self::map::OffsetMap;
use self::pass::Job;
use self::policy::SegmentFacts;
pub use self::rewrite::DECOMPRESSED_BATCH_MAX_BYTES;
pub use self::rewrite::RewriteError;
use super::partition::CleanerView;
use super::segment::Segment;
use super::{CompactionConfig, PartitionLog};
pub(crate) use crate::log::partition::clean::{CleanerState, Written};
use crate::log::swap;
pub use crate::log::swap::{SwapHook, SwapStep};
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
        let mut state = match log.cleaner_state().try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return Ok(CleanOutcome::Busy),
        };
        if state.stopped {
            return Ok(CleanOutcome::Stopped);
        }
        let view = log.cleaner_view();
        let Some((first_dirty, cleanable_end)) = self.due(&view, &config.compaction, &state) else {
            return Ok(CleanOutcome::NotDue);
        };
        let producer_keeps = producer_batches(&view.segments);
        let throttle = self.options.throttle.clone();
        let job = Job {
            log,
            now_ms: view.now_ms,
            delete_retention_ms: config.compaction.delete_retention_ms,
            index_interval_bytes: config.index_interval_bytes,
            segment_bytes: config.segment_bytes,
            producer_keeps: &producer_keeps,
            throttle: throttle.as_deref(),
        };
        let range = (first_dirty, cleanable_end);
        self.passes(&job, view.segments, range, &mut state)
    }

    /// The dirty range `[first dirty, cleanable end)` to clean, if the log is due.
    fn due(
        &self,
        view: &CleanerView,
        compaction: &CompactionConfig,
        state: &CleanerState,
    ) -> Option<(i64, i64)> {
        let facts = facts(&view.segments, view.log_end);
        let n = policy::cleanable_prefix(&facts, view.durable, view.now_ms, compaction);
        if n == 0 {
            return None;
        }
        let start = facts[0].base_offset;
        let cleanable_end = facts[n - 1].end_offset;
        if self.options.force {
            return Some((start, cleanable_end));
        }
        let first_dirty = state.first_dirty.max(start);
        let first_dirty_ms = view
            .segments
            .iter()
            .rev()
            .find(|s| s.base_offset() <= first_dirty)
            .and_then(|s| s.find(first_dirty))
            .map(|b| b.header.max_timestamp);
        policy::due(
            &facts[..n],
            first_dirty,
            first_dirty_ms,
            view.now_ms,
            compaction,
        )
        .map(|_| (first_dirty, cleanable_end))
    }

    /// Map-and-rewrite passes until the map has covered `[first_dirty, cleanable_end)`.
    fn passes(
        &mut self,
        job: &Job<'_>,
        mut segments: Arc<Vec<Arc<Segment>>>,
        (mut first_dirty, cleanable_end): (i64, i64),
        state: &mut MutexGuard<'_, CleanerState>,
    ) -> Result<CleanOutcome, CleanError> {
        let dedupe = self.options.dedupe_buffer_bytes;
        let map = self
            .map
            .get_or_insert_with(|| OffsetMap::with_memory(dedupe));
        let mut stats = CleanStats::default();
        let hook = self.options.hook.clone();
        let hook = move |step| hook.as_ref().map_or(Ok(()), |h| h(step));
        let dir = job.log.dir();
        loop {
            map.clear();
            let map_end = job.build_map(&segments, first_dirty, cleanable_end, map)?;
            // Every segment holding mapped offsets is rewritten, never the active one.
            let k = segments
                .iter()
                .take_while(|s| s.base_offset() < map_end)
                .count()
                .min(segments.len().saturating_sub(1));
            if k == 0 {
                // Retention deleted everything mapped meanwhile: nothing left to rewrite.
                break;
            }
            let old = &segments[..k];
            let bases: Vec<i64> = old.iter().map(|s| s.base_offset()).collect();
            let groups = pass::group(old, segments[k].base_offset(), job.segment_bytes);
            let mut written = Vec::with_capacity(groups.len());
            for g in &groups {
                let end = segments[g.end].base_offset();
                match job.write_group(&segments[g.clone()], end, map, &mut stats) {
                    Ok(w) => written.push(w),
                    Err(err) => {
                        swap::discard(dir, &bases);
                        return Err(err);
                    }
                }
            }
            match job
                .log
                .install_cleaned(old, &written, &hook)
                .map_err(|err| CleanError::Io {
                    dir: job.log.dir().to_path_buf(),
                    op: err.op,
                    source: err.source,
                }) {
                Ok(true) => {}
                Ok(false) => {
                    swap::discard(dir, &bases);
                    return Ok(CleanOutcome::Abandoned);
                }
                Err(err) => {
                    // Before the commit the `.cleaned` files are garbage; after it recovery
                    // needs them. Either way the next open sorts them out.
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
            segments = job.log.cleaner_view().segments;
        }
        tracing::debug!(dir = %dir.display(), ?stats, "cleaned log");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_holds_the_rate() {
        let throttle = Throttle::new(1_000_000);
        let start = Instant::now();
        for _ in 0..4 {
            throttle.pace(50_000);
        }
        // 200 kB at 1 MB/s: at least 0.2 s (a lower bound only; a busy machine is slower).
        assert!(
            start.elapsed() >= Duration::from_millis(195),
            "{:?}",
            start.elapsed()
        );
    }
}
