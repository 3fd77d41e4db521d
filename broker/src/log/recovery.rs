//! Opening a partition directory: trusting what a clean shutdown or the recovery point vouches
//! for, scanning and cutting what they do not, and rebuilding indexes that are missing or
//! damaged.
//!
//! Rules (the crash analysis behind them is in `docs/storage-format.md`):
//! - With the clean-shutdown marker, every file is trusted; only index files are checked.
//! - Without it, segments whose base offset is at or after the recovery point are scanned
//!   batch by batch (length, magic, CRC-32C, a possible leader epoch, dense offsets).
//!   Everything before the recovery point was synced before the point was written, so it is
//!   trusted.
//! - In the last segment (the one appended to when the log stopped, where a crash tears
//!   writes) the first invalid byte ends the log: the segment is truncated there.
//! - A sealed segment (any other) was written whole before the next one was started, so
//!   damage in it is rot or a torn unsynced tail, not the end of the log: the scan skips to
//!   the next intact batch whose offsets are confirmed and goes on, the damaged bytes stay
//!   (refused on read, reported in [`RecoveryReport::damaged`]), a zero tail is trimmed, and
//!   later segments are kept. Offsets a damaged region held stay unreadable; none is reused.
//! - Zero bytes where a batch should start are the normal end of a preallocated segment, not
//!   damage; anything else that is cut is reported with its position and reason.
//! - The marker is removed before the log accepts a write, and the recovery point is advanced
//!   only after everything before it has been synced.

use std::io;
use std::path::{Path, PathBuf};

use super::LogConfig;
use super::error::LogError;
use super::files::{self, CLEAN_SHUTDOWN, RECOVERY_POINT, SegmentPaths};
use super::index::{CursorState, Entries, IndexCursor, OffsetEntry, TimeEntry};
use super::mmap::MappedFile;
use super::scan::{OnDamage, Scan, batches, scan_segment};
use super::segment::{Capacity, Segment};
use crate::storage::Disk;
use crate::storage::files::write_atomically;

/// What opening a log found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The clean-shutdown marker was present, so nothing was scanned.
    pub clean: bool,
    /// Segments in the log after opening.
    pub segments: usize,
    /// Segments validated batch by batch.
    pub segments_scanned: usize,
    /// Segments whose index files were rebuilt.
    pub indexes_rebuilt: usize,
    /// Invalid bytes cut from segment tails.
    pub truncated: Vec<TruncatedTail>,
    /// Segment files removed because they followed a cut or overlapped earlier segments.
    pub removed: Vec<PathBuf>,
    /// Damage found in sealed segments and left in place: reads refuse it and serve every
    /// intact batch around it; later segments are kept.
    pub damaged: Vec<DamagedRange>,
}

/// Damaged bytes in a sealed segment that recovery kept (not cut) and reads refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedRange {
    /// Base offset of the segment.
    pub segment_base_offset: i64,
    /// Byte position where the damage starts.
    pub position: u64,
    /// Where the next intact batch starts; `None` when none follows in the segment.
    pub resumed_at: Option<u64>,
    /// The first offset the damaged bytes would hold.
    pub first_offset: i64,
    /// The offset of the next intact batch (the damaged bytes held `first_offset` up to it);
    /// `None` when none follows in the segment.
    pub resumed_offset: Option<i64>,
    /// Why the bytes at `position` were invalid.
    pub reason: String,
}

/// One cut made by recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruncatedTail {
    /// Base offset of the segment that was cut.
    pub segment_base_offset: i64,
    /// Byte position of the cut; the valid prefix is this long.
    pub position: u64,
    /// Bytes removed (up to the end of the file as found).
    pub bytes_cut: u64,
    /// Why the bytes at `position` were invalid.
    pub reason: String,
}

/// A recovered log, ready for the partition to take over.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// Oldest first; the last one is active (writable).
    pub(crate) segments: Vec<Segment>,
    /// Offset after the last batch.
    pub(crate) next_offset: i64,
    /// Index cursor of the active segment.
    pub(crate) cursor: IndexCursor,
    pub(crate) report: RecoveryReport,
}

