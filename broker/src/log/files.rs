//! Names and small metadata files of a partition directory.
//!
//! ```text
//! <dir>/00000000000000000000.log        segment data (raw v2 batches)
//! <dir>/00000000000000000000.index      sparse offset index
//! <dir>/00000000000000000000.timeindex  sparse time index
//! <dir>/recovery-point                  first offset that recovery must scan from
//! <dir>/clean-shutdown                  present only while the log is closed cleanly
//! ```
//!
//! The generic pieces live in [`crate::storage::files`]: segment names are its 20-digit
//! generation names (the generation being the base offset), and the recovery point is its
//! checksummed `i64` record, written with its atomic write.

use std::path::{Path, PathBuf};

use crate::storage::files::{
    decode_checksummed_i64, encode_checksummed_i64, generation_file_name,
    parse_generation_file_name,
};

/// Name of the clean-shutdown marker.
pub(crate) const CLEAN_SHUTDOWN: &str = "clean-shutdown";
/// Name of the recovery checkpoint.
pub(crate) const RECOVERY_POINT: &str = "recovery-point";
/// Present (empty) in the directory of a replica of a replicated partition: its batches carry
/// Raft terms as leader epochs and its reads stop at the commit point (`log/partition/replica.rs`).
pub(crate) const REPLICATED: &str = "replicated";

/// The three files of one segment.
#[derive(Debug, Clone)]
pub(crate) struct SegmentPaths {
    pub(crate) log: PathBuf,
    pub(crate) index: PathBuf,
    pub(crate) time_index: PathBuf,
}

impl SegmentPaths {
    pub(crate) fn new(dir: &Path, base_offset: i64) -> Self {
        Self {
            log: dir.join(generation_file_name(base_offset, "log")),
            index: dir.join(generation_file_name(base_offset, "index")),
            time_index: dir.join(generation_file_name(base_offset, "timeindex")),
        }
    }
}

/// The base offset named by a segment file name such as `00000000000000000042.log`.
pub(crate) fn parse_segment_name(name: &str, extension: &str) -> Option<i64> {
    parse_generation_file_name(name, extension)
}

/// Encodes the recovery point: offset (i64, big-endian) then its CRC-32 (u32).
pub(crate) fn encode_recovery_point(offset: i64) -> [u8; 12] {
    encode_checksummed_i64(offset)
}

/// Decodes the recovery point; `None` when the file is damaged (recovery then scans all).
pub(crate) fn decode_recovery_point(bytes: &[u8]) -> Option<i64> {
    decode_checksummed_i64(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let p = SegmentPaths::new(Path::new("/d"), 42);
        assert_eq!(p.log, Path::new("/d/00000000000000000042.log"));
        assert_eq!(p.index, Path::new("/d/00000000000000000042.index"));
        assert_eq!(p.time_index, Path::new("/d/00000000000000000042.timeindex"));
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
