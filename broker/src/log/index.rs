//! Sparse indexes of a segment: the offset index and the time index.
//!
//! Both are arrays of fixed-size big-endian entries in a memory-mapped file, sorted by key and
//! binary-searched. They are caches: every entry can be recomputed from the `.log` file, so a
//! missing or damaged index is rebuilt, never trusted (see [`Entries::check`]).
//!
//! - Offset index (`.index`), 8 bytes an entry: relative offset (u32) of a batch's first
//!   record, file position (u32) of that batch. One entry per `index.interval.bytes` of log.
//! - Time index (`.timeindex`), 12 bytes an entry: timestamp (i64), relative offset (u32).
//!   An entry `(t, r)` promises that every batch up to and including the one at `r` has a
//!   max timestamp `<= t`, and that the batch at `r` reached `t`; entries are added when the running maximum grows, at most one per
//!   `index.interval.bytes`, plus a final one when the segment is sealed.
//!
//! [`IndexCursor`] decides when an entry is due; the writer and the recovery scan share it so
//! that an index rebuilt after a crash is identical to the one written live.

use std::io;
use std::marker::PhantomData;
use std::path::Path;

use super::config::WritePath;
use super::mmap::MappedFile;
use crate::storage::{Disk, OsDisk};

/// Index files are always appended through their map: an entry is a few bytes per
/// `index.interval.bytes` of log, so page faults cost nothing noticeable, and a store into a
/// preallocated map cannot fail, so an entry never fails after its batch was published.
const INDEX_WRITE_PATH: WritePath = WritePath::Mmap;

/// An offset relative to its segment's base offset. Fits in 32 bits because a segment holds
/// less than 2 GiB and every record takes at least one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RelativeOffset(pub(crate) u32);

/// A byte position inside a segment's `.log` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct FilePosition(pub(crate) u32);

/// One fixed-size index entry.
pub(crate) trait Entry: Copy + std::fmt::Debug {
    /// Encoded size in bytes.
    const SIZE: usize;
    /// Decodes `Self::SIZE` bytes.
    fn decode(bytes: &[u8]) -> Self;
    /// Encodes into `Self::SIZE` bytes.
    fn encode(self, out: &mut [u8]);
}

/// Offset index entry: where the batch starting at `relative_offset` begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub(crate) relative_offset: RelativeOffset,
    pub(crate) position: FilePosition,
}

/// Time index entry: batches up to the one at `relative_offset` have timestamps `<= timestamp`,
/// and that batch's max timestamp is `timestamp` (it reached the running maximum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub(crate) timestamp: i64,
    pub(crate) relative_offset: RelativeOffset,
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl Entry for OffsetEntry {
    const SIZE: usize = 8;
    fn decode(b: &[u8]) -> Self {
        Self {
            relative_offset: RelativeOffset(be_u32(&b[0..4])),
            position: FilePosition(be_u32(&b[4..8])),
        }
    }
    fn encode(self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.relative_offset.0.to_be_bytes());
        out[4..8].copy_from_slice(&self.position.0.to_be_bytes());
    }
}

impl Entry for TimeEntry {
    const SIZE: usize = 12;
    fn decode(b: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[0..8]);
        Self {
            timestamp: i64::from_be_bytes(ts),
            relative_offset: RelativeOffset(be_u32(&b[8..12])),
        }
    }
    fn encode(self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.relative_offset.0.to_be_bytes());
    }
}

/// A sorted array of entries in a mapped file.
#[derive(Debug)]
pub(crate) struct Entries<E> {
    file: MappedFile,
    _entry: PhantomData<E>,
}

impl<E: Entry> Entries<E> {
    /// A new, empty index with room for `capacity` entries.
    pub(crate) fn create(path: &Path, capacity: usize, disk: &dyn Disk) -> io::Result<Self> {
        Ok(Self {
            file: MappedFile::create(path, capacity * E::SIZE, INDEX_WRITE_PATH, disk)?,
            _entry: PhantomData,
        })
    }

