//! How a data group's Raft entries live in the partition's segment log: one entry, one
//! batch, in index order. A data entry is the producer's batch. Everything else is a control
//! batch of one record (which Kafka clients skip, as they skip transaction markers), keyed as
//! Kafka keys control records (version 0, then a type):
//!
//! | type | entry | value |
//! |---|---|---|
//! | 2 (`LEADER_CHANGE`, as KRaft) | a new leader's blank entry | none |
//! | 6 (`VOTERS`, as KRaft) | a membership change | Weir's encoding below |
//! | 1001 | a produce the leader's producer table found to be a retry | original base, last offset |
//! | 1002 | a produce the producer table refused | Kafka error code, message |
//! | 1003 | DeleteRecords: move the log start offset | the new start, `i64` |
//!
//! The Raft term is the batch's partition leader epoch. The Raft index is not stored: a
//! replica knows the index of its log's first batch (`store.rs`) and counts from there.
//!
//! Membership encoding (big-endian): `u32` number of voter sets (2 during a joint change),
//! then per set `u32` count and that many `u64` node ids; then `u32` count of learners and
//! their ids. Never openraft's serde form, so the engine can change without a migration.

use std::collections::BTreeSet;

use bytes::Bytes;
use openraft::{CommittedLeaderId, EntryPayload, Membership};
use weir_protocol::record_batch::{BatchBuilder, BatchHeader, RecordInput, Records};

use super::types::{Batch, Entry, LogId, NodeId, Outcome};

const LEADER_CHANGE: i16 = 2;
const VOTERS: i16 = 6;
const DUPLICATE: i16 = 1001;
const REFUSED: i16 = 1002;
const DELETE_RECORDS: i16 = 1003;

/// A stored batch that cannot be one of a data group's entries.
#[derive(Debug, thiserror::Error)]
#[error("batch at offset {offset} is not a data-group entry: {reason}")]
pub struct BadEntry {
    /// Where it is stored.
    pub offset: i64,
    /// What is wrong.
    pub reason: String,
}

fn control(kind: i16, value: Option<&[u8]>, timestamp: i64) -> Bytes {
    let mut key = [0u8; 4];
    key[2..].copy_from_slice(&kind.to_be_bytes());
    let mut builder = BatchBuilder::new().control();
    builder.push(RecordInput {
        key: Some(&key),
        value,
        timestamp,
        ..RecordInput::default()
    });
    // One small record always builds.
    builder.build().unwrap_or_default()
}

/// The batch that stores a non-data entry (`None` for a data entry, stored as it is).
pub fn control_batch(entry: &Entry, timestamp: i64) -> Option<Bytes> {
    match &entry.payload {
        EntryPayload::Normal(_) => None,
        EntryPayload::Blank => Some(control(LEADER_CHANGE, None, timestamp)),
        EntryPayload::Membership(membership) => Some(control(
            VOTERS,
            Some(&encode_membership(membership)),
            timestamp,
        )),
    }
}

/// The marker stored in place of a produced batch that was a retry or was refused.
pub fn marker(outcome: &Outcome, timestamp: i64) -> Bytes {
    match outcome {
        Outcome::Duplicate {
            base_offset,
            last_offset,
        } => {
            let mut value = Vec::with_capacity(16);
            value.extend_from_slice(&base_offset.to_be_bytes());
            value.extend_from_slice(&last_offset.to_be_bytes());
            control(DUPLICATE, Some(&value), timestamp)
        }
        Outcome::Refused { code, message } => {
            let mut value = code.to_be_bytes().to_vec();
            value.extend_from_slice(message.as_bytes());
            control(REFUSED, Some(&value), timestamp)
        }
        Outcome::Control | Outcome::Stored { .. } | Outcome::LogStart { .. } => {
            control(LEADER_CHANGE, None, timestamp)
        }
    }
}

