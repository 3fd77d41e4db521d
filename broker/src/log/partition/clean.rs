//! The log's side of compaction: what the cleaner may read of it, and installing cleaned
//! segments under the writer lock. The cleaning itself is `crate::log::cleaner`'s.

use std::io;
use std::sync::{Arc, Mutex};

use super::{PartitionLog, lock};
use crate::log::files::SegmentPaths;
use crate::log::index::Entries;
use crate::log::mmap::MappedFile;
use crate::log::segment::Segment;
use crate::log::swap::{self, SwapStep};

/// The cleaner's per-log state, kept by the log and locked for a cleaning.
#[derive(Debug, Default)]
pub(crate) struct CleanerState {
    /// Offsets below this were cleaned by this process.
    pub(crate) first_dirty: i64,
    /// A swap failed after its commit: leave the log alone until it is reopened.
    pub(crate) stopped: bool,
}

/// A cleaned segment written beside the old ones it replaces, ready to swap in.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    /// Its base offset: that of the first segment it replaces.
    pub(crate) base_offset: i64,
    /// Base offsets of the other segments it replaces (merged into it), oldest first.
    pub(crate) replaces: Vec<i64>,
    pub(crate) max_timestamp: i64,
    /// Bytes of the cleaned `.log`, all validated by the scan that built its indexes.
    pub(crate) len: usize,
}

/// Installing cleaned segments failed: what was being done, and the I/O error. The log is
/// untouched unless the swap's commit was written (recovery then finishes it).
#[derive(Debug)]
pub(crate) struct InstallError {
    pub(crate) op: &'static str,
    pub(crate) source: io::Error,
}

/// What one cleaning reads of a log, taken together.
#[derive(Debug)]
pub(crate) struct CleanerView {
    /// The segment list (the last one active).
    pub(crate) segments: Arc<Vec<Arc<Segment>>>,
    /// Everything below it is on disk.
    pub(crate) durable: i64,
    /// The log end offset.
    pub(crate) log_end: i64,
    /// Clock time of the cleaning.
    pub(crate) now_ms: i64,
}

impl PartitionLog {
    pub(crate) fn cleaner_view(&self) -> CleanerView {
        // The end first: every segment below it is then in the list taken next.
        let log_end = self.log_end_offset().0;
        CleanerView {
            durable: self.durable_offset().0.min(log_end),
            segments: self.snapshot(),
            log_end,
            now_ms: self.clock.now_ms(),
        }
    }

    pub(crate) fn cleaner_state(&self) -> &Mutex<CleanerState> {
        &self.cleaner
    }

    /// Swaps the cleaned segments `written` (each replacing the run of `old` starting at its
    /// base offset and the segments listed in its `replaces`; their `.cleaned` files synced)
    /// into the log: on disk (`swap::commit`, after the hook's [`SwapStep::Written`]) and in
    /// the segment list, under the writer lock so no roll or retention interleaves. Returns
    /// `false`, having changed nothing, when the log was closed or `old` is no longer the
    /// log's (retention deleted some meanwhile).
    pub(crate) fn install_cleaned(
        &self,
        old: &[Arc<Segment>],
        written: &[Written],
        hook: &dyn Fn(SwapStep) -> io::Result<()>,
    ) -> Result<bool, InstallError> {
        let fail = |op: &'static str| move |source| InstallError { op, source };
        let mut w = lock(&self.writer);
        let current = self.snapshot();
        let all_present = old
            .iter()
            .all(|o| current.iter().any(|s| Arc::ptr_eq(s, o)));
        if w.closed || !all_present || self.is_failed() {
            return Ok(false);
        }
        self.disk
            .sync_dir(&self.dir)
            .map_err(fail("sync directory before swap"))?;
        hook(SwapStep::Written).map_err(fail("swap"))?;
        let groups: Vec<swap::Group> = written
            .iter()
            .map(|w| (w.base_offset, w.replaces.clone()))
            .collect();
        swap::commit(&self.dir, &groups, self.disk.as_ref(), hook).map_err(fail("swap"))?;
        let mut fresh = Vec::with_capacity(written.len());
        for w in written {
            let paths = SegmentPaths::new(&self.dir, w.base_offset);
            let log =
                MappedFile::open_read_only(&paths.log).map_err(fail("open cleaned segment"))?;
            let index =
                Entries::open_read_only(&paths.index).map_err(fail("open cleaned index"))?;
            let time = Entries::open_read_only(&paths.time_index)
                .map_err(fail("open cleaned time index"))?;
            fresh.push(Arc::new(Segment::from_parts(
                w.base_offset,
                log,
                index,
                time,
                w.max_timestamp,
                w.len,
            )));
        }
        self.replace_segments(|list| {
            list.retain(|s| !old.iter().any(|o| Arc::ptr_eq(s, o)));
            // The old segments were the oldest ones, so the cleaned ones go first, in order.
            let at = list
                .iter()
                .position(|s| s.base_offset() > fresh[0].base_offset())
                .unwrap_or(list.len());
            list.splice(at..at, fresh.iter().cloned());
        });
        // The cleaned copies were synced; the old ones need no sync any more.
        w.unsynced_sealed
            .retain(|s| !old.iter().any(|o| Arc::ptr_eq(o, s)));
        Ok(true)
    }
}
