//! One segment: a `.log` file of batches and its two sparse indexes.
//!
//! A segment is either *active* (writable maps, preallocated to `segment.bytes`, appended to
//! under the partition's writer lock) or *sealed* (trimmed, read-only). Readers use either kind
//! the same way and never lock. Sealing produces a new `Segment` value; the old one stays valid
//! for readers that still hold it.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use bytes::Bytes;
use weir_protocol::record_batch::{Compression, Records, TimestampType, validate_stored_batch};

use super::config::WritePath;
use super::files::SegmentPaths;
use super::index::{Entries, OffsetEntry, TimeEntry, index_capacity};
use super::mmap::{AppendError, MappedFile};
pub(crate) use super::scan::Damage;
use super::scan::{Anchor, BatchAt, Limits, Located, Walk, batches, epoch_is_possible};
use crate::storage::Disk;

/// What bounds one read of a segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// No batch whose base offset is at or beyond this is handed out: the end snapshot the
    /// read reports as its high watermark. The segment's published bytes may already hold
    /// batches past it (published before the log end moves, or not yet committed).
    pub(crate) below: i64,
    /// Where this segment's offsets end and which epochs are possible.
    pub(crate) limits: Limits,
}

/// One segment of a partition log.
#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: i64,
    log: MappedFile,
    index: Entries<OffsetEntry>,
    time_index: Entries<TimeEntry>,
    /// Largest batch max-timestamp in the segment (-1 for none); drives time lookups and
    /// retention by age.
    max_timestamp: AtomicI64,
    /// Bytes from the start of the `.log` that this process has validated batch by batch
    /// (on append, or by a recovery scan when it opened the log). Reads re-check the CRC only
    /// beyond this: what this process did not scan (sealed segments before the recovery
    /// point, everything after a clean shutdown) is checked whenever it is served.
    checked: AtomicUsize,
}

/// Sizes of an active segment's files, and how its log is written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Capacity {
    pub(crate) log_bytes: usize,
    pub(crate) index_entries: usize,
    pub(crate) write_path: WritePath,
}

impl Capacity {
    pub(crate) fn new(config: &super::LogConfig) -> Self {
        Self {
            log_bytes: config.segment_bytes as usize,
            index_entries: index_capacity(config.segment_bytes, config.index_interval_bytes),
            write_path: config.write_path,
        }
    }
}

impl Segment {
    /// Creates the files of a new, empty active segment. On failure nothing is left behind.
    pub(crate) fn create(
        dir: &Path,
        base_offset: i64,
        cap: Capacity,
        disk: &dyn Disk,
    ) -> io::Result<Self> {
        let paths = SegmentPaths::new(dir, base_offset);
        let log = MappedFile::create(&paths.log, cap.log_bytes, cap.write_path, disk)?;
        let made = Entries::create(&paths.index, cap.index_entries, disk).and_then(|index| {
            Entries::create(&paths.time_index, cap.index_entries, disk).map(|time| (index, time))
        });
        match made {
            Ok((index, time_index)) => Ok(Self {
                base_offset,
                log,
                index,
                time_index,
                max_timestamp: AtomicI64::new(-1),
                checked: AtomicUsize::new(0),
            }),
            Err(err) => {
                for p in [&paths.log, &paths.index, &paths.time_index] {
                    if let Err(e) = std::fs::remove_file(p) {
                        if e.kind() != io::ErrorKind::NotFound {
                            tracing::warn!(path = %p.display(), error = %e, "could not remove partial segment file");
                        }
                    }
                }
                Err(err)
            }
        }
    }

