//! Checksummed records in the metadata quorum's files: `[len u32 BE][crc32c u32 BE][body]`,
//! the body a postcard encoding. Reading stops at a torn tail (a record cut short or whose
//! checksum fails *at the end* of the file, which a crash during an append leaves behind);
//! a bad record followed by good ones is damage, reported rather than skipped.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest record accepted when reading (a snapshot of a very large cluster still fits).
pub(crate) const MAX_RECORD: usize = 256 << 20;

/// Why a file's records could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordError {
    /// A record in the middle of the file is bad: the file is damaged.
    #[error("damaged record at byte {at}: {why}")]
    Damaged {
        /// Where the bad record starts.
        at: usize,
        /// What is wrong.
        why: String,
    },
    /// A record could not be encoded.
    #[error("cannot encode a record: {0}")]
    Encode(#[source] postcard::Error),
}

/// One record's bytes.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, RecordError> {
    let body = postcard::to_stdvec(value).map_err(RecordError::Encode)?;
    let len = u32::try_from(body.len()).map_err(|_too_big| RecordError::Damaged {
        at: 0,
        why: format!("record of {} bytes is too large", body.len()),
    })?;
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Every record of `bytes`, and the length of the good prefix (where a torn tail starts).
pub(crate) fn decode_all<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<(Vec<T>, usize), RecordError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match decode_one(&bytes[at..]) {
            Ok((value, used)) => {
                out.push(value);
                at += used;
            }
            Err(why) => {
                // Torn only if nothing good follows: a crash cuts the last append, it does not
                // damage what was synced before it.
                if later_record_is_good::<T>(bytes, at) {
                    return Err(RecordError::Damaged { at, why });
                }
                return Ok((out, at));
            }
        }
    }
    Ok((out, at))
}

fn decode_one<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), String> {
    let header: [u8; 8] = bytes
        .get(..8)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| "cut short in its header".to_owned())?;
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_RECORD {
        return Err(format!("length {len} above the limit {MAX_RECORD}"));
    }
    let body = bytes
        .get(8..8 + len)
        .ok_or_else(|| "cut short in its body".to_owned())?;
    if crc32c::crc32c(body) != crc {
        return Err("checksum mismatch".to_owned());
    }
    let value = postcard::from_bytes(body).map_err(|e| format!("undecodable: {e}"))?;
    Ok((value, 8 + len))
}

/// The one record of a file written whole and atomically (the vote, the snapshot), or
/// `None` when the file does not exist. Anything but exactly one whole record is damage.
pub(crate) fn read_single<T: DeserializeOwned>(
    path: &std::path::Path,
) -> std::io::Result<Option<T>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let damaged = |why: String| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is damaged: {why}", path.display()),
        )
    };
    let (mut values, good) = decode_all::<T>(&bytes).map_err(|e| damaged(e.to_string()))?;
    if good != bytes.len() || values.len() != 1 {
        return Err(damaged(format!(
            "{} records, {good} of {} bytes readable",
            values.len(),
            bytes.len()
        )));
    }
    Ok(values.pop())
}

/// Whether a good record starts anywhere after `from` (scanning each byte position).
fn later_record_is_good<T: DeserializeOwned>(bytes: &[u8], from: usize) -> bool {
    (from + 1..bytes.len()).any(|at| decode_one::<T>(&bytes[at..]).is_ok_and(|(_, n)| n > 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_drops_a_torn_tail() {
        let mut file = Vec::new();
        for v in [1_u64, 2, 3] {
            file.extend(encode(&vec![v; 20]).unwrap());
        }
        let whole = file.len();
        let (values, good): (Vec<Vec<u64>>, _) = decode_all(&file).unwrap();
        assert_eq!((values.len(), good), (3, whole));
        let cut = &file[..whole - 3];
        let (values, good): (Vec<Vec<u64>>, _) = decode_all(cut).unwrap();
        assert_eq!(values.len(), 2);
        assert!(good < cut.len());
    }

    #[test]
    fn damage_before_good_records_is_reported() {
        let mut file = Vec::new();
        for v in [1_u64, 2, 3] {
            file.extend(encode(&vec![v; 20]).unwrap());
        }
        file[12] ^= 0xff;
        assert!(matches!(
            decode_all::<Vec<u64>>(&file),
            Err(RecordError::Damaged { at: 0, .. })
        ));
    }
}