/// What phase one decided about one segment.
#[derive(Debug)]
struct Planned {
    base_offset: i64,
    /// Base offset of the segment file after it, if any: where its offsets must end.
    next_base: Option<i64>,
    /// Set when the segment was scanned; `None` means trusted as it is on disk.
    scan: Option<Scan>,
}

/// Opens (creating if needed) the partition directory `dir`.
pub(crate) fn recover(
    dir: &Path,
    config: &LogConfig,
    max_epoch: i32,
    disk: &dyn Disk,
) -> Result<Recovered, LogError> {
    std::fs::create_dir_all(dir).map_err(LogError::io("create log directory", dir))?;
    // A cleaner swap interrupted by a crash is finished (committed) or undone first, so the
    // segments listed next are whole ones (`docs/storage-format.md`, "Log compaction").
    super::swap::recover(dir, disk)
        .map_err(LogError::io("complete an interrupted cleaner swap", dir))?;
    let marker = dir.join(CLEAN_SHUTDOWN);
    let clean = marker.exists();
    let bases = list_segments(dir)?;
    let cap = Capacity::new(config);
    let mut report = RecoveryReport {
        clean,
        ..RecoveryReport::default()
    };

    let recovered = if bases.is_empty() {
        let segment = Segment::create(dir, 0, cap, disk).map_err(|source| {
            let path = SegmentPaths::new(dir, 0).log;
            if crate::storage::is_disk_full(&source) {
                LogError::DiskFull { path, source }
            } else {
                LogError::Io {
                    op: "create segment",
                    path,
                    source,
                }
            }
        })?;
        Recovered {
            segments: vec![segment],
            next_offset: 0,
            cursor: IndexCursor::new(config.index_interval_bytes),
            report: RecoveryReport::default(),
        }
    } else {
        let recovery_point = if clean {
            i64::MAX
        } else {
            read_recovery_point(dir)
        };
        let rules = Rules { config, max_epoch };
        let plan = plan(dir, &bases, recovery_point, rules, &mut report)?;
        build(dir, plan, rules, disk, report)?
    };

    // Make the directory state (new, truncated, removed files) durable, then drop the marker:
    // from here on a crash must lead to recovery.
    if clean {
        std::fs::remove_file(&marker)
            .map_err(LogError::io("remove clean-shutdown marker", &marker))?;
    }
    disk.sync_dir(dir)
        .map_err(LogError::io("sync log directory", dir))?;
    let mut recovered = recovered;
    recovered.report.clean = clean;
    recovered.report.segments = recovered.segments.len();
    Ok(recovered)
}

fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(LogError::io("list log directory", dir))? {
        let entry = entry.map_err(LogError::io("list log directory", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(base) = files::parse_segment_name(name, "log") {
            bases.push(base);
        } else if name.ends_with(".tmp") {
            // An interrupted atomic write; the real file is intact.
            let path = entry.path();
            std::fs::remove_file(&path).map_err(LogError::io("remove temporary file", &path))?;
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

fn read_recovery_point(dir: &Path) -> i64 {
    let path = dir.join(RECOVERY_POINT);
    match std::fs::read(&path) {
        Ok(bytes) => files::decode_recovery_point(&bytes).unwrap_or_else(|| {
            tracing::warn!(path = %path.display(), "recovery point is damaged; scanning every segment");
            0
        }),
        // No checkpoint yet (the log never rolled): scan everything.
        Err(_) => 0,
    }
}

/// What a scan must know beyond the bytes.
#[derive(Debug, Clone, Copy)]
struct Rules<'a> {
    config: &'a LogConfig,
    /// The highest leader epoch the log has written.
    max_epoch: i32,
}

impl Rules<'_> {
    /// Scans one segment: the last one stops at damage, a sealed one skips it.
    fn scan(&self, data: &[u8], base: i64, next_base: Option<i64>) -> Scan {
        let on_damage = next_base.map_or(OnDamage::Stop, |segment_end| OnDamage::Resync {
            segment_end,
        });
        scan_segment(
            data,
            base,
            self.config.index_interval_bytes,
            self.max_epoch,
            on_damage,
        )
    }
}

/// Logs and reports the damage a scan of a sealed segment skipped or found at its end. This
/// is data that was written whole (a later segment exists), so it is logged at `error`.
fn report_damage(paths: &SegmentPaths, base: i64, scan: &Scan, report: &mut RecoveryReport) {
    for s in &scan.skipped {
        tracing::error!(segment = %paths.log.display(), position = s.position, resumed_at = s.resumed_at,
            first_offset = s.first_offset, resumed_offset = s.resumed_offset, reason = %s.reason,
            "damaged batch in a sealed segment; it is not served, the batches around it are");
        report.damaged.push(DamagedRange {
            segment_base_offset: base,
            position: s.position as u64,
            resumed_at: Some(s.resumed_at as u64),
            first_offset: s.first_offset,
            resumed_offset: Some(s.resumed_offset),
            reason: s.reason.clone(),
        });
    }
    if let Some(stop) = scan.stop.as_ref().filter(|s| !s.zeroed) {
        tracing::error!(segment = %paths.log.display(), position = stop.position, reason = %stop.reason,
            "damage in a sealed segment with no intact batch after it; its batches from there on are not served, later segments are kept");
        report.damaged.push(DamagedRange {
            segment_base_offset: base,
            position: stop.position as u64,
            resumed_at: None,
            first_offset: scan.next_offset,
            resumed_offset: None,
            reason: stop.reason.clone(),
        });
    }
}

/// Phase one: which segments to keep, scan and cut.
fn plan(
    dir: &Path,
    bases: &[i64],
    recovery_point: i64,
    rules: Rules<'_>,
    report: &mut RecoveryReport,
) -> Result<Vec<Planned>, LogError> {
    let mut plan: Vec<Planned> = Vec::new();
    let mut expected: Option<i64> = None;
    let mut cut = false;
    for (i, &base) in bases.iter().enumerate() {
        let next_base = bases.get(i + 1).copied();
        let paths = SegmentPaths::new(dir, base);
        let out_of_line = expected.is_some_and(|e| base < e);
        if cut || out_of_line {
            let why = if cut {
                "it follows a cut"
            } else {
                "it overlaps the previous segment"
            };
            tracing::warn!(dir = %dir.display(), base_offset = base, "removing segment: {why}");
            for p in [&paths.log, &paths.index, &paths.time_index] {
                remove_if_present(p)?;
            }
            report.removed.push(paths.log.clone());
            cut = true;
            continue;
        }
        if let Some(e) = expected.filter(|&e| base > e) {
            tracing::warn!(dir = %dir.display(), base_offset = base, expected = e, "gap between segments; offsets in it are missing");
        }
        if base < recovery_point {
            expected = None;
            plan.push(Planned {
                base_offset: base,
                next_base,
                scan: None,
            });
            continue;
        }
        let log = MappedFile::open_read_only(&paths.log)
            .map_err(LogError::io("open segment", &paths.log))?;
        let scan = rules.scan(log.as_slice(), base, next_base);
        report.segments_scanned += 1;
        if next_base.is_some() {
            report_damage(&paths, base, &scan, report);
        } else if let Some(stop) = scan.stop.as_ref().filter(|s| !s.zeroed) {
            let bytes_cut = (log.len() - stop.position) as u64;
            tracing::warn!(
                segment = %paths.log.display(), position = stop.position, bytes_cut, reason = %stop.reason,
                "recovery cut the invalid tail of a segment"
            );
            report.truncated.push(TruncatedTail {
                segment_base_offset: base,
                position: stop.position as u64,
                bytes_cut,
                reason: stop.reason.clone(),
            });
        }
        expected = Some(scan.next_offset);
        plan.push(Planned {
            base_offset: base,
            next_base,
            scan: Some(scan),
        });
    }
    Ok(plan)
}

/// Phase two: open every kept segment, the last one writable.
#[allow(
    clippy::too_many_lines,
    reason = "one walk over the planned segments in order: how each opens (trusted, scanned, cut, damage kept) depends on the ones before it"
)]
fn build(
    dir: &Path,
    plan: Vec<Planned>,
    rules: Rules<'_>,
    disk: &dyn Disk,
    mut report: RecoveryReport,
) -> Result<Recovered, LogError> {
    let config = rules.config;
    let cap = Capacity::new(config);
    let last = plan.len() - 1;
    let mut segments = Vec::with_capacity(plan.len());
    let mut tail = None;
    let mut scanned_any = false;
    for (i, planned) in plan.into_iter().enumerate() {
        let base = planned.base_offset;
        let paths = SegmentPaths::new(dir, base);
        let active = i == last;
        let scan = match planned.scan {
            Some(scan) => scan,
            None => match check_trusted(&paths, base) {
                Ok(found) if !active => {
                    segments.push(found.segment);
                    continue;
                }
                Ok(found) => {
                    // Trusted active segment: carry its entries into writable files.
                    let (segment, t) = reopen_active(&paths, found, cap, disk)?;
                    segments.push(segment);
                    tail = Some(t);
                    continue;
                }
                Err(why) => {
                    tracing::warn!(segment = %paths.log.display(), why, "rebuilding indexes");
                    let log = MappedFile::open_read_only(&paths.log)
                        .map_err(LogError::io("open segment", &paths.log))?;
                    let next_base = planned.next_base.filter(|_| !active);
                    let scan = rules.scan(log.as_slice(), base, next_base);
                    if !active {
                        report_damage(&paths, base, &scan, &mut report);
                    } else if let Some(stop) = scan.stop.as_ref().filter(|s| !s.zeroed) {
                        tracing::error!(segment = %paths.log.display(), position = stop.position, reason = %stop.reason,
                            "damage found in the last segment before the recovery point; cutting it there");
                        report.truncated.push(TruncatedTail {
                            segment_base_offset: base,
                            position: stop.position as u64,
                            bytes_cut: (log.len() - stop.position) as u64,
                            reason: stop.reason.clone(),
                        });
                    }
                    scan
                }
            },
        };
        scanned_any = true;
        report.indexes_rebuilt += 1;
        let mut time_entries = scan.time_entries.clone();
        if !active {
            // A sealed segment's time index ends with the entry for its newest batch.
            time_entries.extend(
                IndexCursor::resume(config.index_interval_bytes, scan.cursor).final_time_entry(),
            );
        }
        let contents = Contents {
            base,
            valid_len: scan.valid_len,
            // A sealed segment keeps damaged bytes after its last intact batch (acknowledged
            // data may be in them); zeros there are only an unwritten tail and are trimmed.
            keep_damage: !active && scan.garbage_after,
            checked: scan.checked_len(),
            offset_entries: &scan.offset_entries,
            time_entries: &time_entries,
            max_timestamp: scan.cursor.max_timestamp,
        };
        segments.push(open_segment(
            &paths,
            &contents,
            active.then_some(cap),
            disk,
        )?);
        if active {
            tail = Some((scan.next_offset, scan.cursor));
        }
    }
    let (next_offset, cursor_state) = tail.ok_or_else(|| LogError::Io {
        op: "recover log",
        path: dir.to_path_buf(),
        source: io::Error::other("no active segment after recovery"),
    })?;
    if scanned_any {
        // Everything recovery kept is now on disk; later crashes need only scan the active
        // segment.
        for s in &segments {
            s.sync_all(disk)
                .map_err(LogError::io("sync recovered segment", dir))?;
        }
        let active_base = segments.last().map_or(0, Segment::base_offset);
        write_atomically(
            dir,
            RECOVERY_POINT,
            &files::encode_recovery_point(active_base),
            disk,
        )
        .map_err(LogError::io("write recovery point", dir))?;
    }
    Ok(Recovered {
        segments,
        next_offset,
        cursor: IndexCursor::resume(config.index_interval_bytes, cursor_state),
        report,
    })
}

