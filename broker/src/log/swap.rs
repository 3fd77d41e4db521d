//! Putting cleaned segments in place of the old ones, crash-safely, and finishing or undoing
//! an interrupted swap when a log is opened.
//!
//! Owns the `.cleaned` files and the `cleaner-swap` marker of a partition directory. The steps
//! of one pass (each followed by a [`SwapStep`] hook, where tests inject a crash):
//!
//! 1. [`SwapStep::Written`]: every cleaned segment is written beside its old one as
//!    `<base>.log.cleaned`, `<base>.index.cleaned`, `<base>.timeindex.cleaned`, each synced,
//!    then the directory. Nothing serving has changed: a crash leaves old segments serving
//!    and recovery deletes the `.cleaned` files.
//! 2. [`SwapStep::Committed`]: the marker `cleaner-swap`, listing the cleaned base offsets
//!    (and for each the old segments merged into it), is written atomically (temporary file, sync, rename, directory sync). This is the commit
//!    point: from here recovery finishes the swap instead of undoing it.
//! 3. [`SwapStep::Renamed`] after each file: `<base>.<ext>.cleaned` is renamed over
//!    `<base>.<ext>`, oldest segment first. `rename(2)` replaces the target atomically, so
//!    each name always holds either the old file or the new one, never neither. A crash
//!    between two renames leaves a mix of old and new files, which recovery completes from
//!    the marker (a `.cleaned` file still present is renamed; one already renamed is gone).
//!    When the cleaned segment merges several old ones, the others' files are then
//!    removed ([`SwapStep::Removed`]): the cleaned segment, in place, covers their offsets.
//!    A crash before a removal leaves overlapping segments only until recovery, which
//!    removes them from the marker first.
//! 4. [`SwapStep::DirSynced`]: the directory is synced, making the renames durable.
//! 5. [`SwapStep::Done`]: the marker is removed (and the directory synced). A crash before
//!    that only makes the next open redo renames that are already done (none are left).
//!
//! A cleaned segment has the same base offset and covers the same offsets as the old ones it
//! replaces, so each is a valid replacement on its own; the marker makes a pass all-or-nothing anyway, so
//! a log after a crash reads exactly as before the pass or exactly as after it.
//!
//! Readers holding the old segment keep reading it: its memory maps keep the replaced inode
//! alive until they are dropped (Linux frees it then).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::log::files::SegmentPaths;
use crate::storage::Disk;
use crate::storage::files::write_atomically;

/// Name of the commit marker of a pass.
pub(crate) const SWAP_MARKER: &str = "cleaner-swap";
/// Suffix of a cleaned file not yet in place.
pub(crate) const CLEANED: &str = "cleaned";

/// The points of a swap at which a test hook can stop it (as a crash would).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapStep {
    /// The cleaned files are written and synced.
    Written,
    /// The marker is durable: the pass is committed.
    Committed,
    /// One cleaned file was renamed over its old one.
    Renamed {
        /// Base offset of the segment.
        base_offset: i64,
        /// Which file: 0 the `.log`, 1 the offset index, 2 the time index.
        file: u8,
    },
    /// The files of an old segment merged into the cleaned one before it were removed.
    Removed {
        /// Base offset of the removed segment.
        base_offset: i64,
    },
    /// The directory is synced after the renames.
    DirSynced,
    /// The marker is removed.
    Done,
}

/// Called after each step; an error stops the swap there, as a crash would.
pub type SwapHook = std::sync::Arc<dyn Fn(SwapStep) -> io::Result<()> + Send + Sync>;

/// The three final paths of a segment and their `.cleaned` twins.
pub(crate) fn cleaned_paths(dir: &Path, base: i64) -> [(PathBuf, PathBuf); 3] {
    let p = SegmentPaths::new(dir, base);
    [p.log, p.index, p.time_index].map(|final_path| (with_suffix(&final_path), final_path))
}

fn with_suffix(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(CLEANED);
    PathBuf::from(s)
}

/// One cleaned segment of a swap: its base offset and the other old segments it replaces
/// (merged into it), whose files go once it is in place.
pub(crate) type Group = (i64, Vec<i64>);

/// Steps 2 to 5 for the cleaned segments `groups` (oldest first), whose `.cleaned` files are
/// written and synced (step 1 is the caller's, with its hook call).
pub(crate) fn commit(
    dir: &Path,
    groups: &[Group],
    disk: &dyn Disk,
    hook: &dyn Fn(SwapStep) -> io::Result<()>,
) -> io::Result<()> {
    write_atomically(dir, SWAP_MARKER, &encode_marker(groups), disk)?;
    hook(SwapStep::Committed)?;
    for (base, replaces) in groups {
        for (file, (cleaned, final_path)) in (0u8..).zip(cleaned_paths(dir, *base)) {
            fs::rename(&cleaned, &final_path)?;
            hook(SwapStep::Renamed {
                base_offset: *base,
                file,
            })?;
        }
        for &old in replaces {
            remove_segment(dir, old)?;
            hook(SwapStep::Removed { base_offset: old })?;
        }
    }
    disk.sync_dir(dir)?;
    hook(SwapStep::DirSynced)?;
    fs::remove_file(dir.join(SWAP_MARKER))?;
    disk.sync_dir(dir)?;
    hook(SwapStep::Done)
}

