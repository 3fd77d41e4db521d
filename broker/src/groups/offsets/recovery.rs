//! Opening the store's directory: the newest valid snapshot, the logs after it replayed in
//! order, invalid tails cut, superseded files removed. The rules and their reasons are in the
//! parent module's docs ("Opening").

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use super::codec::{FRAME_HEADER, decode_op, decode_snapshot};
use super::live::Offsets;
use super::{MAX_RECORD_BYTES, OffsetStoreError, io_error};
use crate::storage::Disk;
use crate::storage::files::{generation_file_name, parse_generation_file_name};

/// Read buffer for replaying logs.
const REPLAY_BUFFER_BYTES: usize = 1 << 20;

pub(super) fn log_name(generation: u64) -> String {
    generation_file_name(generation, "log")
}

pub(super) fn snapshot_name(generation: u64) -> String {
    generation_file_name(generation, "snapshot")
}

/// Files by generation.
pub(super) type Generations = BTreeMap<u64, PathBuf>;

/// The generations of the logs and snapshots in `dir`; deletes leftover temporary files.
pub(super) fn list_dir(dir: &Path) -> Result<(Generations, Generations), OffsetStoreError> {
    let mut logs = BTreeMap::new();
    let mut snapshots = BTreeMap::new();
    for entry in fs::read_dir(dir).map_err(io_error("list", dir))? {
        let entry = entry.map_err(io_error("list", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let path = entry.path();
        let generation =
            |ext: &str| parse_generation_file_name(name, ext).and_then(|g| u64::try_from(g).ok());
        if name.ends_with(".tmp") {
            // An unfinished snapshot: the state never depended on it.
            if let Err(err) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %err, "cannot remove temporary file");
            }
        } else if let Some(g) = generation("log") {
            logs.insert(g, path);
        } else if let Some(g) = generation("snapshot") {
            snapshots.insert(g, path);
        }
    }
    Ok((logs, snapshots))
}

/// What replaying one log found.
#[derive(Debug)]
struct Scan {
    /// Bytes of whole, valid records from the start.
    valid_bytes: u64,
    file_bytes: u64,
    /// Why the bytes after `valid_bytes` are invalid, if there are any.
    cut_reason: Option<&'static str>,
}

/// Applies the valid records of the log `file` to `offsets`, stopping at the first invalid
/// one.
fn replay_log(file: &File, path: &Path, offsets: &mut Offsets) -> Result<Scan, OffsetStoreError> {
    let file_bytes = file.metadata().map_err(io_error("stat", path))?.len();
    let mut reader = BufReader::with_capacity(REPLAY_BUFFER_BYTES, file);
    let mut body = Vec::new();
    let mut at = 0_u64;
    let cut_reason = loop {
        let left = file_bytes - at;
        if left == 0 {
            break None;
        }
        if left < FRAME_HEADER as u64 {
            break Some("incomplete record header");
        }
        let mut header = [0_u8; FRAME_HEADER];
        reader
            .read_exact(&mut header)
            .map_err(io_error("read", path))?;
        let (len_bytes, crc) = header.split_at(4);
        let mut len = [0_u8; 4];
        len.copy_from_slice(len_bytes);
        let body_bytes = u32::from_be_bytes(len);
        // Bounded before anything is allocated.
        if body_bytes == 0 || body_bytes as usize > MAX_RECORD_BYTES {
            break Some("impossible record length");
        }
        if u64::from(body_bytes) > left - FRAME_HEADER as u64 {
            break Some("incomplete record");
        }
        body.resize(body_bytes as usize, 0);
        reader
            .read_exact(&mut body)
            .map_err(io_error("read", path))?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&len);
        hasher.update(&body);
        if crc != hasher.finalize().to_be_bytes() {
            break Some("checksum mismatch");
        }
        let op = decode_op(&body).map_err(|reason| OffsetStoreError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("record at byte {at} has a valid checksum but {reason}"),
        })?;
        offsets.apply(op);
        at += FRAME_HEADER as u64 + u64::from(body_bytes);
    };
    Ok(Scan {
        valid_bytes: at,
        file_bytes,
        cut_reason,
    })
}

/// The state [`OffsetStore::open`] recovered.
#[derive(Debug)]
pub(super) struct Recovered {
    pub(super) offsets: Offsets,
    pub(super) generation: u64,
    pub(super) file: File,
    pub(super) position: u64,
    pub(super) log_bytes: u64,
}