    /// A sealed index, read-only.
    pub(crate) fn open_read_only(path: &Path) -> io::Result<Self> {
        Ok(Self {
            file: MappedFile::open_read_only(path)?,
            _entry: PhantomData,
        })
    }

    /// Writes `entries` to a fresh file at `path` (replacing any) and opens it: writable with
    /// room for `capacity` entries, or read-only (`capacity == None`).
    pub(crate) fn rebuild(
        path: &Path,
        entries: &[E],
        capacity: Option<usize>,
        disk: &dyn Disk,
    ) -> io::Result<Self> {
        let mut bytes = vec![0u8; entries.len() * E::SIZE];
        for (entry, out) in entries.iter().zip(bytes.chunks_exact_mut(E::SIZE)) {
            entry.encode(out);
        }
        // Replace atomically: a crash mid-write must not leave a shorter index that still
        // looks plausible.
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, path)?;
        let file = match capacity {
            Some(cap) => MappedFile::open_writable(
                path,
                bytes.len(),
                cap.max(entries.len()) * E::SIZE,
                INDEX_WRITE_PATH,
                disk,
            )?,
            None => MappedFile::open_read_only(path)?,
        };
        Ok(Self {
            file,
            _entry: PhantomData,
        })
    }

    /// Number of published entries.
    pub(crate) fn len(&self) -> usize {
        self.file.len() / E::SIZE
    }

    /// Entry `i`, if published.
    pub(crate) fn get(&self, i: usize) -> Option<E> {
        let bytes = self.file.as_slice();
        bytes.get(i * E::SIZE..(i + 1) * E::SIZE).map(E::decode)
    }

    /// The last published entry.
    pub(crate) fn last(&self) -> Option<E> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// All published entries (for tests and for carrying an index across a seal).
    pub(crate) fn to_vec(&self) -> Vec<E> {
        self.file
            .as_slice()
            .chunks_exact(E::SIZE)
            .map(E::decode)
            .collect()
    }

    /// The last entry for which `is_at_or_before` holds, by binary search. The predicate must
    /// be true for a prefix of the entries and false after it (entries are sorted).
    pub(crate) fn last_where(&self, is_at_or_before: impl Fn(&E) -> bool) -> Option<E> {
        let bytes = self.file.as_slice();
        let n = bytes.len() / E::SIZE;
        let mut lo = 0usize;
        let mut hi = n;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if is_at_or_before(&E::decode(&bytes[mid * E::SIZE..])) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1).map(|i| E::decode(&bytes[i * E::SIZE..]))
    }

    /// Appends an entry; `false` when the preallocated room is used up (the index then simply
    /// stays sparser: lookups remain correct, only scans get longer).
    pub(crate) fn push(&self, entry: E) -> bool {
        let mut buf = [0u8; 16];
        entry.encode(&mut buf[..E::SIZE]);
        // The map path never calls the disk.
        self.file.append(&[&buf[..E::SIZE]], &OsDisk).is_ok()
    }

    /// Trims to the published entries and reopens read-only.
    pub(crate) fn seal(&self) -> io::Result<Self> {
        Ok(Self {
            file: self.file.seal()?,
            _entry: PhantomData,
        })
    }

    /// Makes the entries durable.
    pub(crate) fn sync(&self, disk: &dyn Disk) -> io::Result<()> {
        disk.sync_data(self.file.file())
    }

    /// Structural check of a loaded index: whole entries only, and `valid(previous, entry)`
    /// holds for each consecutive pair (with `None` for the first). Returns why not.
    pub(crate) fn check(&self, valid: impl Fn(Option<&E>, &E) -> bool) -> Result<(), &'static str> {
        let bytes = self.file.as_slice();
        if bytes.len() % E::SIZE != 0 {
            return Err("size is not a whole number of entries");
        }
        let mut previous: Option<E> = None;
        for chunk in bytes.chunks_exact(E::SIZE) {
            let entry = E::decode(chunk);
            if !valid(previous.as_ref(), &entry) {
                return Err("entries out of order or out of bounds");
            }
            previous = Some(entry);
        }
        Ok(())
    }

    /// The file path.
    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }
}

