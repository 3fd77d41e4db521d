//! Restarting a replica's log empty at a later offset: what a follower does when it installs
//! its data group's snapshot because the entries it lacks are gone from the leader's log
//! (`docs/cluster.md`, "Snapshots of a data group").
//!
//! Owns the `log-restart` marker of a partition directory and the steps of a restart. A
//! restart replaces the whole log: every segment goes, an empty segment is created at the
//! new offset, the log start, the leader-epoch history and the caller's own files (the
//! producer-state snapshot, the Raft anchor) are written for the new state.
//!
//! Crash safety: the marker, holding everything the new state needs, is written atomically
//! (temporary file, sync, rename, directory sync) first. That is the commit point:
//! - a crash before it leaves the old log untouched (the marker is absent or its temporary
//!   file is removed at open);
//! - a crash after it makes the next open redo every step from the marker before recovery
//!   reads anything (each step is idempotent: delete what is there, write whole files), then
//!   remove it. So the log opens as the old state or the new one, never a mix.
//!
//! ```text
//! <dir>/log-restart   "WLR1", next offset i64, epoch i32 (-1: none), file count u16,
//!                     per file: name length u16, name, data length u32, data;
//!                     CRC-32 (IEEE) of everything before it u32; all big-endian
//! ```

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{PartitionLog, lock};
use crate::log::epochs::{self, EpochEntry, LEADER_EPOCH_CHECKPOINT};
use crate::log::error::LogError;
use crate::log::files::{self, CLEAN_SHUTDOWN, RECOVERY_POINT};
use crate::log::index::IndexCursor;
use crate::log::segment::{Capacity, Segment};
use crate::log::{LogConfig, Offset, start_offset, swap};
use crate::storage::Disk;
use crate::storage::files::write_atomically;

/// Name of the restart marker in a partition directory.
pub(crate) const LOG_RESTART: &str = "log-restart";
const MAGIC: &[u8; 4] = b"WLR1";
/// Files a restart may carry besides the log's own, and their size: the marker is read whole
/// at open, so it is bounded.
const MAX_FILES: usize = 8;
const MAX_MARKER_BYTES: u64 = 64 << 20;

/// The new state of a restarted log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restart {
    /// Where the empty log starts and ends: the next batch appended gets this offset.
    pub next_offset: Offset,
    /// The leader epoch in force at `next_offset` (the history's only entry), if known.
    pub epoch: Option<i32>,
    /// Files of the partition directory written with the new state (name, whole contents):
    /// a caller's state that must change together with the log.
    pub files: Vec<(String, Vec<u8>)>,
}

impl Restart {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.next_offset.0.to_be_bytes());
        out.extend_from_slice(&self.epoch.unwrap_or(-1).to_be_bytes());
        let count = u16::try_from(self.files.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for (name, data) in self.files.iter().take(usize::from(count)) {
            let name_len = u16::try_from(name.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&name_len.to_be_bytes());
            out.extend_from_slice(&name.as_bytes()[..usize::from(name_len)]);
            let data_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&data_len.to_be_bytes());
            out.extend_from_slice(&data[..data_len as usize]);
        }
        out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
        if crc32fast::hash(body) != u32::from_be_bytes(crc.try_into().ok()?) {
            return None;
        }
        let mut rest = body.strip_prefix(MAGIC.as_slice())?;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, tail) = rest.split_at_checked(n)?;
            rest = tail;
            Some(head)
        };
        let next_offset = i64::from_be_bytes(take(8)?.try_into().ok()?);
        let epoch = i32::from_be_bytes(take(4)?.try_into().ok()?);
        let count = usize::from(u16::from_be_bytes(take(2)?.try_into().ok()?));
        if count > MAX_FILES || next_offset < 0 {
            return None;
        }
        let mut files = Vec::with_capacity(count);
        for _ in 0..count {
            let name_len = usize::from(u16::from_be_bytes(take(2)?.try_into().ok()?));
            let name = std::str::from_utf8(take(name_len)?).ok()?.to_owned();
            let data_len = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
            let data = take(data_len)?.to_vec();
            if !safe_name(&name) {
                return None;
            }
            files.push((name, data));
        }
        rest.is_empty().then_some(Self {
            next_offset: Offset(next_offset),
            epoch: (epoch >= 0).then_some(epoch),
            files,
        })
    }
}

