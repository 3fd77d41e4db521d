//! Names and small metadata files of a partition directory.
//!
//! ```text
//! <dir>/00000000000000000000.log        segment data (raw v2 batches)
//! <dir>/00000000000000000000.index      sparse offset index
//! <dir>/00000000000000000000.timeindex  sparse time index
//! <dir>/recovery-point                  first offset that recovery must scan from
//! <dir>/clean-shutdown                  present only while the log is closed cleanly
//! ```

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::disk::Disk;

/// Name of the clean-shutdown marker.
pub(crate) const CLEAN_SHUTDOWN: &str = "clean-shutdown";
/// Name of the recovery checkpoint.
pub(crate) const RECOVERY_POINT: &str = "recovery-point";

/// The three files of one segment.
#[derive(Debug, Clone)]
pub(crate) struct SegmentPaths {
    pub(crate) log: PathBuf,
    pub(crate) index: PathBuf,
    pub(crate) time_index: PathBuf,
}

impl SegmentPaths {
    pub(crate) fn new(dir: &Path, base_offset: i64) -> Self {
        let stem = format!("{base_offset:020}");
        Self {
            log: dir.join(format!("{stem}.log")),
            index: dir.join(format!("{stem}.index")),
            time_index: dir.join(format!("{stem}.timeindex")),
        }
    }
}

/// The base offset named by a segment file name such as `00000000000000000042.log`.
pub(crate) fn parse_segment_name(name: &str, extension: &str) -> Option<i64> {
    let stem = name.strip_suffix(extension)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Writes `bytes` to `dir/name` atomically and durably: temporary file, sync, rename, sync of
/// the directory. A crash leaves either the old file or the new one, never a mix.
pub(crate) fn write_atomically(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    disk: &dyn Disk,
) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        disk.sync_data(&file)
    })();
    if let Err(err) = written {
        // The old file is untouched; remove the partial new one so that a full disk gets its
        // space back (a leftover would also be deleted at the next open).
        if let Err(remove) = std::fs::remove_file(&tmp) {
            if remove.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %tmp.display(), error = %remove, "cannot remove a temporary file");
            }
        }
        return Err(err);
    }
    std::fs::rename(&tmp, dir.join(name))?;
    disk.sync_dir(dir)
}

/// Encodes the recovery point: offset (i64, big-endian) then its CRC-32 (u32).
pub(crate) fn encode_recovery_point(offset: i64) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..8].copy_from_slice(&offset.to_be_bytes());
    let crc = crc32fast::hash(&out[..8]);
    out[8..].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Decodes the recovery point; `None` when the file is damaged (recovery then scans all).
pub(crate) fn decode_recovery_point(bytes: &[u8]) -> Option<i64> {
    let bytes: &[u8; 12] = bytes.try_into().ok()?;
    let (offset, crc) = bytes.split_at(8);
    let crc = u32::from_be_bytes(crc.try_into().ok()?);
    (crc32fast::hash(offset) == crc)
        .then(|| i64::from_be_bytes(offset.try_into().unwrap_or([0; 8])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let p = SegmentPaths::new(Path::new("/d"), 42);
        assert_eq!(p.log, Path::new("/d/00000000000000000042.log"));
        assert_eq!(
            parse_segment_name("00000000000000000042.log", "log"),
            Some(42)
        );
        assert_eq!(
            parse_segment_name("00000000000000000042.index", "log"),
            None
        );
        assert_eq!(parse_segment_name("42.log", "log"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.log", "log"), None);
    }

    #[test]
    fn recovery_point_detects_damage() {
        let enc = encode_recovery_point(1234);
        assert_eq!(decode_recovery_point(&enc), Some(1234));
        for i in 0..12 {
            let mut bad = enc;
            bad[i] ^= 0x10;
            assert_eq!(decode_recovery_point(&bad), None);
        }
        assert_eq!(decode_recovery_point(&enc[..11]), None);
    }
}