/// Decides, batch by batch, when an index entry is due.
#[derive(Debug, Clone)]
pub(crate) struct IndexCursor {
    interval_bytes: u64,
    bytes_since_offset_entry: u64,
    bytes_since_time_entry: u64,
    /// Largest timestamp seen in the segment so far (-1: none, as in Kafka).
    max_timestamp: i64,
    /// Timestamp of the last time-index entry, -1 when there is none.
    last_time_entry: i64,
    /// Relative offset of the batch that reached `max_timestamp`: time entries point at it,
    /// so the last entry of an index can be checked against its batch.
    max_batch: Option<RelativeOffset>,
    /// Whether any batch has been seen (the first needs no offset entry).
    seen_batch: bool,
}

/// Entries due after one batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DueEntries {
    pub(crate) offset: Option<OffsetEntry>,
    pub(crate) time: Option<TimeEntry>,
}

impl IndexCursor {
    pub(crate) fn new(interval_bytes: u32) -> Self {
        Self {
            interval_bytes: u64::from(interval_bytes),
            bytes_since_offset_entry: 0,
            bytes_since_time_entry: 0,
            max_timestamp: -1,
            last_time_entry: -1,
            max_batch: None,
            seen_batch: false,
        }
    }

    /// A cursor that continues an existing segment whose last time entry is `last_time_entry`.
    pub(crate) fn resume(interval_bytes: u32, state: CursorState) -> Self {
        Self {
            interval_bytes: u64::from(interval_bytes),
            bytes_since_offset_entry: state.bytes_since_offset_entry,
            bytes_since_time_entry: state.bytes_since_time_entry,
            max_timestamp: state.max_timestamp,
            last_time_entry: state.last_time_entry,
            max_batch: state.max_batch,
            seen_batch: state.seen_batch,
        }
    }

    /// Accounts for a batch of `len` bytes at `position` starting at `relative_offset`.
    pub(crate) fn on_batch(
        &mut self,
        relative_offset: RelativeOffset,
        position: FilePosition,
        len: u32,
        max_timestamp: i64,
    ) -> DueEntries {
        let mut due = DueEntries::default();
        // The first batch of a segment needs no offset entry: a lookup below every entry
        // starts at position 0.
        if self.seen_batch && self.bytes_since_offset_entry >= self.interval_bytes {
            due.offset = Some(OffsetEntry {
                relative_offset,
                position,
            });
            self.bytes_since_offset_entry = 0;
        }
        if max_timestamp > self.max_timestamp {
            self.max_timestamp = max_timestamp;
            self.max_batch = Some(relative_offset);
        }
        if let Some(max_batch) = self.max_batch.filter(|_| {
            self.max_timestamp > self.last_time_entry
                && (self.last_time_entry == -1
                    || self.bytes_since_time_entry >= self.interval_bytes)
        }) {
            due.time = Some(TimeEntry {
                timestamp: self.max_timestamp,
                relative_offset: max_batch,
            });
            self.last_time_entry = self.max_timestamp;
            self.bytes_since_time_entry = 0;
        }
        self.bytes_since_offset_entry += u64::from(len);
        self.bytes_since_time_entry += u64::from(len);
        self.seen_batch = true;
        due
    }

    /// Makes the next batch get an offset entry: it follows damaged bytes that a scan skipped,
    /// and lookups must be able to start there rather than walk into the damage.
    pub(crate) fn force_offset_entry(&mut self) {
        self.seen_batch = true;
        self.bytes_since_offset_entry = self.interval_bytes;
    }

    /// The entry that records the segment's final maximum when it is sealed, if the last
    /// entry does not already.
    pub(crate) fn final_time_entry(&self) -> Option<TimeEntry> {
        let relative_offset = self.max_batch?;
        (self.max_timestamp > self.last_time_entry).then_some(TimeEntry {
            timestamp: self.max_timestamp,
            relative_offset,
        })
    }

    /// Marks the final entry as written.
    pub(crate) fn note_final_time_entry(&mut self) {
        self.last_time_entry = self.max_timestamp;
    }