/// A caller's file name: a plain name inside the directory, none of the log's own.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(['/', '\\'])
        && name != "."
        && name != ".."
        && ![
            LOG_RESTART,
            LEADER_EPOCH_CHECKPOINT,
            start_offset::LOG_START_OFFSET,
            RECOVERY_POINT,
            CLEAN_SHUTDOWN,
        ]
        .contains(&name)
        && files::parse_segment_name(name, "log").is_none()
}

/// Whether `name` is a file of the segments (or of an interrupted cleaner pass over them).
fn is_segment_file(name: &str) -> bool {
    ["log", "index", "timeindex"]
        .iter()
        .any(|ext| files::parse_segment_name(name, ext).is_some())
        || name.ends_with(&format!(".{}", swap::CLEANED))
        || name == swap::SWAP_MARKER
}

/// Puts `dir` in the state `restart` describes (every step idempotent), returning the new
/// active segment. The marker stays: the caller removes it once it has nothing left to do.
fn redo(
    dir: &Path,
    restart: &Restart,
    config: &LogConfig,
    disk: &dyn Disk,
) -> Result<Segment, LogError> {
    let next = restart.next_offset.0;
    for entry in std::fs::read_dir(dir).map_err(LogError::io("list log directory", dir))? {
        let entry = entry.map_err(LogError::io("list log directory", dir))?;
        let name = entry.file_name();
        if name.to_str().is_some_and(is_segment_file) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(LogError::io("delete segment", &path))?;
        }
    }
    match std::fs::remove_file(dir.join(CLEAN_SHUTDOWN)) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => {
            return Err(LogError::io("remove clean-shutdown marker", dir)(err));
        }
        _ => {}
    }
    let segment = Segment::create(dir, next, Capacity::new(config), disk)
        .map_err(LogError::io("create segment", dir))?;
    write_atomically(
        dir,
        RECOVERY_POINT,
        &files::encode_recovery_point(next),
        disk,
    )
    .map_err(LogError::io("write recovery point", dir))?;
    start_offset::write(dir, next, disk).map_err(LogError::io("write log start offset", dir))?;
    let history: Vec<EpochEntry> = restart
        .epoch
        .map(|epoch| EpochEntry {
            epoch,
            start_offset: next,
        })
        .into_iter()
        .collect();
    write_atomically(
        dir,
        LEADER_EPOCH_CHECKPOINT,
        &epochs::encode(&history),
        disk,
    )
    .map_err(LogError::io("write leader-epoch history", dir))?;
    for (name, data) in &restart.files {
        write_atomically(dir, name, data, disk).map_err(LogError::io("write", dir.join(name)))?;
    }
    disk.sync_dir(dir)
        .map_err(LogError::io("sync log directory", dir))?;
    Ok(segment)
}

fn remove_marker(dir: &Path, disk: &dyn Disk) -> Result<(), LogError> {
    let path = dir.join(LOG_RESTART);
    match std::fs::remove_file(&path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => {
            return Err(LogError::io("remove restart marker", &path)(err));
        }
        _ => {}
    }
    disk.sync_dir(dir)
        .map_err(LogError::io("sync log directory", dir))
}

