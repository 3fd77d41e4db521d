//! One pass of a cleaning: mapping the last offset of each key in a dirty range, and writing
//! the cleaned copy of a segment (with its indexes) beside the old one.
//!
//! Owns the reading of old segments (every batch verified before it is used: damage stops
//! the cleaning of the log rather than being copied or dropped) and the `.cleaned` files'
//! contents. Does not swap anything in ([`super::swap`] and the log do).
//!
//! Invariants: the map ends at a batch boundary; a cleaned segment starts at its old base
//! offset, is dense batch after batch, and ends exactly where the old one ended (checked by a
//! validating scan of what was written, which also builds its indexes); runs of dropped
//! batches become one filler batch each. Consecutive small segments are written as one (see
//! [`group`]), as Kafka's cleaner groups them.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use weir_protocol::record_batch::{BatchHeader, Records, validate_stored_batch};

use super::map::OffsetMap;
use super::rewrite::{self, BatchRules, Candidate, Outcome, RewriteError, Verdict};
use super::{CleanError, CleanStats, Throttle, Written};
use crate::log::PartitionLog;
use crate::log::index::{Entries, IndexCursor, TimeEntry};
use crate::log::mmap::MappedFile;
use crate::log::partition::LEADER_EPOCH;
use crate::log::scan::{OnDamage, scan_segment};
use crate::log::segment::Segment;
use crate::log::swap;

/// One cleaning's fixed inputs.
pub(super) struct Job<'a> {
    pub(super) log: &'a PartitionLog,
    pub(super) now_ms: i64,
    pub(super) delete_retention_ms: i64,
    pub(super) index_interval_bytes: u32,
    /// Largest cleaned segment (several small ones are merged up to it).
    pub(super) segment_bytes: u32,
    /// Base offsets of the batches each idempotent producer's table is rebuilt from.
    pub(super) producer_keeps: &'a HashSet<i64>,
    pub(super) throttle: Option<&'a Throttle>,
}

/// A run of dropped batches waiting to be covered by one filler batch.
#[derive(Debug, Default)]
struct Gap {
    run: Option<(i64, i64, i64)>,
}

impl Gap {
    /// Adds a dropped batch; returns the filler of the run before it if that run is full (a
    /// batch's span is at most `i32::MAX + 1` offsets).
    fn extend(&mut self, header: &BatchHeader) -> Option<Vec<u8>> {
        let (first, last, ts) = (
            header.base_offset,
            header.last_offset(),
            header.max_timestamp,
        );
        match &mut self.run {
            Some((start, end, max_ts)) if last - *start <= i64::from(i32::MAX) => {
                *end = last;
                *max_ts = (*max_ts).max(ts);
                None
            }
            _ => self.run.replace((first, last, ts)).map(filler),
        }
    }

    /// The filler of the current run, if any.
    fn take(&mut self) -> Option<Vec<u8>> {
        self.run.take().map(filler)
    }
}

fn filler((first, last, max_ts): (i64, i64, i64)) -> Vec<u8> {
    rewrite::filler(first, last, max_ts, LEADER_EPOCH)
}

/// The `.cleaned` log file being written and what went into it.
struct Output<'f> {
    out: BufWriter<&'f File>,
    written: usize,
}