/// A trusted segment opened read-only with indexes that passed their checks.
#[derive(Debug)]
struct Trusted {
    segment: Segment,
    /// Offset after its last batch.
    next_offset: i64,
    /// Relative offset and position of its last batch, if any.
    last_batch: Option<(u32, usize)>,
}

/// Opens a trusted segment and checks its index files against the log: entries in order,
/// inside the file, pointing at batch boundaries with the right offsets, and the batches after
/// the last entry ending exactly at the end of the file.
fn check_trusted(paths: &SegmentPaths, base: i64) -> Result<Trusted, &'static str> {
    let log =
        MappedFile::open_read_only(&paths.log).map_err(|_unreadable| "segment cannot be opened")?;
    let index: Entries<OffsetEntry> =
        Entries::open_read_only(&paths.index).map_err(|_missing| "offset index missing")?;
    let time: Entries<TimeEntry> =
        Entries::open_read_only(&paths.time_index).map_err(|_missing| "time index missing")?;
    let data = log.as_slice();
    index.check(|prev, e| {
        (e.position.0 as usize) < data.len()
            && prev.is_none_or(|p| p.relative_offset < e.relative_offset && p.position < e.position)
    })?;
    time.check(|prev, e| {
        prev.is_none_or(|p| p.timestamp <= e.timestamp && p.relative_offset <= e.relative_offset)
    })?;
    let start = index.last().map_or(0, |e| e.position.0 as usize);
    let mut end = start;
    let mut last = None;
    for (n, b) in batches(data, start).enumerate() {
        if n == 0 {
            if let Some(e) = index.last() {
                if b.header.base_offset != base + i64::from(e.relative_offset.0) {
                    return Err("offset index entry does not match its batch");
                }
            }
        }
        end = b.position + b.len;
        last = Some(b);
    }
    if end != data.len() {
        return Err("batches after the last index entry do not end at the end of the file");
    }
    let next_offset = last.map_or(base, |b| b.header.next_offset());
    let last_batch = last.and_then(|b| {
        u32::try_from(b.header.base_offset - base)
            .ok()
            .map(|r| (r, b.position))
    });
    let last_time = time.last();
    let segment = Segment::from_parts(base, log, index, time, -1, 0);
    // The last time entry holds the segment's newest timestamp: it names a batch that reached
    // it, and no batch after that one is newer. An index that lost its tail fails the walk
    // (a later batch is newer), so it is rebuilt instead of misleading retention and lookups.
    let walk_from = match last_time {
        Some(t) => {
            let offset = base + i64::from(t.relative_offset.0);
            match segment.find(offset) {
                Some(b)
                    if b.header.base_offset == offset && b.header.max_timestamp == t.timestamp =>
                {
                    b.position
                }
                _ => return Err("last time index entry does not match its batch"),
            }
        }
        None => 0,
    };
    let newest = last_time.map_or(-1, |t| t.timestamp);
    if segment
        .batches_from(walk_from)
        .any(|b| b.header.max_timestamp > newest)
    {
        return Err("time index does not reach the segment's newest batch");
    }
    let max_timestamp = last_time.map_or(-1, |t| t.timestamp);
    segment.set_max_timestamp(max_timestamp);
    Ok(Trusted {
        segment,
        next_offset,
        last_batch,
    })
}

