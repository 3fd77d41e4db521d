//! Bytes of log records and snapshots (layout in the parent module's docs). Pure functions:
//! encoders take names already checked against the limits; decoders bound every length and
//! count by the bytes present and return an error, never panic, on any input.

use std::collections::BTreeMap;

use super::live::{Entry, Offsets, Op, entry_bytes};
use super::{
    CommittedOffset, MAX_METADATA_BYTES, MAX_NAME_BYTES, MAX_RECORD_BYTES, OffsetStoreError,
};

const SNAPSHOT_MAGIC: &[u8; 4] = b"WCO1";
/// Length and CRC in front of every record.
pub(super) const FRAME_HEADER: usize = 8;
/// Bytes of an entry besides its topic and metadata strings.
pub(super) const ENTRY_FIXED: u64 = 2 + 4 + 8 + 4 + 8 + 2;
/// Bytes of a group in a snapshot besides its name and entries.
pub(super) const GROUP_FIXED: u64 = 2 + 4;
const KIND_COMMIT: u8 = 1;
pub(super) const KIND_DELETE_GROUP: u8 = 2;
pub(super) const KIND_DELETE_TOPIC: u8 = 3;
const KIND_DELETE_OFFSETS: u8 = 4;
/// Bytes of a (topic, partition) pair of a delete-offsets record besides the topic name.
const PARTITION_FIXED: u64 = 2 + 4;

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Names are checked against MAX_NAME_BYTES before they get here.
    out.extend_from_slice(&u16::try_from(s.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_entry(out: &mut Vec<u8>, topic: &str, partition: i32, value: &CommittedOffset) {
    put_str(out, topic);
    out.extend_from_slice(&partition.to_be_bytes());
    out.extend_from_slice(&value.offset.to_be_bytes());
    out.extend_from_slice(&value.leader_epoch.to_be_bytes());
    out.extend_from_slice(&value.commit_timestamp_ms.to_be_bytes());
    match &value.metadata {
        // Checked against MAX_METADATA_BYTES before it gets here.
        Some(m) => {
            out.extend_from_slice(&i16::try_from(m.len()).unwrap_or(i16::MAX).to_be_bytes());
            out.extend_from_slice(m.as_bytes());
        }
        None => out.extend_from_slice(&(-1_i16).to_be_bytes()),
    }
}

fn count_u32(n: usize) -> [u8; 4] {
    u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes()
}

/// Starts a framed record: room for length and CRC, then the kind.
pub(super) fn start_record(kind: u8, body_bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER + body_bytes);
    out.extend_from_slice(&[0; FRAME_HEADER]);
    out.push(kind);
    out
}

/// Fills in length and CRC.
pub(super) fn finish_record(mut out: Vec<u8>) -> Vec<u8> {
    let (head, body) = out.split_at_mut(FRAME_HEADER);
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len);
    crc.update(body);
    head[..4].copy_from_slice(&len);
    head[4..].copy_from_slice(&crc.finalize().to_be_bytes());
    out
}

pub(super) fn encode_commit(group: &str, entries: &[Entry]) -> Result<Vec<u8>, OffsetStoreError> {
    let body_bytes = 1
        + 2
        + group.len()
        + 4
        + entries
            .iter()
            .map(|(t, _, v)| usize::try_from(entry_bytes(t.len(), v)).unwrap_or(usize::MAX))
            .fold(0_usize, usize::saturating_add);
    if body_bytes > MAX_RECORD_BYTES {
        return Err(OffsetStoreError::CommitTooLarge {
            size: body_bytes,
            max: MAX_RECORD_BYTES,
        });
    }
    let mut out = start_record(KIND_COMMIT, body_bytes);
    put_str(&mut out, group);
    out.extend_from_slice(&count_u32(entries.len()));
    for (topic, partition, value) in entries {
        put_entry(&mut out, topic, *partition, value);
    }
    Ok(finish_record(out))
}

pub(super) fn encode_delete(kind: u8, name: &str) -> Vec<u8> {
    let mut out = start_record(kind, 3 + name.len());
    put_str(&mut out, name);
    finish_record(out)
}