impl Output<'_> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.written += bytes.len();
        self.out.write_all(bytes)
    }
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

    fn rewrite_error(&self, source: RewriteError) -> CleanError {
        CleanError::Rewrite {
            dir: self.log.dir().to_path_buf(),
            source,
        }
    }

    /// The batch at `position` of `segment`, verified, with its header.
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
    pub(super) fn build_map(
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
                let records = usize::try_from(header.records_count).unwrap_or(0);
                if !map.has_room_for(records) {
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
                    .map_err(|e| self.rewrite_error(e))?;
                }
                end = header.next_offset();
            }
        }
        Ok(end)
    }

    /// Writes the cleaned copy of the consecutive segments `group` (whose offsets end before
    /// `end`) as one segment with the first one's base offset, and its indexes, as `.cleaned`
    /// files, synced.
    pub(super) fn write_group(
        &self,
        group: &[Arc<Segment>],
        end: i64,
        map: &OffsetMap,
        stats: &mut CleanStats,
    ) -> Result<Written, CleanError> {
        let base = group[0].base_offset();
        let [(log_path, _), (index_path, _), (time_path, _)] =
            swap::cleaned_paths(self.log.dir(), base);
        let file = File::create(&log_path).map_err(self.io("create cleaned segment"))?;
        let written = self.write_batches(group, end, map, &file, stats)?;
        self.log
            .disk()
            .sync_data(&file)
            .map_err(self.io("sync cleaned segment"))?;
        drop(file);
        let read: usize = group.iter().map(|s| s.size()).sum();
        if let Some(t) = self.throttle {
            t.pace((read + written) as u64);
        }
        stats.segments += group.len();
        stats.bytes_read += read as u64;
        stats.bytes_written += written as u64;
        let mut done = self.write_indexes(base, end, &log_path, &index_path, &time_path)?;
        done.replaces = group[1..].iter().map(|s| s.base_offset()).collect();
        Ok(done)
    }

    /// The batch loop of [`Self::write_group`]: returns the bytes written.
    fn write_batches(
        &self,
        group: &[Arc<Segment>],
        end: i64,
        map: &OffsetMap,
        file: &File,
        stats: &mut CleanStats,
    ) -> Result<usize, CleanError> {
        let mut out = Output {
            out: BufWriter::with_capacity(1 << 20, file),
            written: 0,
        };
        let write = |e: io::Error| self.io("write cleaned segment")(e);
        let mut gap = Gap::default();
        let mut expected = group[0].base_offset();
        let put = |out: &mut Output<'_>, bytes: &[u8]| out.put(bytes);
        for segment in group {
            let base = segment.base_offset();
            if base != expected {
                return Err(self.damaged(
                    base,
                    format!("segment starts at {base} but the one before ends at {expected}"),
                ));
            }
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
                let result = match self.clean_one(bytes, &header, map, stats)? {
                    Outcome::Dropped => gap.extend(&header).map_or(Ok(()), |f| put(&mut out, &f)),
                    kept => gap
                        .take()
                        .map_or(Ok(()), |f| put(&mut out, &f))
                        .and_then(|()| match kept {
                            Outcome::Rewritten(v) => put(&mut out, &v),
                            _ => put(&mut out, bytes),
                        }),
                };
                result.map_err(write)?;
            }
        }
        if expected != end {
            return Err(self.damaged(
                group[0].base_offset(),
                format!("batches end at offset {expected} but the next segment starts at {end}"),
            ));
        }
        gap.take()
            .map_or(Ok(()), |f| out.put(&f))
            .and_then(|()| out.out.flush())
            .map_err(write)?;
        Ok(out.written)
    }

    /// Cleans one verified batch against the map.
    fn clean_one(
        &self,
        bytes: &[u8],
        header: &BatchHeader,
        map: &OffsetMap,
        stats: &mut CleanStats,
    ) -> Result<Outcome, CleanError> {
        let rules = BatchRules {
            now_ms: self.now_ms,
            delete_retention_ms: self.delete_retention_ms,
            producer_keeps: self.producer_keeps.contains(&header.base_offset),
        };
        let mut dropped = 0u64;
        let outcome = rewrite::clean_batch(bytes, header, rules, |c: Candidate<'_>| {
            let verdict = match c.key {
                // Kafka drops keyless records from a compacted log too.
                None => Verdict::Drop,
                Some(key) => match map.get(key) {
                    Some(latest) if c.offset < latest => Verdict::Drop,
                    _ => Verdict::Keep,
                },
            };
            dropped += u64::from(verdict == Verdict::Drop);
            verdict
        })
        .map_err(|e| self.rewrite_error(e))?;
        stats.records_dropped += dropped;
        Ok(outcome)
    }

    /// Builds the indexes of the cleaned log at `log_path` from a validating scan, which also
    /// checks that it is whole, dense from `base` and ends at `end`.
    fn write_indexes(
        &self,
        base: i64,
        end: i64,
        log_path: &Path,
        index_path: &Path,
        time_path: &Path,
    ) -> Result<Written, CleanError> {
        let disk = self.log.disk();
        let cleaned =
            MappedFile::open_read_only(log_path).map_err(self.io("open cleaned segment"))?;
        let interval = self.index_interval_bytes;
        let scan = scan_segment(
            cleaned.as_slice(),
            base,
            interval,
            self.log.max_stored_epoch().max(LEADER_EPOCH),
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
        time_entries.extend(IndexCursor::resume(interval, scan.cursor).final_time_entry());
        Entries::rebuild(index_path, &scan.offset_entries, None, disk)
            .and_then(|e| e.sync(disk))
            .map_err(self.io("write cleaned offset index"))?;
        Entries::rebuild(time_path, &time_entries, None, disk)
            .and_then(|e| e.sync(disk))
            .map_err(self.io("write cleaned time index"))?;
        Ok(Written {
            base_offset: base,
            replaces: Vec::new(),
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
    let records = rewrite::records_section(bytes, header)?;
    let malformed = |source| RewriteError::Malformed {
        offset: header.base_offset,
        source,
    };
    for record in Records::from_raw(&records, header.records_count) {
        let record = record.map_err(malformed)?;
        if let Some(key) = record.key {
            f(key, record.offset(header.base_offset));
        }
    }
    Ok(())
}

/// Splits `segments` (consecutive, the last one followed by a segment starting at `end`) into
/// runs rewritten as one segment each: as many as fit `segment_bytes` by their current sizes
/// (the cleaned copy is no larger) and whose offsets stay within the 32-bit relative offsets
/// of an index. Kafka's `groupSegmentsBySize`.
pub(super) fn group(
    segments: &[Arc<Segment>],
    end: i64,
    segment_bytes: u32,
) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let mut start = 0;
    while start < segments.len() {
        let base = segments[start].base_offset();
        let mut bytes = segments[start].size() as u64;
        let mut stop = start + 1;
        while stop < segments.len() {
            let next_end = segments.get(stop + 1).map_or(end, |s| s.base_offset());
            let size = bytes + segments[stop].size() as u64;
            if size > u64::from(segment_bytes) || next_end - base > i64::from(i32::MAX) {
                break;
            }
            bytes = size;
            stop += 1;
        }
        groups.push(start..stop);
        start = stop;
    }
    groups
}