/// Reopens a trusted last segment for appending, continuing its index cursor exactly.
fn reopen_active(
    paths: &SegmentPaths,
    found: Trusted,
    cap: Capacity,
    disk: &dyn Disk,
) -> Result<(Segment, (i64, CursorState)), LogError> {
    let Trusted {
        segment,
        next_offset,
        last_batch,
    } = found;
    let base = segment.base_offset();
    let len = segment.size();
    let offset_entries = segment_entries(&paths.index)?;
    let time_entries: Vec<TimeEntry> = Entries::<TimeEntry>::open_read_only(&paths.time_index)
        .map_err(LogError::io("open time index", &paths.time_index))?
        .to_vec();
    let last_time = time_entries.last().copied();
    let time_position = last_time
        .and_then(|t| segment.find(base + i64::from(t.relative_offset.0)))
        .map(|b| b.position);
    let cursor = CursorState {
        bytes_since_offset_entry: (len - offset_entries.last().map_or(0, |e| e.position.0 as usize))
            as u64,
        bytes_since_time_entry: (len - time_position.unwrap_or(0)) as u64,
        max_timestamp: segment.max_timestamp(),
        last_time_entry: last_time.map_or(-1, |t| t.timestamp),
        // A closed segment's last time entry is its final one: it names the batch holding the
        // maximum.
        max_batch: last_time.map(|t| t.relative_offset),
        seen_batch: last_batch.is_some(),
    };
    let contents = Contents {
        base,
        valid_len: len,
        keep_damage: false,
        checked: 0,
        offset_entries: &offset_entries,
        time_entries: &time_entries,
        max_timestamp: segment.max_timestamp(),
    };
    drop(segment);
    Ok((
        open_segment(paths, &contents, Some(cap), disk)?,
        (next_offset, cursor),
    ))
}