/// A delete-offsets record: the group, then its (topic, partition) pairs. Names are checked
/// against the limits before they get here; the caller bounds the record's size.
pub(super) fn encode_delete_offsets(group: &str, partitions: &[(String, i32)]) -> Vec<u8> {
    let body_bytes = 1
        + 2
        + group.len()
        + 4
        + partitions
            .iter()
            .map(|(t, _)| 2 + t.len() + 4)
            .sum::<usize>();
    let mut out = start_record(KIND_DELETE_OFFSETS, body_bytes);
    put_str(&mut out, group);
    out.extend_from_slice(&count_u32(partitions.len()));
    for (topic, partition) in partitions {
        put_str(&mut out, topic);
        out.extend_from_slice(&partition.to_be_bytes());
    }
    finish_record(out)
}

pub(super) fn encode_snapshot(generation: u64, offsets: &Offsets) -> Vec<u8> {
    let capacity = usize::try_from(offsets.live_bytes).unwrap_or(0) + 20;
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&generation.to_be_bytes());
    out.extend_from_slice(&count_u32(offsets.groups.len()));
    // Sorted, so equal states give equal files.
    let mut groups: Vec<_> = offsets.groups.iter().collect();
    groups.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (group, topics) in groups {
        put_str(&mut out, group);
        out.extend_from_slice(&count_u32(topics.values().map(BTreeMap::len).sum()));
        for (topic, partitions) in topics {
            for (partition, value) in partitions {
                put_entry(&mut out, topic, *partition, value);
            }
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

// Decoding: every function returns an error, never panics, on any input.

const TRUNCATED: &str = "truncated";

/// A cursor over bytes whose checksum was already verified.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let (head, rest) = self.0.split_at_checked(n).ok_or(TRUNCATED)?;
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(TRUNCATED)?;
        self.0 = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(u8::from_be_bytes(self.array()?))
    }
    fn u16(&mut self) -> Result<u16, &'static str> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn i16(&mut self) -> Result<i16, &'static str> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, &'static str> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32, &'static str> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, &'static str> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, &'static str> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn utf8(&mut self, len: usize) -> Result<String, &'static str> {
        let bytes = self.take(len)?;
        Ok(std::str::from_utf8(bytes)
            .ok()
            .ok_or("invalid UTF-8")?
            .to_owned())
    }

    fn name(&mut self) -> Result<String, &'static str> {
        let len = usize::from(self.u16()?);
        if len > MAX_NAME_BYTES {
            return Err("name too long");
        }
        self.utf8(len)
    }

    /// A count of items of at least `min_bytes` each, bounded by the bytes left.
    fn count(&mut self, min_bytes: u64) -> Result<usize, &'static str> {
        let count = u64::from(self.u32()?);
        if count > self.0.len() as u64 / min_bytes {
            return Err("count larger than the bytes left");
        }
        usize::try_from(count).ok().ok_or("count too large")
    }

    fn entry(&mut self) -> Result<Entry, &'static str> {
        let topic = self.name()?;
        let partition = self.i32()?;
        let offset = self.i64()?;
        let leader_epoch = self.i32()?;
        let commit_timestamp_ms = self.i64()?;
        let metadata = match self.i16()? {
            -1 => None,
            len => {
                let len = usize::try_from(len)
                    .ok()
                    .filter(|l| *l <= MAX_METADATA_BYTES)
                    .ok_or("bad metadata length")?;
                Some(self.utf8(len)?)
            }
        };
        let value = CommittedOffset {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp_ms,
        };
        Ok((topic, partition, value))
    }

    fn entries(&mut self) -> Result<Vec<Entry>, &'static str> {
        let count = self.count(ENTRY_FIXED)?;
        (0..count).map(|_| self.entry()).collect()
    }
}

/// Decodes a record body (after length and CRC).
pub(super) fn decode_op(body: &[u8]) -> Result<Op, &'static str> {
    let mut r = Reader(body);
    let op = match r.u8()? {
        KIND_COMMIT => Op::Commit {
            group: r.name()?,
            entries: r.entries()?,
        },
        KIND_DELETE_GROUP => Op::DeleteGroup(r.name()?),
        KIND_DELETE_TOPIC => Op::DeleteTopic(r.name()?),
        KIND_DELETE_OFFSETS => {
            let group = r.name()?;
            let count = r.count(PARTITION_FIXED)?;
            let partitions = (0..count)
                .map(|_| Ok((r.name()?, r.i32()?)))
                .collect::<Result<_, &'static str>>()?;
            Op::DeleteOffsets { group, partitions }
        }
        _ => return Err("unknown record kind"),
    };
    if r.0.is_empty() {
        Ok(op)
    } else {
        Err("bytes after the record")
    }
}

