//! The leader-epoch history of one partition log: for each leader epoch that wrote to the log,
//! the offset of its first batch (Kafka's `LeaderEpochFileCache` and `leader-epoch-checkpoint`).
//!
//! Owns the ordered list of `(epoch, start offset)` entries, its file in the partition
//! directory and the answers derived from it: the latest epoch (what reads and recovery check
//! stored batch epochs against) and [`EpochHistory::end_offset_for`] (OffsetForLeaderEpoch,
//! how a follower or a consumer finds where its copy diverged, KIP-101 / KIP-320). It does not
//! decide epochs (the leader does) nor write batches.
//!
//! Invariants:
//! - entries are strictly increasing in epoch and non-decreasing in start offset, every epoch
//!   is at least 0;
//! - a file, once there is one, always names every epoch that a batch on disk carries:
//!   [`EpochHistory::observe`] writes a new epoch to it (atomically and synced) *before* the
//!   batch carrying it is written, so after any crash the file's latest epoch is at least
//!   every stored batch's. A log without a file (new, or written before the file existed)
//!   holds no epoch above [`FILELESS_EPOCH`]: the first batch of a later epoch creates the
//!   file first; otherwise the file is created at close or at the next open, and the history
//!   is rebuilt from the batches after a crash.
//!   Recovery may leave entries at or past the recovered log end (the batch never made it);
//!   [`EpochHistory::truncate_from`] at open drops them. A suffix truncation must cut the log
//!   before the history for the same reason;
//! - a missing or damaged file is rebuilt from the batches' partition-leader-epoch fields
//!   (the first batch of each growing epoch). So while there is no valid file, a failed
//!   write of it refuses nothing (a full disk does not stop appends); once there is one, every
//!   change must reach it.
//!
//! ```text
//! <dir>/leader-epoch-checkpoint   count u32, then count × (epoch i32, start offset i64),
//!                                 then CRC-32 (IEEE) of all the preceding bytes u32;
//!                                 all big-endian; exactly 8 + 12 × count bytes
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::storage::Disk;
use crate::storage::files::write_atomically;

/// Name of the history file in a partition directory (Kafka's name).
pub(crate) const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// The only epoch a log's batches may carry while it has no history file: the one a single
/// broker writes. A log gets its file before its first batch of a later epoch, so recovery
/// bounds the epochs of a log without a file by this one (a garbled epoch is damage).
pub(crate) const FILELESS_EPOCH: i32 = 0;

/// Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET, answered for an epoch the log cannot
/// place.
pub const UNDEFINED_EPOCH: i32 = -1;
/// See [`UNDEFINED_EPOCH`].
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// One leader epoch and the offset of the first batch it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch (Raft term in a replicated partition).
    pub epoch: i32,
    /// Offset of its first batch.
    pub start_offset: i64,
}

/// What the file held when the log opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stored {
    /// No file (a log written before the history existed, or a new one).
    Missing,
    /// A file whose length, order or checksum is wrong.
    Damaged,
    /// The entries read.
    Valid(Vec<EpochEntry>),
}

/// Why the history refused a change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EpochError {
    /// An append carried an epoch older than one the log already holds (a deposed leader).
    #[error("leader epoch {epoch} is older than the log's latest epoch {latest}")]
    Stale {
        /// The epoch offered.
        epoch: i32,
        /// The latest epoch of the history.
        latest: i32,
    },
    /// A negative epoch or offset offered for a new entry.
    #[error("leader epoch {epoch} at offset {offset} cannot be recorded")]
    Invalid {
        /// The epoch offered.
        epoch: i32,
        /// Its start offset.
        offset: i64,
    },
    /// Writing the history file failed; the history is unchanged.
    #[error("write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// The leader-epoch history of one log. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct EpochHistory {
    dir: PathBuf,
    /// Oldest first. Locked only for short, non-blocking edits and lookups; writes of the file
    /// happen under it so file and memory change together.
    entries: Mutex<Vec<EpochEntry>>,
    /// The highest epoch ever recorded since open: the bound reads check stored epochs
    /// against. Unlike the latest entry it never goes down, so a reader racing a suffix
    /// truncation does not call the batches being cut damage.
    highest: AtomicI32,
    /// Whether the file holds the entries (written since open, or read valid at open).
    /// Without a file, a crash rebuilds the history from the batches, so a write that fails
    /// then (a full disk) refuses nothing; once there is a file, it must follow every change.
    /// Changed only under the `entries` lock.
    on_disk: AtomicBool,
}