pub(crate) fn encode_membership(membership: &Membership<NodeId, openraft::EmptyNode>) -> Vec<u8> {
    let mut out = Vec::new();
    let joint = membership.get_joint_config();
    put_u32(&mut out, joint.len());
    let mut voters = BTreeSet::new();
    for set in joint {
        put_u32(&mut out, set.len());
        for id in set {
            out.extend_from_slice(&id.to_be_bytes());
            voters.insert(*id);
        }
    }
    let learners: Vec<NodeId> = membership
        .nodes()
        .map(|(id, _)| *id)
        .filter(|id| !voters.contains(id))
        .collect();
    put_u32(&mut out, learners.len());
    for id in learners {
        out.extend_from_slice(&id.to_be_bytes());
    }
    out
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u32(&mut self) -> Option<usize> {
        self.take::<4>()
            .and_then(|b| usize::try_from(u32::from_be_bytes(b)).ok())
    }
    fn u64(&mut self) -> Option<u64> {
        self.take::<8>().map(u64::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take::<8>().map(i64::from_be_bytes)
    }
    fn i16(&mut self) -> Option<i16> {
        self.take::<2>().map(i16::from_be_bytes)
    }
}

pub(crate) fn decode_membership(value: &[u8]) -> Option<Membership<NodeId, openraft::EmptyNode>> {
    let mut r = Reader(value);
    let sets = r.u32()?;
    if sets == 0 || sets > 2 {
        return None;
    }
    let mut joint = Vec::with_capacity(sets);
    for _ in 0..sets {
        let n = r.u32()?;
        if n > 64 {
            return None;
        }
        let mut set = BTreeSet::new();
        for _ in 0..n {
            set.insert(r.u64()?);
        }
        joint.push(set);
    }
    let n = r.u32()?;
    if n > 64 {
        return None;
    }
    let mut learners = BTreeSet::new();
    for _ in 0..n {
        learners.insert(r.u64()?);
    }
    let mut membership = Membership::new(joint, None);
    if !learners.is_empty() {
        let mut nodes: BTreeSet<NodeId> = membership.voter_ids().collect();
        nodes.extend(learners);
        membership = Membership::new(membership.get_joint_config().clone(), nodes);
    }
    Some(membership)
}

/// The control record's type and value of a control batch (`batch` whole, as stored).
fn control_record(batch: &[u8]) -> Option<(i16, Option<Vec<u8>>)> {
    let record = Records::new(batch).ok()?.next()?.ok()?;
    let key = record.key?;
    if key.len() != 4 {
        return None;
    }
    let kind = i16::from_be_bytes([key[2], key[3]]);
    Some((kind, record.value.map(<[u8]>::to_vec)))
}

/// The entry at `index` that the stored batch `bytes` (whole, with header `header`) holds.
///
/// # Errors
/// When the batch is a control batch no data group writes.
pub fn decode(bytes: Bytes, header: &BatchHeader, index: u64) -> Result<Entry, BadEntry> {
    let bad = |reason: &str| BadEntry {
        offset: header.base_offset,
        reason: reason.to_owned(),
    };
    let term =
        u64::try_from(header.partition_leader_epoch).map_err(|e| bad(&format!("epoch: {e}")))?;
    let log_id = LogId::new(CommittedLeaderId::new(term, 0), index);
    let payload = if header.attributes.is_control() {
        match control_record(&bytes) {
            Some((LEADER_CHANGE, _)) => EntryPayload::Blank,
            Some((VOTERS, Some(value))) => EntryPayload::Membership(
                decode_membership(&value).ok_or_else(|| bad("bad membership"))?,
            ),
            // Markers stand for the produced batch, and DeleteRecords is applied as data: data
            // entries to Raft.
            Some((DUPLICATE | REFUSED | DELETE_RECORDS, _)) => {
                EntryPayload::Normal(Batch { bytes, token: 0 })
            }
            _ => return Err(bad("unknown control record")),
        }
    } else {
        EntryPayload::Normal(Batch { bytes, token: 0 })
    };
    Ok(Entry { log_id, payload })
}

/// The entry a leader proposes for DeleteRecords: every replica that applies it moves its
/// log start to `offset` (checked against the high watermark by the leader first).
pub fn delete_records(offset: i64, timestamp: i64) -> Bytes {
    control(DELETE_RECORDS, Some(&offset.to_be_bytes()), timestamp)
}

/// The new log start a stored DeleteRecords entry asks for (`None` for any other batch).
pub fn delete_records_offset(bytes: &[u8], header: &BatchHeader) -> Option<i64> {
    if !header.attributes.is_control() {
        return None;
    }
    match control_record(bytes) {
        Some((DELETE_RECORDS, Some(value))) => Reader(&value).i64(),
        _ => None,
    }
}

/// What a stored data entry (a producer's batch or a marker) answers to its producer.
pub fn outcome(bytes: &[u8], header: &BatchHeader) -> Outcome {
    if !header.attributes.is_control() {
        return Outcome::Stored {
            base_offset: header.base_offset,
            last_offset: header.base_offset + i64::from(header.last_offset_delta),
        };
    }
    match control_record(bytes) {
        Some((DUPLICATE, Some(value))) => {
            let mut r = Reader(&value);
            match (r.i64(), r.i64()) {
                (Some(base_offset), Some(last_offset)) => Outcome::Duplicate {
                    base_offset,
                    last_offset,
                },
                _ => Outcome::Control,
            }
        }
        Some((REFUSED, Some(value))) => {
            let mut r = Reader(&value);
            let code = r.i16().unwrap_or(-1);
            Outcome::Refused {
                code,
                message: String::from_utf8_lossy(r.0).into_owned(),
            }
        }
        _ => Outcome::Control,
    }
}

#[cfg(test)]
mod tests {
    use weir_protocol::record_batch::{set_partition_leader_epoch, validate_batch};

    use super::*;

    /// As the log stores it: with the entry's term as its leader epoch.
    fn stored(bytes: &Bytes, term: i32) -> Bytes {
        let mut stored = bytes.to_vec();
        set_partition_leader_epoch(&mut stored, term);
        Bytes::from(stored)
    }

    fn round_trip(entry: &Entry) -> Entry {
        let bytes = stored(&control_batch(entry, 7).unwrap(), 2);
        let header = validate_batch(&bytes).unwrap();
        assert!(header.attributes.is_control());
        decode(bytes, &header, entry.log_id.index).unwrap()
    }

    #[test]
    fn control_entries_round_trip_through_batches() {
        let blank = Entry {
            log_id: LogId::new(CommittedLeaderId::new(0, 0), 3),
            payload: EntryPayload::Blank,
        };
        assert!(matches!(round_trip(&blank).payload, EntryPayload::Blank));
        let voters = Membership::new(vec![BTreeSet::from([1, 2, 3])], None);
        let joint = Membership::new(
            vec![BTreeSet::from([1, 2, 3]), BTreeSet::from([2, 3, 4])],
            BTreeSet::from([1, 2, 3, 4, 5]),
        );
        for membership in [voters, joint] {
            let entry = Entry {
                log_id: LogId::new(CommittedLeaderId::new(0, 0), 0),
                payload: EntryPayload::Membership(membership.clone()),
            };
            match round_trip(&entry).payload {
                EntryPayload::Membership(back) => assert_eq!(back, membership),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn delete_records_entries_carry_their_offset() {
        let bytes = stored(&delete_records(4242, 1), 3);
        let header = validate_batch(&bytes).unwrap();
        assert_eq!(delete_records_offset(&bytes, &header), Some(4242));
        let entry = decode(bytes, &header, 5).unwrap();
        assert!(matches!(entry.payload, EntryPayload::Normal(_)));
        let other = stored(&marker(&Outcome::Control, 1), 3);
        let header = validate_batch(&other).unwrap();
        assert_eq!(delete_records_offset(&other, &header), None);
    }

    #[test]
    fn markers_answer_what_they_stand_for() {
        for answer in [
            Outcome::Duplicate {
                base_offset: 10,
                last_offset: 14,
            },
            Outcome::Refused {
                code: 45,
                message: "out of order".into(),
            },
        ] {
            let bytes = stored(&marker(&answer, 1), 5);
            let header = validate_batch(&bytes).unwrap();
            assert_eq!(outcome(&bytes, &header), answer);
            let entry = decode(bytes, &header, 9).unwrap();
            assert!(matches!(entry.payload, EntryPayload::Normal(_)));
        }
    }
}