/// Removes the three files of the segment at `base` (those already gone are fine).
fn remove_segment(dir: &Path, base: i64) -> io::Result<()> {
    for (_, path) in cleaned_paths(dir, base) {
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Removes the `.cleaned` files of `bases` (a pass abandoned before its commit).
pub(crate) fn discard(dir: &Path, bases: &[i64]) {
    for &base in bases {
        for (cleaned, _) in cleaned_paths(dir, base) {
            if let Err(e) = fs::remove_file(&cleaned) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %cleaned.display(), error = %e, "cannot remove a cleaned file");
                }
            }
        }
    }
}

/// What opening a log did about an interrupted swap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SwapRecovery {
    /// Cleaned files renamed into place (a committed swap finished).
    pub(crate) finished: usize,
    /// Cleaned files removed (an uncommitted pass undone).
    pub(crate) discarded: usize,
}

/// Finishes a committed swap (the marker exists) and removes every other `.cleaned` file.
/// Runs before the segments are listed; idempotent, so a crash during it is harmless.
pub(crate) fn recover(dir: &Path, disk: &dyn Disk) -> io::Result<SwapRecovery> {
    let mut done = SwapRecovery::default();
    let marker = dir.join(SWAP_MARKER);
    match fs::read(&marker) {
        Ok(bytes) => {
            match decode_marker(&bytes) {
                Some(groups) => {
                    for (base, replaces) in groups {
                        for (cleaned, final_path) in cleaned_paths(dir, base) {
                            match fs::rename(&cleaned, &final_path) {
                                Ok(()) => done.finished += 1,
                                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                                Err(e) => return Err(e),
                            }
                        }
                        // Only once the merged segment is in place (it covers their offsets).
                        for old in replaces {
                            remove_segment(dir, old)?;
                        }
                    }
                }
                // Written atomically, so only rot gets here. Each cleaned segment alone is a
                // valid replacement and renames went oldest first, so undoing what is left
                // keeps a log that reads correctly.
                None => tracing::error!(path = %marker.display(),
                    "cleaner swap marker is damaged; undoing the renames not yet made"),
            }
            disk.sync_dir(dir)?;
            fs::remove_file(&marker)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == CLEANED) {
            fs::remove_file(&path)?;
            done.discarded += 1;
        }
    }
    if done != SwapRecovery::default() {
        disk.sync_dir(dir)?;
        tracing::info!(dir = %dir.display(), finished = done.finished, discarded = done.discarded,
            "completed an interrupted cleaner swap");
    }
    Ok(done)
}

/// `count:u32 | (base:i64 | n:u32 | replaced base:i64 × n) × count | crc32c:u32`,
/// big-endian.
fn encode_marker(groups: &[Group]) -> Vec<u8> {
    let n = |len: usize| u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    let mut out = Vec::new();
    out.extend_from_slice(&n(groups.len()));
    for (base, replaces) in groups {
        out.extend_from_slice(&base.to_be_bytes());
        out.extend_from_slice(&n(replaces.len()));
        for r in replaces {
            out.extend_from_slice(&r.to_be_bytes());
        }
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn decode_marker(bytes: &[u8]) -> Option<Vec<Group>> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32c::crc32c(body).to_be_bytes() != crc {
        return None;
    }
    let mut rest = body;
    let mut take = |len: usize| -> Option<&[u8]> {
        let (head, tail) = rest.split_at_checked(len)?;
        rest = tail;
        Some(head)
    };
    let u32_at = |b: &[u8]| b.try_into().ok().map(u32::from_be_bytes);
    let i64_at = |b: &[u8]| b.try_into().ok().map(i64::from_be_bytes);
    let count = u32_at(take(4)?)?;
    let mut groups = Vec::new();
    for _ in 0..count {
        let base = i64_at(take(8)?)?;
        let n = u32_at(take(4)?)?;
        let replaces = (0..n)
            .map(|_| take(8).and_then(i64_at))
            .collect::<Option<Vec<i64>>>()?;
        groups.push((base, replaces));
    }
    rest.is_empty().then_some(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trips_and_detects_damage() {
        let groups = vec![(0, vec![]), (42, vec![50, 61]), (1 << 40, vec![])];
        let enc = encode_marker(&groups);
        assert_eq!(decode_marker(&enc), Some(groups));
        for i in 0..enc.len() {
            let mut bad = enc.clone();
            bad[i] ^= 1;
            assert_eq!(decode_marker(&bad), None);
        }
        assert_eq!(decode_marker(&enc[..3]), None);
    }
}