fn lock(m: &Mutex<Vec<EpochEntry>>) -> MutexGuard<'_, Vec<EpochEntry>> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads the history file of `dir`. An unreadable file other than a missing one is an error.
pub(crate) fn read(dir: &Path) -> io::Result<Stored> {
    match std::fs::read(dir.join(LEADER_EPOCH_CHECKPOINT)) {
        Ok(bytes) => Ok(decode(&bytes).map_or(Stored::Damaged, Stored::Valid)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Stored::Missing),
        Err(err) => Err(err),
    }
}

/// The file's bytes for `entries`.
pub(crate) fn encode(entries: &[EpochEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 12 * entries.len());
    out.extend_from_slice(
        &u32::try_from(entries.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    for e in entries {
        out.extend_from_slice(&e.epoch.to_be_bytes());
        out.extend_from_slice(&e.start_offset.to_be_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// Decodes the file; `None` for a wrong length, checksum or order (never a wrong history).
pub(crate) fn decode(bytes: &[u8]) -> Option<Vec<EpochEntry>> {
    let body_len = bytes.len().checked_sub(4)?;
    let (body, crc) = bytes.split_at(body_len);
    if crc32fast::hash(body).to_be_bytes() != crc {
        return None;
    }
    let count = usize::try_from(u32::from_be_bytes(body.get(..4)?.try_into().ok()?)).ok()?;
    // The count is checked against the length before anything is sized from it.
    let rest = &body[4..];
    if rest.len() != count.checked_mul(12)? {
        return None;
    }
    let entries: Vec<EpochEntry> = rest
        .chunks_exact(12)
        .map(|c| EpochEntry {
            epoch: i32::from_be_bytes([c[0], c[1], c[2], c[3]]),
            start_offset: i64::from_be_bytes([c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11]]),
        })
        .collect();
    well_formed(&entries).then_some(entries)
}

/// The first invariant of the module docs.
fn well_formed(entries: &[EpochEntry]) -> bool {
    entries.iter().all(|e| e.epoch >= 0 && e.start_offset >= 0)
        && entries
            .windows(2)
            .all(|w| w[0].epoch < w[1].epoch && w[0].start_offset <= w[1].start_offset)
}

/// The entries a sequence of `(epoch, base offset)` batch headers implies: the first batch of
/// each growing epoch. Epochs below the latest seen (or -1, a batch written without one) start
/// nothing: Kafka rebuilds the same way, keeping the older entry.
pub(crate) fn rebuild(batches: impl IntoIterator<Item = (i32, i64)>) -> Vec<EpochEntry> {
    let mut entries: Vec<EpochEntry> = Vec::new();
    for (epoch, base) in batches {
        if epoch < 0 || base < 0 {
            continue;
        }
        if entries.last().is_none_or(|last| epoch > last.epoch) {
            entries.push(EpochEntry {
                epoch,
                start_offset: base,
            });
        }
    }
    entries
}

impl EpochHistory {
    /// A history over `entries` (well formed) whose file lives in `dir`; `on_disk` when that
    /// file holds them.
    pub(crate) fn new(dir: &Path, entries: Vec<EpochEntry>, on_disk: bool) -> Self {
        debug_assert!(well_formed(&entries));
        let highest = entries.last().map_or(UNDEFINED_EPOCH, |e| e.epoch);
        Self {
            dir: dir.to_path_buf(),
            entries: Mutex::new(entries),
            highest: AtomicI32::new(highest),
            on_disk: AtomicBool::new(on_disk),
        }
    }

    /// Writes `entries` to the file (caller holds the `entries` lock). A failure is an error
    /// only when the write is `required` (the file exists, or a new epoch above
    /// [`FILELESS_EPOCH`] must reach it before its batch): otherwise the log still rebuilds
    /// the history from its batches after a crash, so the change stands in memory and the
    /// file waits for a later write (logged at `warn`).
    fn persist(
        &self,
        entries: &[EpochEntry],
        disk: &dyn Disk,
        required: bool,
    ) -> Result<(), EpochError> {
        let path = self.dir.join(LEADER_EPOCH_CHECKPOINT);
        match write_atomically(&self.dir, LEADER_EPOCH_CHECKPOINT, &encode(entries), disk) {
            Ok(()) => {
                self.on_disk.store(true, Ordering::Release);
                Ok(())
            }
            Err(source) if !required => {
                tracing::warn!(path = %path.display(), error = %source,
                    "cannot write the leader-epoch history yet; a crash rebuilds it from the batches");
                Ok(())
            }
            Err(source) => Err(EpochError::Io { path, source }),
        }
    }

    /// Writes the current entries to the file (after a rebuild or an edit made at open).
    pub(crate) fn save(&self, disk: &dyn Disk) -> Result<(), EpochError> {
        let entries = lock(&self.entries);
        self.persist(&entries, disk, false)
    }

    /// Creates the file when there is none and the log holds epochs (at close): the next open
    /// then reads it instead of rebuilding. Best effort, as every write without a file.
    pub(crate) fn save_if_missing(&self, disk: &dyn Disk) -> Result<(), EpochError> {
        let entries = lock(&self.entries);
        if self.on_disk.load(Ordering::Acquire) || entries.is_empty() {
            return Ok(());
        }
        self.persist(&entries, disk, false)
    }

    /// Notes that a batch of `epoch` is about to be written at `base_offset`. A new, larger
    /// epoch becomes an entry and is written to the file before this returns (so before the
    /// batch is written); the latest epoch again changes nothing; an older one is refused
    /// ([`EpochError::Stale`]). On error nothing changed.
    pub(crate) fn observe(
        &self,
        epoch: i32,
        base_offset: i64,
        disk: &dyn Disk,
    ) -> Result<(), EpochError> {
        if epoch < 0 || base_offset < 0 {
            return Err(EpochError::Invalid {
                epoch,
                offset: base_offset,
            });
        }
        let mut entries = lock(&self.entries);
        match entries.last() {
            Some(last) if epoch == last.epoch => return Ok(()),
            Some(last) if epoch < last.epoch => {
                return Err(EpochError::Stale {
                    epoch,
                    latest: last.epoch,
                });
            }
            _ => {}
        }
        if entries.last().is_some_and(|l| base_offset < l.start_offset) {
            return Err(EpochError::Invalid {
                epoch,
                offset: base_offset,
            });
        }
        let mut next = entries.clone();
        next.push(EpochEntry {
            epoch,
            start_offset: base_offset,
        });
        // Without a file the history is rebuilt from the batches after a crash, and recovery
        // bounds their epochs by FILELESS_EPOCH: an append of that epoch does not create the
        // file (a synced write on the first append of every partition, taking space a full
        // disk may not have; close and open do), an append of a later one must.
        if self.on_disk.load(Ordering::Acquire) || epoch > FILELESS_EPOCH {
            self.persist(&next, disk, true)?;
        }
        *entries = next;
        self.highest.fetch_max(epoch, Ordering::AcqRel);
        Ok(())
    }

    /// Drops the entries starting at or after `offset` (the log was cut to end at `offset`).
    /// Returns whether anything changed; the file is rewritten when it did.
    pub(crate) fn truncate_from(&self, offset: i64, disk: &dyn Disk) -> Result<bool, EpochError> {
        let mut entries = lock(&self.entries);
        let keep = entries.partition_point(|e| e.start_offset < offset);
        if keep == entries.len() {
            return Ok(false);
        }
        let next = entries[..keep].to_vec();
        self.persist(&next, disk, self.on_disk.load(Ordering::Acquire))?;
        *entries = next;
        Ok(true)
    }

    /// The log now starts at `offset`: entries wholly below it go, and the epoch in force at
    /// `offset` starts there (Kafka's `truncateFromStart`). Returns whether anything changed.
    pub(crate) fn truncate_before(&self, offset: i64, disk: &dyn Disk) -> Result<bool, EpochError> {
        let mut entries = lock(&self.entries);
        let below = entries.partition_point(|e| e.start_offset <= offset);
        if below == 0 || (below == 1 && entries[0].start_offset == offset) {
            return Ok(false);
        }
        let mut next = Vec::with_capacity(entries.len() - below + 1);
        next.push(EpochEntry {
            epoch: entries[below - 1].epoch,
            start_offset: offset,
        });
        next.extend_from_slice(&entries[below..]);
        self.persist(&next, disk, self.on_disk.load(Ordering::Acquire))?;
        *entries = next;
        Ok(true)
    }

    /// Replaces the entries by `entries` (well formed), already written to the file by the
    /// caller (a replica's log restarted empty from a snapshot). The highest epoch recorded
    /// since open never goes down.
    pub(crate) fn reset(&self, entries: Vec<EpochEntry>) {
        debug_assert!(well_formed(&entries));
        let mut current = lock(&self.entries);
        if let Some(last) = entries.last() {
            self.highest.fetch_max(last.epoch, Ordering::AcqRel);
        }
        *current = entries;
        self.on_disk.store(true, Ordering::Release);
    }

    /// The latest epoch, if the log holds any batch written with one.
    pub(crate) fn latest_epoch(&self) -> Option<i32> {
        lock(&self.entries).last().map(|e| e.epoch)
    }

    /// The largest epoch a stored batch may carry: the highest ever recorded since open
    /// ([`UNDEFINED_EPOCH`] when none).
    pub(crate) fn max_epoch(&self) -> i32 {
        self.highest.load(Ordering::Acquire)
    }

    /// The epoch of the entry starting at or below `offset`: the epoch that wrote it.
    pub(crate) fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        let entries = lock(&self.entries);
        let after = entries.partition_point(|e| e.start_offset <= offset);
        after.checked_sub(1).map(|i| entries[i].epoch)
    }

    /// A copy of the entries, oldest first.
    pub(crate) fn entries(&self) -> Vec<EpochEntry> {
        lock(&self.entries).clone()
    }

    /// OffsetForLeaderEpoch: `(epoch, end offset)` for `requested`, with `log_end` the log
    /// end offset. Kafka's `LeaderEpochFileCache.endOffsetFor`, case for case:
    /// - requested is [`UNDEFINED_EPOCH`], or above every known epoch (or none is known):
    ///   `(UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)`;
    /// - requested is the latest epoch: `(requested, log_end)`;
    /// - requested is below the first known epoch: `(requested, start of the first epoch)`
    ///   (the older epochs' records are gone; the follower replicates from there);
    /// - otherwise: the largest known epoch at or below requested, and the start offset of
    ///   the first epoch above requested (where that epoch's records end).
    pub(crate) fn end_offset_for(&self, requested: i32, log_end: i64) -> (i32, i64) {
        let entries = lock(&self.entries);
        end_offset_for(&entries, requested, log_end)
    }
}

/// [`EpochHistory::end_offset_for`] over a list of entries (pure, for tests).
pub(crate) fn end_offset_for(entries: &[EpochEntry], requested: i32, log_end: i64) -> (i32, i64) {
    const UNDEFINED: (i32, i64) = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
    if requested == UNDEFINED_EPOCH {
        return UNDEFINED;
    }
    if entries.last().is_some_and(|l| l.epoch == requested) {
        return (requested, log_end);
    }
    let higher = entries.partition_point(|e| e.epoch <= requested);
    let Some(next) = entries.get(higher) else {
        return UNDEFINED;
    };
    match higher.checked_sub(1).map(|i| entries[i]) {
        None => (requested, next.start_offset),
        Some(floor) => (floor.epoch, next.start_offset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::OsDisk;

    fn e(epoch: i32, start_offset: i64) -> EpochEntry {
        EpochEntry {
            epoch,
            start_offset,
        }
    }

    fn history(entries: Vec<EpochEntry>) -> (tempfile::TempDir, EpochHistory) {
        let dir = tempfile::tempdir().expect("temp dir");
        let h = EpochHistory::new(dir.path(), entries, false);
        (dir, h)
    }

    #[test]
    fn end_offset_for_follows_kafka() {
        let entries = [e(2, 10), e(5, 20), e(7, 30)];
        // Latest epoch: the log end.
        assert_eq!(end_offset_for(&entries, 7, 42), (7, 42));
        // A known earlier epoch: where the next one starts.
        assert_eq!(end_offset_for(&entries, 5, 42), (5, 30));
        assert_eq!(end_offset_for(&entries, 2, 42), (2, 20));
        // An unknown epoch between two known ones: the floor epoch, the next one's start.
        assert_eq!(end_offset_for(&entries, 3, 42), (2, 20));
        assert_eq!(end_offset_for(&entries, 6, 42), (5, 30));
        // Below the first epoch: the requested epoch and the first epoch's start.
        assert_eq!(end_offset_for(&entries, 1, 42), (1, 10));
        assert_eq!(end_offset_for(&entries, 0, 42), (0, 10));
        // Above the latest, undefined, or nothing known: undefined.
        assert_eq!(end_offset_for(&entries, 8, 42), (-1, -1));
        assert_eq!(end_offset_for(&entries, -1, 42), (-1, -1));
        assert_eq!(end_offset_for(&[], 0, 42), (-1, -1));
    }

    #[test]
    fn observe_records_only_growing_epochs_and_refuses_older_ones() {
        let (dir, h) = history(Vec::new());
        h.save(&OsDisk).expect("the file exists from here");
        let disk = OsDisk;
        h.observe(0, 0, &disk).expect("first");
        h.observe(0, 5, &disk).expect("same epoch");
        h.observe(3, 9, &disk).expect("newer");
        assert_eq!(h.entries(), vec![e(0, 0), e(3, 9)]);
        assert!(matches!(
            h.observe(2, 12, &disk),
            Err(EpochError::Stale {
                epoch: 2,
                latest: 3
            })
        ));
        assert!(matches!(
            h.observe(4, 8, &disk),
            Err(EpochError::Invalid { .. })
        ));
        assert!(matches!(
            h.observe(-1, 20, &disk),
            Err(EpochError::Invalid { .. })
        ));
        assert_eq!(h.latest_epoch(), Some(3));
        assert_eq!(h.max_epoch(), 3);
        // Every new entry reached the file.
        assert_eq!(
            read(dir.path()).expect("read"),
            Stored::Valid(vec![e(0, 0), e(3, 9)])
        );
    }

    #[test]
    fn a_failed_write_refuses_only_once_there_is_a_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let gone = dir.path().join("not-created");
        // No file yet: the change stands in memory (a crash would rebuild from the batches),
        // and creating the file is best effort.
        let h = EpochHistory::new(&gone, Vec::new(), false);
        h.observe(0, 0, &OsDisk).expect("no file, nothing refused");
        assert_eq!(h.entries(), vec![e(0, 0)]);
        h.save_if_missing(&OsDisk).expect("best effort");
        assert!(!gone.exists());
        // A file that must follow every change: the change is refused and nothing moves.
        let h = EpochHistory::new(&gone, vec![e(0, 0)], true);
        assert!(matches!(
            h.observe(2, 5, &OsDisk),
            Err(EpochError::Io { .. })
        ));
        assert_eq!(h.entries(), vec![e(0, 0)]);
        assert!(h.truncate_from(0, &OsDisk).is_err());
        assert_eq!(h.entries(), vec![e(0, 0)]);
    }

    #[test]
    fn truncations_edit_the_list_and_the_file() {
        let (dir, h) = history(vec![e(1, 0), e(2, 10), e(4, 20)]);
        let disk = OsDisk;
        assert!(!h.truncate_from(25, &disk).expect("nothing past 25"));
        assert!(h.truncate_from(20, &disk).expect("cut"));
        assert_eq!(h.entries(), vec![e(1, 0), e(2, 10)]);
        // The highest epoch seen stays (reads racing the cut), the latest entry does not.
        assert_eq!((h.latest_epoch(), h.max_epoch()), (Some(2), 4));
        assert!(!h.truncate_before(0, &disk).expect("already starts at 0"));
        assert!(h.truncate_before(12, &disk).expect("start moved"));
        assert_eq!(h.entries(), vec![e(2, 12)]);
        assert_eq!(
            read(dir.path()).expect("read"),
            Stored::Valid(vec![e(2, 12)])
        );
        assert!(h.truncate_from(0, &disk).expect("all"));
        assert_eq!(h.latest_epoch(), None);
    }

    #[test]
    fn truncate_before_keeps_the_epoch_in_force_at_the_new_start() {
        let (_dir, h) = history(vec![e(1, 0), e(2, 10), e(4, 20)]);
        assert!(h.truncate_before(10, &OsDisk).expect("start moved"));
        assert_eq!(h.entries(), vec![e(2, 10), e(4, 20)]);
        assert_eq!(h.epoch_for_offset(9), None);
        assert_eq!(h.epoch_for_offset(10), Some(2));
        assert_eq!(h.epoch_for_offset(19), Some(2));
        assert_eq!(h.epoch_for_offset(20), Some(4));
        assert!(h.truncate_before(25, &OsDisk).expect("start moved"));
        assert_eq!(h.entries(), vec![e(4, 25)]);
    }

    #[test]
    fn damaged_files_decode_to_nothing() {
        let good = encode(&[e(0, 0), e(3, 7)]);
        assert_eq!(decode(&good), Some(vec![e(0, 0), e(3, 7)]));
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            assert_eq!(decode(&bad), None, "flipped byte {i}");
        }
        assert_eq!(decode(&good[..good.len() - 1]), None);
        assert_eq!(decode(&[]), None);
        // A huge count with a matching CRC is refused by the length check, not allocated.
        let mut huge = u32::MAX.to_be_bytes().to_vec();
        huge.extend_from_slice(&crc32fast::hash(&huge).to_be_bytes());
        assert_eq!(decode(&huge), None);
        // Out of order entries with a valid CRC are damage too.
        assert_eq!(decode(&encode(&[e(3, 0), e(1, 7)])), None);
    }

    #[test]
    fn rebuild_takes_the_first_batch_of_each_growing_epoch() {
        let batches = [(0, 0), (0, 3), (-1, 5), (2, 6), (1, 9), (2, 10), (5, 12)];
        assert_eq!(rebuild(batches), vec![e(0, 0), e(2, 6), e(5, 12)]);
    }
}