#[allow(
    clippy::too_many_lines,
    reason = "one sequence, in the order the crash analysis relies on: the newest valid snapshot, then every later log in turn, cutting the first damaged tail"
)]
pub(super) fn recover(dir: &Path, disk: &dyn Disk) -> Result<Recovered, OffsetStoreError> {
    let (logs, snapshots) = list_dir(dir)?;
    let mut base = None;
    for (&generation, path) in snapshots.iter().rev() {
        let bytes = fs::read(path).map_err(io_error("read snapshot", path))?;
        match decode_snapshot(&bytes, generation) {
            Ok(offsets) => {
                base = Some((generation, offsets));
                break;
            }
            Err(reason) => {
                tracing::warn!(path = %path.display(), reason, "offsets snapshot is damaged; trying an older one");
            }
        }
    }
    let snapshot_generation = base.as_ref().map(|(g, _)| *g);
    let (base_generation, mut offsets) = base.unwrap_or_default();
    let replay: Vec<(u64, &PathBuf)> = logs
        .range(base_generation..)
        .map(|(g, p)| (*g, p))
        .collect();
    for (expected, (generation, path)) in (base_generation..).zip(&replay) {
        if *generation != expected {
            return Err(OffsetStoreError::Corrupt {
                path: (*path).clone(),
                reason: format!(
                    "log {} is missing (its snapshot is missing or damaged)",
                    log_name(expected)
                ),
            });
        }
    }
    if replay.is_empty() && snapshot_generation.is_none() && !snapshots.is_empty() {
        return Err(OffsetStoreError::Corrupt {
            path: dir.to_path_buf(),
            reason: "every snapshot is damaged and there are no logs".to_owned(),
        });
    }

    let mut history_cut = false;
    let mut log_bytes = 0;
    let mut active = None;
    for (generation, path) in replay {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_error("open log", path))?;
        let scan = if history_cut {
            // An earlier log lost its tail: nothing after it was ever acknowledged (a sync
            // covers retired logs first), and keeping it would break the prefix order.
            let file_bytes = file.metadata().map_err(io_error("stat", path))?.len();
            Scan {
                valid_bytes: 0,
                file_bytes,
                cut_reason: (file_bytes > 0).then_some("an earlier log was cut"),
            }
        } else {
            replay_log(&file, path, &mut offsets)?
        };
        if let Some(reason) = scan.cut_reason {
            tracing::warn!(path = %path.display(), at = scan.valid_bytes, cut_bytes = scan.file_bytes - scan.valid_bytes,
                reason, "cutting the invalid tail of the offsets log");
            file.set_len(scan.valid_bytes)
                .map_err(io_error("truncate log", path))?;
            history_cut = true;
        }
        // Whatever was replayed is reported as committed from now on: make it durable.
        if scan.valid_bytes > 0 || scan.cut_reason.is_some() {
            disk.sync_data(&file).map_err(io_error("sync log", path))?;
        }
        log_bytes += scan.valid_bytes;
        active = Some((generation, file, scan.valid_bytes));
    }
    let (generation, file, position) = match active {
        Some(active) => active,
        None => {
            let path = dir.join(log_name(base_generation));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .map_err(io_error("create log", &path))?;
            disk.sync_dir(dir).map_err(io_error("sync", dir))?;
            (base_generation, file, 0)
        }
    };
    if let Some(snapshot) = snapshot_generation {
        // The snapshot's rename may not be durable yet (a crash right after it): make it so
        // before deleting what it replaces.
        disk.sync_dir(dir).map_err(io_error("sync", dir))?;
        remove_older(dir, &logs, &snapshots, snapshot);
    }
    Ok(Recovered {
        offsets,
        generation,
        file,
        position,
        log_bytes,
    })
}

/// Deletes logs and snapshots of generations below `generation`; failures are only logged
/// (the files are ignored and deleted again at the next open).
pub(super) fn remove_older(
    dir: &Path,
    logs: &Generations,
    snapshots: &Generations,
    generation: u64,
) {
    let old = logs
        .range(..generation)
        .chain(snapshots.range(..generation));
    let mut removed = 0;
    for (_, path) in old {
        match fs::remove_file(path) {
            Ok(()) => removed += 1,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "cannot remove a superseded offsets file");
            }
        }
    }
    if removed > 0 {
        tracing::debug!(dir = %dir.display(), removed, generation, "removed superseded offsets files");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::offsets::codec::{finish_record, start_record};

    #[test]
    fn names_have_twenty_digits() {
        assert_eq!(log_name(7), "00000000000000000007.log");
        assert_eq!(snapshot_name(7), "00000000000000000007.snapshot");
    }

    #[test]
    fn a_valid_checksum_over_an_unknown_record_fails_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut record = start_record(42, 1);
        record.push(0);
        fs::write(dir.path().join(log_name(0)), finish_record(record)).unwrap();
        let err = recover(dir.path(), &crate::storage::OsDisk).unwrap_err();
        assert!(matches!(err, OffsetStoreError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn an_empty_directory_gets_generation_zero() {
        let dir = tempfile::tempdir().unwrap();
        let recovered = recover(dir.path(), &crate::storage::OsDisk).unwrap();
        assert_eq!(recovered.generation, 0);
        assert_eq!(recovered.position, 0);
        assert!(dir.path().join(log_name(0)).exists());
    }
}