    /// Assembles a segment from files already opened by recovery; `checked` bytes from the
    /// start were validated by its scan (0 for a segment it trusted without scanning).
    pub(crate) fn from_parts(
        base_offset: i64,
        log: MappedFile,
        index: Entries<OffsetEntry>,
        time_index: Entries<TimeEntry>,
        max_timestamp: i64,
        checked: usize,
    ) -> Self {
        Self {
            base_offset,
            log,
            index,
            time_index,
            max_timestamp: AtomicI64::new(max_timestamp),
            checked: AtomicUsize::new(checked),
        }
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// Published bytes of the `.log` file.
    pub(crate) fn size(&self) -> usize {
        self.log.len()
    }

    /// Bytes still free in an active segment (0 once sealed).
    pub(crate) fn free(&self) -> usize {
        self.log.capacity().saturating_sub(self.log.len())
    }

    pub(crate) fn set_max_timestamp(&self, max_timestamp: i64) {
        self.max_timestamp.store(max_timestamp, Ordering::Release);
    }

    pub(crate) fn max_timestamp(&self) -> i64 {
        self.max_timestamp.load(Ordering::Acquire)
    }

    /// Writes a batch given as its patched first bytes (`head`, carrying the broker-assigned
    /// fields) and the untouched rest, and publishes it. Returns its position. Caller holds the
    /// partition writer lock and adds the index entries due.
    pub(crate) fn append(
        &self,
        head: &[u8],
        rest: &[u8],
        max_timestamp: i64,
        disk: &dyn Disk,
    ) -> Result<usize, AppendError> {
        let position = self.log.append(&[head, rest], disk)?;
        self.max_timestamp
            .fetch_max(max_timestamp, Ordering::AcqRel);
        // The batch was validated before it was written. The checked prefix grows only if it
        // reached this batch: a reopened segment with unscanned bytes stays checked on read.
        let end = position + head.len() + rest.len();
        let _grown =
            self.checked
                .compare_exchange(position, end, Ordering::AcqRel, Ordering::Acquire);
        Ok(position)
    }

    /// Adds due index entries (positions and offsets already relative to this segment).
    pub(crate) fn add_index_entries(&self, offset: Option<OffsetEntry>, time: Option<TimeEntry>) {
        if let Some(entry) = offset {
            self.index.push(entry);
        }
        if let Some(entry) = time {
            self.time_index.push(entry);
        }
    }

    /// The batch containing `offset`, if this segment has it.
    pub(crate) fn find(&self, offset: i64) -> Option<BatchAt> {
        let start = match u32::try_from(offset - self.base_offset) {
            Ok(relative) => self
                .index
                .last_where(|e| e.relative_offset.0 <= relative)
                .map_or(0, |e| e.position.0 as usize),
            Err(_) if offset < self.base_offset => 0,
            Err(_) => return None,
        };
        batches(self.log.as_slice(), start).find(|b| b.header.last_offset() >= offset)
    }

    /// The batch containing `offset` and the base offset it must have, found by counting
    /// records from the index entry at or before it (or the segment's start), not by the
    /// stored base offsets (outside the CRC): a damaged base offset is caught by comparing the
    /// two rather than followed, and damaged bytes are skipped up to the next intact batch
    /// ([`Walk::locate`]), so a damaged batch hides none of its neighbours.
    pub(crate) fn locate(&self, offset: i64, limits: Limits) -> Located {
        if offset < self.base_offset {
            // Offsets are dense: asked here, the offset belongs to no readable batch.
            return Located::Damaged(Damage {
                position: 0,
                reason: format!(
                    "no readable batch holds offset {offset}; the next starts at {}",
                    self.base_offset
                ),
            });
        }
        let Ok(relative) = u32::try_from(offset - self.base_offset) else {
            return Located::Beyond;
        };
        let start = self
            .index
            .last_where(|e| e.relative_offset.0 <= relative)
            .map_or(
                Anchor {
                    position: 0,
                    offset: self.base_offset,
                },
                |e| self.anchor(e),
            );
        let walk = Walk {
            data: self.log.as_slice(),
            checked: self.checked.load(Ordering::Acquire),
            limits,
        };
        walk.locate(start, offset, |position| self.index_entry_after(position))
    }

    fn anchor(&self, entry: OffsetEntry) -> Anchor {
        Anchor {
            position: entry.position.0 as usize,
            offset: self.base_offset + i64::from(entry.relative_offset.0),
        }
    }

    /// The first offset index entry at a position after `position`.
    fn index_entry_after(&self, position: usize) -> Option<Anchor> {
        let (mut lo, mut hi) = (0, self.index.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.index.get(mid) {
                Some(e) if e.position.0 as usize <= position => lo = mid + 1,
                _ => hi = mid,
            }
        }
        self.index.get(lo).map(|e| self.anchor(e))
    }

    /// The published bytes (the cleaner reads whole batches from them).
    pub(crate) fn data(&self) -> &[u8] {
        self.log.as_slice()
    }

    /// Batch headers from `position` to the end of the published bytes.
    pub(crate) fn batches_from(&self, position: usize) -> impl Iterator<Item = BatchAt> + '_ {
        batches(self.log.as_slice(), position)
    }

