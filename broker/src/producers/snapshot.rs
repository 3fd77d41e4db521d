//! Producer-state snapshots: the table as of a log offset, so a restart replays only the tail.
//!
//! File `<partition-dir>/producer-state.snapshot`, written atomically (temporary file, sync,
//! rename, directory sync). Big-endian:
//!
//! ```text
//! magic     4 bytes  "WPS1"
//! offset    i64      the table reflects every batch below this offset
//! count     u32      producers
//! count x { producer_id i64, epoch i16, batches u8,
//!           batches x { first_seq i32, last_seq i32, base_offset i64, last_offset i64 } }
//! crc       u32      CRC-32 of everything before it
//! ```
//!
//! A snapshot is only a shortcut. One that is damaged, or newer than the recovered log (its
//! offset above the log end, after an unclean stop cut the tail), is ignored and the table is
//! rebuilt from the log's batch headers.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use bytes::{Buf, BufMut};

use super::state::{BatchMeta, CACHED_BATCHES, ProducerEntry, ProducerStates};
use crate::storage::Disk;
use crate::storage::files::write_atomically;

/// The snapshot's file name inside a partition directory.
pub const SNAPSHOT_FILE: &str = "producer-state.snapshot";
const MAGIC: &[u8; 4] = b"WPS1";
const ENTRY_HEADER: usize = 8 + 2 + 1;
const BATCH_BYTES: usize = 4 + 4 + 8 + 8;

/// Writes the snapshot of `states` as of `offset` into `dir`.
///
/// # Errors
/// Any I/O error; the previous snapshot is then still in place.
pub fn write(
    dir: &Path,
    offset: i64,
    states: &ProducerStates,
    disk: &dyn Disk,
) -> std::io::Result<()> {
    write_atomically(dir, SNAPSHOT_FILE, &encode(offset, states), disk)
}

/// Reads the snapshot in `dir`: `None` when there is none or it is damaged (logged).
pub fn read(dir: &Path) -> Option<(i64, ProducerStates)> {
    let path = dir.join(SNAPSHOT_FILE);
    let bytes = std::fs::read(&path).ok()?;
    let decoded = decode(&bytes);
    if decoded.is_none() {
        tracing::warn!(path = %path.display(), "producer-state snapshot is damaged; rebuilding from the log");
    }
    decoded
}

/// Encodes a snapshot (see the module docs).
pub fn encode(offset: i64, states: &ProducerStates) -> Vec<u8> {
    let entries = states.entries();
    let mut out =
        Vec::with_capacity(20 + entries.len() * (ENTRY_HEADER + CACHED_BATCHES * BATCH_BYTES));
    out.put_slice(MAGIC);
    out.put_i64(offset);
    out.put_u32(u32::try_from(entries.len()).unwrap_or(u32::MAX));
    // Sorted, so equal tables give equal files.
    let mut ids: Vec<_> = entries.keys().copied().collect();
    ids.sort_unstable();
    for id in ids.iter().take(u32::MAX as usize) {
        let entry = &entries[id];
        out.put_i64(*id);
        out.put_i16(entry.epoch);
        let batches = entry.batches.len().min(CACHED_BATCHES);
        out.put_u8(u8::try_from(batches).unwrap_or(0));
        for b in entry.batches.iter().take(batches) {
            out.put_i32(b.first_seq);
            out.put_i32(b.last_seq);
            out.put_i64(b.base_offset);
            out.put_i64(b.last_offset);
        }
    }
    out.put_u32(crc32fast::hash(&out));
    out
}

/// Decodes a snapshot; `None` when anything is wrong with it.
pub fn decode(bytes: &[u8]) -> Option<(i64, ProducerStates)> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32fast::hash(body) != u32::from_be_bytes(crc.try_into().ok()?) {
        return None;
    }
    let mut buf = body.strip_prefix(MAGIC.as_slice())?;
    if buf.remaining() < 12 {
        return None;
    }
    let offset = buf.get_i64();
    let count = buf.get_u32() as usize;
    // Bounded by the bytes present before anything is allocated.
    if count > buf.remaining() / ENTRY_HEADER {
        return None;
    }
    let mut entries = HashMap::with_capacity(count);
    for _ in 0..count {
        if buf.remaining() < ENTRY_HEADER {
            return None;
        }
        let id = buf.get_i64();
        let epoch = buf.get_i16();
        let n = usize::from(buf.get_u8());
        if n > CACHED_BATCHES || buf.remaining() < n * BATCH_BYTES {
            return None;
        }
        let batches = (0..n)
            .map(|_| BatchMeta {
                first_seq: buf.get_i32(),
                last_seq: buf.get_i32(),
                base_offset: buf.get_i64(),
                last_offset: buf.get_i64(),
            })
            .collect::<VecDeque<_>>();
        entries.insert(id, ProducerEntry { epoch, batches });
    }
    buf.is_empty()
        .then(|| (offset, ProducerStates::from_entries(entries)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producers::state::ProducerBatch;

    fn sample() -> ProducerStates {
        let mut states = ProducerStates::new();
        for (id, i) in [3_i64, 1, 2].into_iter().zip(0_i32..) {
            for j in 0..(i + 4) {
                let b = ProducerBatch {
                    producer_id: id,
                    epoch: 2,
                    first_seq: j * 2,
                    last_seq: j * 2 + 1,
                };
                states.record(&b, i64::from(j) * 10, i64::from(j) * 10 + 1);
            }
        }
        states
    }

    #[test]
    fn round_trips() {
        let states = sample();
        let bytes = encode(42, &states);
        assert_eq!(decode(&bytes), Some((42, states)));
        assert_eq!(
            decode(&encode(0, &ProducerStates::new())),
            Some((0, ProducerStates::new()))
        );
    }

    #[test]
    fn any_damage_is_detected() {
        let bytes = encode(42, &sample());
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), None, "truncated to {cut}");
        }
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x10;
            assert_eq!(decode(&damaged), None, "byte {i} flipped");
        }
    }

    #[test]
    fn files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).is_none());
        write(dir.path(), 7, &sample(), &crate::storage::OsDisk).unwrap();
        assert_eq!(read(dir.path()), Some((7, sample())));
        std::fs::write(dir.path().join(SNAPSHOT_FILE), b"garbage").unwrap();
        assert!(read(dir.path()).is_none());
    }
}