    /// The state to resume from later.
    pub(crate) fn state(&self) -> CursorState {
        CursorState {
            bytes_since_offset_entry: self.bytes_since_offset_entry,
            bytes_since_time_entry: self.bytes_since_time_entry,
            max_timestamp: self.max_timestamp,
            last_time_entry: self.last_time_entry,
            max_batch: self.max_batch,
            seen_batch: self.seen_batch,
        }
    }
}

/// A snapshot of an [`IndexCursor`], carried from the recovery scan to the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CursorState {
    pub(crate) bytes_since_offset_entry: u64,
    pub(crate) bytes_since_time_entry: u64,
    pub(crate) max_timestamp: i64,
    pub(crate) last_time_entry: i64,
    pub(crate) max_batch: Option<RelativeOffset>,
    pub(crate) seen_batch: bool,
}

/// Capacity, in entries, that an index of a `segment_bytes` segment can ever need: at most one
/// entry per interval, and never more than one per batch (a batch is at least 61 bytes).
pub(crate) fn index_capacity(segment_bytes: u32, interval_bytes: u32) -> usize {
    let spacing = interval_bytes.max(61) as usize;
    segment_bytes as usize / spacing + 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::OsDisk;

    fn oe(r: u32, p: u32) -> OffsetEntry {
        OffsetEntry {
            relative_offset: RelativeOffset(r),
            position: FilePosition(p),
        }
    }

    #[test]
    fn binary_search_agrees_with_linear_scan() {
        let dir = tempfile::tempdir().unwrap();
        let idx: Entries<OffsetEntry> =
            Entries::create(&dir.path().join("i"), 100, &OsDisk).unwrap();
        for i in 0..50u32 {
            assert!(idx.push(oe(i * 3 + 1, i * 100)));
        }
        for target in 0..200u32 {
            let linear = idx
                .to_vec()
                .into_iter()
                .rfind(|e| e.relative_offset.0 <= target);
            assert_eq!(
                idx.last_where(|e| e.relative_offset.0 <= target),
                linear,
                "target {target}"
            );
        }
    }

    #[test]
    fn full_index_refuses_entries_and_rebuild_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i");
        let idx: Entries<TimeEntry> = Entries::create(&path, 2, &OsDisk).unwrap();
        let t = |ts, r| TimeEntry {
            timestamp: ts,
            relative_offset: RelativeOffset(r),
        };
        assert!(idx.push(t(5, 0)));
        assert!(idx.push(t(9, 4)));
        assert!(!idx.push(t(12, 8)));
        let sealed = idx.seal().unwrap();
        assert_eq!(sealed.to_vec(), vec![t(5, 0), t(9, 4)]);
        drop((idx, sealed));
        let rebuilt: Entries<TimeEntry> =
            Entries::rebuild(&path, &[t(1, 1)], None, &OsDisk).unwrap();
        assert_eq!(rebuilt.to_vec(), vec![t(1, 1)]);
        assert_eq!(rebuilt.last(), Some(t(1, 1)));
    }

    #[test]
    fn cursor_spaces_entries_by_interval() {
        let mut c = IndexCursor::new(100);
        let mut offsets = vec![];
        let mut times = vec![];
        for i in 0..10u32 {
            let due = c.on_batch(
                RelativeOffset(i),
                FilePosition(i * 60),
                60,
                i64::from(i % 3) * 10,
            );
            offsets.extend(due.offset);
            times.extend(due.time);
        }
        // 60-byte batches, interval 100: an entry every second batch after the first.
        assert_eq!(
            offsets
                .iter()
                .map(|e| e.relative_offset.0)
                .collect::<Vec<_>>(),
            vec![2, 4, 6, 8]
        );
        // Timestamps 0,10,20,0,10,20,...: entries only when the running max grows.
        assert_eq!(
            times
                .iter()
                .map(|e| (e.timestamp, e.relative_offset.0))
                .collect::<Vec<_>>(),
            vec![(0, 0), (20, 2)]
        );
        assert_eq!(c.final_time_entry(), None);
    }
}