/// At open, before recovery: finishes a restart a crash interrupted after its commit point.
/// A damaged marker refuses the open (it was written atomically, so damage is the disk's,
/// and neither the old state nor the new one can be told apart safely).
pub(super) fn finish_interrupted(
    dir: &Path,
    config: &LogConfig,
    disk: &dyn Disk,
) -> Result<(), LogError> {
    let path = dir.join(LOG_RESTART);
    let len = match std::fs::metadata(&path) {
        Ok(meta) => meta.len(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(LogError::io("read restart marker", &path)(err)),
    };
    let damaged = |why: &str| {
        LogError::io("read restart marker", &path)(io::Error::new(
            io::ErrorKind::InvalidData,
            why.to_owned(),
        ))
    };
    if len > MAX_MARKER_BYTES {
        return Err(damaged("larger than any restart writes"));
    }
    let bytes = std::fs::read(&path).map_err(LogError::io("read restart marker", &path))?;
    let restart = Restart::decode(&bytes).ok_or_else(|| damaged("damaged"))?;
    tracing::info!(dir = %dir.display(), next_offset = restart.next_offset.0,
        "finishing a replica log restart that a crash interrupted");
    drop(redo(dir, &restart, config, disk)?);
    remove_marker(dir, disk)
}

impl PartitionLog {
    /// Replaces the whole log by an empty one at `restart.next_offset` (a replica installing
    /// a snapshot its leader sent: the entries it lacked are gone from the leader's log),
    /// crash-safely (see the [module docs](self)). The high watermark, the log start and the
    /// durable watermark all become the new offset.
    ///
    /// # Errors
    /// A refused write before the commit point leaves the old log; after it, the log fails
    /// (fail-stop) and the next open finishes the restart.
    pub fn restart_at(&self, restart: &Restart) -> Result<(), LogError> {
        if restart.files.len() > MAX_FILES || !restart.files.iter().all(|(n, _)| safe_name(n)) {
            return Err(LogError::io("restart", &self.dir)(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a restart carries at most 8 files, each a plain name not the log's own",
            )));
        }
        let _one_move = lock(&self.start_lock);
        let _no_sync = lock(&self.sync_lock);
        let mut w = lock(&self.writer);
        self.check_writable(&w)?;
        write_atomically(
            &self.dir,
            LOG_RESTART,
            &restart.encode(),
            self.disk.as_ref(),
        )
        .map_err(LogError::io("write restart marker", &self.dir))?;
        let config = self.config();
        let segment = redo(&self.dir, restart, &config, self.disk.as_ref())
            .map_err(|err| self.fail(io::Error::other(err)))?;
        let next = restart.next_offset.0;
        let active = Arc::new(segment);
        let list = vec![Arc::clone(&active)];
        self.replace_segments(|segments| *segments = list);
        w.active = active;
        w.cursor = IndexCursor::new(config.index_interval_bytes);
        w.first_append_ms = None;
        w.unsynced_sealed.clear();
        w.rolled_since_sync = false;
        self.end_offset.store(next, Ordering::Release);
        self.start_offset.store(next, Ordering::Release);
        if self.durable.durable() < next {
            self.durable.advance(next);
        } else {
            self.durable.rewind(next);
        }
        self.replicated_hw.store(next, Ordering::Release);
        self.epochs.reset(
            restart
                .epoch
                .map(|epoch| EpochEntry {
                    epoch,
                    start_offset: next,
                })
                .into_iter()
                .collect(),
        );
        remove_marker(&self.dir, self.disk.as_ref()).map_err(|err| {
            // The new state is complete; a marker left behind only makes the next open redo it.
            tracing::warn!(dir = %self.dir.display(), error = %err, "could not remove the restart marker");
            err
        })?;
        tracing::info!(dir = %self.dir.display(), next_offset = next, "replica log restarted empty from a snapshot");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trips_and_detects_damage() {
        let restart = Restart {
            next_offset: Offset(1234),
            epoch: Some(7),
            files: vec![("raft-anchor".into(), vec![1, 2, 3])],
        };
        let bytes = restart.encode();
        assert_eq!(Restart::decode(&bytes), Some(restart));
        for cut in 0..bytes.len() {
            assert_eq!(Restart::decode(&bytes[..cut]), None);
        }
        let mut flipped = bytes.clone();
        flipped[6] ^= 1;
        assert_eq!(Restart::decode(&flipped), None);
    }

    #[test]
    fn only_plain_foreign_names_are_carried() {
        assert!(safe_name("raft-anchor"));
        assert!(safe_name("producer-state.snapshot"));
        for bad in [
            "",
            "..",
            "a/b",
            LOG_RESTART,
            "log-start-offset",
            "00000000000000000000.log",
        ] {
            assert!(!safe_name(bad), "{bad}");
        }
    }
}