    /// Whole batches from `position`, whose first batch must start at offset `first`: always
    /// that one, then as many as fit in `max_bytes` in total, none at or beyond
    /// [`Bounds::below`]. Zero-copy.
    ///
    /// With `verify`, each batch is checked before it is handed out (length, magic, CRC-32C,
    /// record count, a base offset that follows the previous batch's, an epoch this log could
    /// have written): the reply stops before the first damaged batch, and is an error if that
    /// is the first one. Bytes on disk can rot after they were validated on append or at
    /// recovery; this is what keeps them from being served as valid. Without `verify`, `first`
    /// is the stored base offset of the first batch and only the bound is applied.
    pub(crate) fn read_from(
        &self,
        position: usize,
        max_bytes: usize,
        first: i64,
        verify: bool,
        bounds: Bounds,
    ) -> Result<Bytes, Damage> {
        let data = self.log.as_slice();
        let checked = self.checked.load(Ordering::Acquire);
        let mut end = position;
        let mut expected = first;
        for b in batches(data, position) {
            // Batches are whole and dense, so the bound falls between two of them.
            if expected >= bounds.below {
                break;
            }
            if end > position && end - position + b.len > max_bytes {
                break;
            }
            if verify {
                let epoch = b.header.partition_leader_epoch;
                let verdict = if b.header.base_offset != expected {
                    Err(format!(
                        "base offset {} where {expected} was expected",
                        b.header.base_offset
                    ))
                } else if !epoch_is_possible(epoch, bounds.limits.max_epoch) {
                    Err(format!(
                        "partition leader epoch {epoch} outside -1..={}, the epochs this log wrote",
                        bounds.limits.max_epoch
                    ))
                } else if b.position + b.len <= checked {
                    // Validated by this process already (header continuity still checked).
                    Ok(())
                } else {
                    validate_stored_batch(&data[b.position..b.position + b.len])
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                };
                if let Err(reason) = verdict {
                    if end == position {
                        return Err(Damage {
                            position: b.position,
                            reason,
                        });
                    }
                    // Serve the good prefix; the next read starts at the damage and fails.
                    break;
                }
            }
            expected = b.header.next_offset();
            end = b.position + b.len;
        }
        Ok(self.log.bytes(position, end))
    }

    /// The earliest offset in this segment whose record timestamp is `>= timestamp`.
    pub(crate) fn lookup_timestamp(&self, timestamp: i64) -> Option<(i64, i64)> {
        if self.max_timestamp() < timestamp {
            return None;
        }
        // Every batch up to the entry's one is older than `timestamp`: start there.
        let start_relative = self
            .time_index
            .last_where(|e| e.timestamp < timestamp)
            .map_or(0, |e| e.relative_offset.0);
        let start = self.find(self.base_offset + i64::from(start_relative))?;
        let data = self.log.as_slice();
        let batch = batches(data, start.position).find(|b| b.header.max_timestamp >= timestamp)?;
        let header = batch.header;
        let exact = header.attributes.timestamp_type() == TimestampType::CreateTime
            && header.attributes.compression().ok() == Some(Compression::None);
        if exact {
            let bytes = &data[batch.position..batch.position + batch.len];
            if let Ok(records) = Records::new(bytes) {
                for record in records.flatten() {
                    let found = record.timestamp(header.base_timestamp);
                    if found >= timestamp {
                        return Some((record.offset(header.base_offset), found));
                    }
                }
            }
        }
        // Compressed or broker-timestamped batches: the batch's first offset, which is at or
        // before the first matching record, so a consumer starting there misses nothing, with
        // that record's timestamp (every record's, for LogAppendTime; the first record's is
        // the base timestamp, for CreateTime).
        let first_timestamp = match header.attributes.timestamp_type() {
            TimestampType::LogAppendTime => header.max_timestamp,
            TimestampType::CreateTime => header.base_timestamp,
        };
        Some((header.base_offset, first_timestamp))
    }

    /// Records the final time-index entry, trims the files and reopens them read-only.
    pub(crate) fn seal(&self, final_time_entry: Option<TimeEntry>) -> io::Result<Segment> {
        if let Some(entry) = final_time_entry {
            self.time_index.push(entry);
        }
        Ok(Segment {
            base_offset: self.base_offset,
            log: self.log.seal()?,
            index: self.index.seal()?,
            time_index: self.time_index.seal()?,
            max_timestamp: AtomicI64::new(self.max_timestamp()),
            checked: AtomicUsize::new(self.checked.load(Ordering::Acquire)),
        })
    }

    /// Makes the `.log` data durable.
    pub(crate) fn sync_log(&self, disk: &dyn Disk) -> io::Result<()> {
        disk.sync_data(self.log.file())
    }

    /// Makes the log and both indexes durable (done once, when sealed).
    pub(crate) fn sync_all(&self, disk: &dyn Disk) -> io::Result<()> {
        self.sync_log(disk)?;
        self.index.sync(disk)?;
        self.time_index.sync(disk)
    }

    /// Removes the segment's files. Readers holding the maps keep reading until they drop them.
    pub(crate) fn delete_files(&self) -> io::Result<()> {
        for path in [self.log.path(), self.index.path(), self.time_index.path()] {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}