/// What a segment's files must hold, as established by a scan or by checked index files.
#[derive(Debug)]
struct Contents<'a> {
    base: i64,
    /// Bytes of valid batches; anything after them is discarded (unless `keep_damage`).
    valid_len: usize,
    /// A sealed segment with damaged bytes after its last intact batch: they may be
    /// acknowledged data, so the file is left as it is (an operator can still salvage it).
    /// Reads verify every batch and refuse the damaged ones. (Damage between intact batches
    /// is kept in any case: it lies inside `valid_len`.)
    keep_damage: bool,
    /// Bytes from the start this open validated batch by batch (its scan's valid length; 0
    /// for a segment trusted without a scan).
    checked: usize,
    offset_entries: &'a [OffsetEntry],
    time_entries: &'a [TimeEntry],
    max_timestamp: i64,
}

/// Opens a segment from known contents: the log cut to its valid length and both indexes
/// rewritten. Writable with room to grow for the active segment (`active` carries its
/// capacity), read-only for a sealed one.
fn open_segment(
    paths: &SegmentPaths,
    contents: &Contents<'_>,
    active: Option<Capacity>,
    disk: &dyn Disk,
) -> Result<Segment, LogError> {
    let log = match active {
        Some(cap) => MappedFile::open_writable(
            &paths.log,
            contents.valid_len,
            cap.log_bytes,
            cap.write_path,
            disk,
        ),
        None if contents.keep_damage => MappedFile::open_read_only(&paths.log),
        None => std::fs::OpenOptions::new()
            .write(true)
            .open(&paths.log)
            .and_then(|file| file.set_len(contents.valid_len as u64))
            .and_then(|()| MappedFile::open_read_only(&paths.log)),
    }
    .map_err(LogError::io("open segment", &paths.log))?;
    let room = active.map(|cap| cap.index_entries);
    let index = Entries::rebuild(&paths.index, contents.offset_entries, room, disk)
        .map_err(LogError::io("rewrite index", &paths.index))?;
    let time = Entries::rebuild(&paths.time_index, contents.time_entries, room, disk)
        .map_err(LogError::io("rewrite time index", &paths.time_index))?;
    Ok(Segment::from_parts(
        contents.base,
        log,
        index,
        time,
        contents.max_timestamp,
        contents.checked,
    ))
}

fn segment_entries(path: &Path) -> Result<Vec<OffsetEntry>, LogError> {
    Ok(Entries::<OffsetEntry>::open_read_only(path)
        .map_err(LogError::io("open index", path))?
        .to_vec())
}

fn remove_if_present(path: &Path) -> Result<(), LogError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(LogError::io("remove segment file", path)(e))
        }
        _ => Ok(()),
    }
}