/// Decodes a snapshot file of `generation`.
pub(super) fn decode_snapshot(bytes: &[u8], generation: u64) -> Result<Offsets, &'static str> {
    let (body, crc) = bytes
        .split_last_chunk::<4>()
        .ok_or("shorter than a checksum")?;
    if crc32fast::hash(body) != u32::from_be_bytes(*crc) {
        return Err("checksum mismatch");
    }
    let mut r = Reader(body);
    if &r.array::<4>()? != SNAPSHOT_MAGIC {
        return Err("bad magic");
    }
    if r.u64()? != generation {
        return Err("generation differs from the file name");
    }
    let groups = r.count(GROUP_FIXED)?;
    let mut offsets = Offsets::default();
    for _ in 0..groups {
        let group = r.name()?;
        if offsets.groups.contains_key(&group) {
            return Err("group listed twice");
        }
        let entries = r.entries()?;
        if entries.is_empty() {
            return Err("group without offsets");
        }
        offsets.commit(&group, entries);
    }
    if r.0.is_empty() {
        Ok(offsets)
    } else {
        Err("bytes after the last group")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::offsets::live::tests::{sample, value};

    fn body(record: &[u8]) -> &[u8] {
        &record[FRAME_HEADER..]
    }

    #[test]
    fn records_round_trip() {
        let entries = vec![
            ("t".to_owned(), 0, value(5, None)),
            ("u".to_owned(), -1, value(-1, Some("x"))),
        ];
        let record = encode_commit("g", &entries).unwrap();
        assert_eq!(
            decode_op(body(&record)),
            Ok(Op::Commit {
                group: "g".to_owned(),
                entries
            })
        );
        let record = encode_delete(KIND_DELETE_GROUP, "g");
        assert_eq!(
            decode_op(body(&record)),
            Ok(Op::DeleteGroup("g".to_owned()))
        );
        let record = encode_delete(KIND_DELETE_TOPIC, "");
        assert_eq!(decode_op(body(&record)), Ok(Op::DeleteTopic(String::new())));
    }

    #[test]
    fn the_frame_holds_length_and_checksum() {
        let record = encode_delete(KIND_DELETE_GROUP, "g");
        assert_eq!(record[..4], 4_u32.to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&record[..4]);
        crc.update(&record[8..]);
        assert_eq!(record[4..8], crc.finalize().to_be_bytes());
    }

    #[test]
    fn damaged_record_bodies_are_errors() {
        let record = encode_commit("group", &[("t".to_owned(), 0, value(5, Some("md")))]).unwrap();
        for cut in FRAME_HEADER..record.len() {
            assert!(
                decode_op(&record[FRAME_HEADER..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut long = body(&record).to_vec();
        long.push(0);
        assert!(decode_op(&long).is_err());
        assert!(decode_op(&[9]).is_err());
        assert!(decode_op(&[]).is_err());
        // Names must be UTF-8.
        assert!(decode_op(&[KIND_DELETE_TOPIC, 0, 1, 0xff]).is_err());
        // A count that claims more entries than bytes left is refused before allocating.
        let mut huge = vec![KIND_COMMIT, 0, 1, b'g'];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode_op(&huge), Err("count larger than the bytes left"));
    }

    #[test]
    fn snapshots_round_trip_and_detect_any_damage() {
        let offsets = sample();
        let bytes = encode_snapshot(7, &offsets);
        // The live size is exactly the snapshot's body.
        assert_eq!(bytes.len() as u64, offsets.live_bytes + 4 + 8 + 4 + 4);
        assert_eq!(decode_snapshot(&bytes, 7), Ok(offsets.clone()));
        assert!(decode_snapshot(&bytes, 8).is_err());
        for cut in 0..bytes.len() {
            assert!(decode_snapshot(&bytes[..cut], 7).is_err(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x10;
            assert!(decode_snapshot(&damaged, 7).is_err(), "byte {i} flipped");
        }
        let empty = encode_snapshot(0, &Offsets::default());
        assert_eq!(decode_snapshot(&empty, 0), Ok(Offsets::default()));
    }
}
