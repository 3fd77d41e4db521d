//! Small files written whole: the atomic write, the checksummed integer record, and the
//! 20-digit generation names of numbered files.
//!
//! Owns how a small file is replaced durably ([`write_atomically`]), the 12-byte checksummed
//! `i64` record ([`encode_checksummed_i64`]) that the log's recovery point and the producer-id
//! block are stored as, and the `<20 digits>.<extension>` names of numbered files (a log's
//! segments, the offsets store's logs and snapshots). It does not know what any of these
//! files mean, nor where they live.
//!
//! Invariants:
//! - after a crash, a file written by [`write_atomically`] is either its old content or its
//!   new content, and once the call returns the new content is durable;
//! - a checksummed record decodes only if it is exactly 12 bytes with a matching CRC: any
//!   damage is `None`, never a wrong value;
//! - [`generation_file_name`] and [`parse_generation_file_name`] round-trip, and nothing else
//!   parses (exactly 20 ASCII digits, at most `i64::MAX`).
//!
//! ```text
//! checksummed i64 (12 bytes): value i64 big-endian, then CRC-32 (IEEE, crc32fast) of those
//!                             8 bytes as u32 big-endian
//! ```

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use super::disk::Disk;

/// Bytes of a checksummed `i64` record.
pub(crate) const CHECKSUMMED_I64_BYTES: usize = 12;

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

/// Encodes `value` as a checksummed record: the value (i64, big-endian) then its CRC-32 (u32).
pub(crate) fn encode_checksummed_i64(value: i64) -> [u8; CHECKSUMMED_I64_BYTES] {
    let mut out = [0u8; CHECKSUMMED_I64_BYTES];
    out[..8].copy_from_slice(&value.to_be_bytes());
    let crc = crc32fast::hash(&out[..8]);
    out[8..].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Decodes a checksummed record; `None` when it has the wrong length or its CRC does not match.
pub(crate) fn decode_checksummed_i64(bytes: &[u8]) -> Option<i64> {
    let bytes: &[u8; CHECKSUMMED_I64_BYTES] = bytes.try_into().ok()?;
    let (value, crc) = bytes.split_at(8);
    let crc = u32::from_be_bytes(crc.try_into().ok()?);
    (crc32fast::hash(value) == crc).then(|| i64::from_be_bytes(value.try_into().unwrap_or([0; 8])))
}

/// The name of generation `generation` of a numbered file: 20 digits, zero-padded, then
/// `.extension` (`00000000000000000042.log`). Zero padding makes names sort in number order.
pub(crate) fn generation_file_name(generation: impl Into<i128>, extension: &str) -> String {
    format!("{:020}.{extension}", generation.into())
}

/// The generation named by `name` if it is `<20 digits>.<extension>` (and fits an `i64`).
pub(crate) fn parse_generation_file_name(name: &str, extension: &str) -> Option<i64> {
    let stem = name.strip_suffix(extension)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_names_round_trip() {
        assert_eq!(
            generation_file_name(42i64, "log"),
            "00000000000000000042.log"
        );
        assert_eq!(
            generation_file_name(7u64, "snapshot"),
            "00000000000000000007.snapshot"
        );
        assert_eq!(
            parse_generation_file_name("00000000000000000042.log", "log"),
            Some(42)
        );
        assert_eq!(
            parse_generation_file_name("00000000000000000042.index", "log"),
            None
        );
        assert_eq!(parse_generation_file_name("42.log", "log"), None);
        assert_eq!(
            parse_generation_file_name("0000000000000000004x.log", "log"),
            None
        );
        // 20 digits above i64::MAX: not a generation.
        assert_eq!(
            parse_generation_file_name("99999999999999999999.log", "log"),
            None
        );
    }

    #[test]
    fn checksummed_i64_detects_damage() {
        let enc = encode_checksummed_i64(1234);
        assert_eq!(decode_checksummed_i64(&enc), Some(1234));
        for i in 0..CHECKSUMMED_I64_BYTES {
            let mut bad = enc;
            bad[i] ^= 0x10;
            assert_eq!(decode_checksummed_i64(&bad), None);
        }
        assert_eq!(decode_checksummed_i64(&enc[..11]), None);
    }

    /// The bytes on disk are fixed: data directories written before the move must still open.
    #[test]
    fn checksummed_i64_bytes_are_stable() {
        let stored = [0, 0, 0, 0, 0, 0, 3, 232, 224, 222, 230, 224];
        assert_eq!(encode_checksummed_i64(1000), stored);
        assert_eq!(decode_checksummed_i64(&stored), Some(1000));
    }
}
