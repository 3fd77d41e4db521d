//! A data group's snapshot: what a replica needs to go on from a point of the Raft log
//! without the entries before it. The records themselves are never in it: the log is the
//! partition's, and a snapshot stands only for the entries purged from it (retention or
//! DeleteRecords moved the log start past them), as Redpanda's do.
//!
//! Its log id is the last purged entry (or the purge point asked for, `retain.rs`), its
//! membership the one in force there, and its data (Weir's own encoding, below):
//! - the offset the log goes on from (the batch after the snapshot's entry),
//! - the log start offset (at or above it: DeleteRecords may cut a batch),
//! - the leader epoch in force there (the term of that batch),
//! - the idempotent-producer table as of that offset (the batches below it), so a follower
//!   that restarts from the snapshot still recognises retries of them.
//!
//! Building one is cheap (no records are copied), so openraft is asked for one only when a
//! purge is wanted, and `get_current_snapshot` builds it again on demand.
//!
//! Installing one on a follower whose log lacks the snapshot's entry restarts the log empty
//! at the snapshot's offset ([`crate::log::PartitionLog::restart_at`], crash-safe: the old
//! log or the new one, never a mix), with the producer table and the anchor written as part
//! of the same restart. A follower that holds the entry keeps its log.
//!
//! ```text
//! "WDS1", next offset i64, log start i64, epoch i32 (-1: none),
//! producer table length u32, producer table (`producers/snapshot.rs`'s encoding),
//! CRC-32 (IEEE) of everything before it u32; all big-endian
//! ```

#![allow(
    clippy::result_large_err,
    reason = "openraft's StorageError is what its storage traits take and return"
)]

use std::collections::HashMap;
use std::io::Cursor;

use openraft::storage::Snapshot;
use openraft::{ErrorSubject, ErrorVerb, SnapshotMeta};

use super::store::{IndexMap, ReplicaStore, anchor_of};
use super::types::{DataConfig, LogId, NodeId, StorageError};
use crate::cluster::store::storage_error as io_error;
use crate::log::{Offset, Restart};
use crate::producers::snapshot as producer_snapshot;
use crate::producers::state::{ProducerEntry, ProducerStates};

const MAGIC: &[u8; 4] = b"WDS1";
/// A snapshot's data is at most this large (the producer table dominates it).
const MAX_SNAPSHOT_BYTES: usize = 64 << 20;

/// The data of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotData {
    /// Offset of the batch after the snapshot's entry: where the log goes on.
    pub(crate) next_offset: i64,
    /// The log start offset (at or above `next_offset`).
    pub(crate) log_start: i64,
    /// The leader epoch in force at `next_offset`.
    pub(crate) epoch: Option<i32>,
    /// The producer table as of `next_offset`.
    pub(crate) producers: ProducerStates,
}

impl SnapshotData {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let table = producer_snapshot::encode(self.next_offset, &self.producers);
        let mut out = Vec::with_capacity(32 + table.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.next_offset.to_be_bytes());
        out.extend_from_slice(&self.log_start.to_be_bytes());
        out.extend_from_slice(&self.epoch.unwrap_or(-1).to_be_bytes());
        out.extend_from_slice(&u32::try_from(table.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&table);
        out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > MAX_SNAPSHOT_BYTES {
            return None;
        }
        let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
        if crc32fast::hash(body) != u32::from_be_bytes(crc.try_into().ok()?) {
            return None;
        }
        let rest = body.strip_prefix(MAGIC.as_slice())?;
        let (next, rest) = rest.split_first_chunk::<8>()?;
        let (start, rest) = rest.split_first_chunk::<8>()?;
        let (epoch, rest) = rest.split_first_chunk::<4>()?;
        let (len, rest) = rest.split_first_chunk::<4>()?;
        let len = u32::from_be_bytes(*len) as usize;
        if rest.len() != len {
            return None;
        }
        let (table_offset, producers) = producer_snapshot::decode(rest)?;
        let next_offset = i64::from_be_bytes(*next);
        let log_start = i64::from_be_bytes(*start);
        let epoch = i32::from_be_bytes(*epoch);
        (table_offset == next_offset && next_offset >= 0 && log_start >= next_offset).then_some(
            Self {
                next_offset,
                log_start,
                epoch: (epoch >= 0).then_some(epoch),
                producers,
            },
        )
    }
}

/// The producer table as of `offset`: each producer's cached batches below it (a producer
/// with none left is learnt again from the batches from `offset` on).
pub(crate) fn producers_as_of(states: &ProducerStates, offset: i64) -> ProducerStates {
    let entries: HashMap<i64, ProducerEntry> = states
        .entries()
        .iter()
        .filter_map(|(id, entry)| {
            let batches: std::collections::VecDeque<_> = entry
                .batches
                .iter()
                .filter(|b| b.last_offset < offset)
                .copied()
                .collect();
            (!batches.is_empty()).then_some((
                *id,
                ProducerEntry {
                    epoch: entry.epoch,
                    batches,
                },
            ))
        })
        .collect();
    ProducerStates::from_entries(entries)
}

fn snapshot_error(verb: ErrorVerb, why: &dyn std::error::Error) -> StorageError {
    io_error(ErrorSubject::Snapshot(None), verb, why)
}

fn bad(why: String) -> StorageError {
    snapshot_error(ErrorVerb::Read, &std::io::Error::other(why))
}

impl ReplicaStore {
    /// The snapshot at the current snapshot point (the purge wanted, else the one done), if
    /// the log was ever purged or a purge is wanted.
    pub(crate) fn current_snapshot(&self) -> Option<Snapshot<DataConfig>> {
        let point = self.map().snapshot_point()?;
        self.snapshot_at(point)
    }

    /// The snapshot at `point`, an entry of the map or the purged one.
    fn snapshot_at(&self, point: LogId) -> Option<Snapshot<DataConfig>> {
        let (next_offset, epoch, membership) = {
            let map = self.map();
            let next = map.offset_after_any(point.index)?;
            // The term of the batch at `next`, else (nothing after it yet) the snapshot's.
            let epoch = map
                .entry_at_offset(next)
                .map_or(point.leader_id.term, |(_, term)| term);
            (next, epoch, self.point(point.index)?.1)
        };
        let partition = self.partition();
        let log_start = partition.log().log_start_offset().0.max(next_offset);
        let data = SnapshotData {
            next_offset,
            log_start,
            epoch: i32::try_from(epoch).ok(),
            producers: producers_as_of(&partition.producer_states(), next_offset),
        };
        let meta = SnapshotMeta {
            last_log_id: Some(point),
            last_membership: membership,
            snapshot_id: format!("{}-{}-{}", point.leader_id.term, point.index, next_offset),
        };
        Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data.encode())),
        })
    }

    /// Installs a snapshot the leader sent (on a blocking thread): a log lacking the
    /// snapshot's entry restarts empty after it; one holding it keeps its entries and only
    /// learns that they are committed.
    pub(crate) fn install_blocking(
        &self,
        meta: &SnapshotMeta<NodeId, openraft::EmptyNode>,
        bytes: &[u8],
    ) -> Result<(), StorageError> {
        let point = meta
            .last_log_id
            .ok_or_else(|| bad("a snapshot without a log id".to_owned()))?;
        let data = SnapshotData::decode(bytes)
            .ok_or_else(|| bad(format!("snapshot {} is damaged", meta.snapshot_id)))?;
        let _one = self.reshape_lock();
        let partition = std::sync::Arc::clone(self.partition());
        let log = partition.log();
        // Held: the log has the snapshot's entry itself (not only as its purge point).
        let held = {
            let map = self.map();
            map.position(point.index).is_some() && map.log_id_at(point.index) == Some(point)
                || map.purged == Some(point)
        };
        if held {
            if let Some(after) = self.map().offset_after_any(point.index) {
                log.set_high_watermark(Offset(after));
            }
            tracing::info!(dir = %log.dir().display(), snapshot = %meta.snapshot_id,
                "replica holds its leader's snapshot point; keeps its log");
        } else {
            let fresh = IndexMap::restarted(point, data.next_offset, meta.last_membership.clone());
            let anchor = Self::encode_anchor(&anchor_of(&fresh))?;
            let table = producer_snapshot::encode(data.next_offset, &data.producers);
            let restart = Restart {
                next_offset: Offset(data.next_offset),
                epoch: data.epoch,
                files: vec![
                    (Self::ANCHOR_FILE.to_owned(), anchor),
                    (producer_snapshot::SNAPSHOT_FILE.to_owned(), table),
                ],
            };
            log.restart_at(&restart)
                .and_then(|()| partition.reload_producers())
                .map_err(|e| snapshot_error(ErrorVerb::Write, &e))?;
            *self.map_mut() = fresh;
            tracing::info!(dir = %log.dir().display(), snapshot = %meta.snapshot_id,
                next_offset = data.next_offset, "replica restarted from its leader's snapshot");
        }
        if data.log_start > log.log_start_offset().0 {
            self.map_mut().pending_start = Some(data.log_start);
        }
        self.apply_pending_start()
    }

    /// Moves the log start to the one a snapshot carried, once the high watermark reached it.
    pub(crate) fn apply_pending_start(&self) -> Result<(), StorageError> {
        let log = self.partition().log();
        let due = {
            let mut map = self.map_mut();
            match map.pending_start {
                Some(start) if start <= log.high_watermark().0 => map.pending_start.take(),
                _ => None,
            }
        };
        if let Some(start) = due {
            log.advance_start(Offset(start))
                .map_err(|e| snapshot_error(ErrorVerb::Write, &e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producers::state::ProducerBatch;

    fn table() -> ProducerStates {
        let mut states = ProducerStates::new();
        for (id, offsets) in [(1_i64, [0_i64, 10, 20]), (2, [30, 40, 50])] {
            for (seq, base) in (0_i32..).zip(offsets) {
                let batch = ProducerBatch {
                    producer_id: id,
                    epoch: 0,
                    first_seq: seq,
                    last_seq: seq,
                };
                states.record(&batch, base, base + 4);
            }
        }
        states
    }

    #[test]
    fn data_round_trips_and_detects_damage() {
        let data = SnapshotData {
            next_offset: 25,
            log_start: 27,
            epoch: Some(4),
            producers: producers_as_of(&table(), 25),
        };
        let bytes = data.encode();
        assert_eq!(SnapshotData::decode(&bytes), Some(data));
        for cut in 0..bytes.len() {
            assert_eq!(SnapshotData::decode(&bytes[..cut]), None);
        }
        let mut flipped = bytes;
        flipped[9] ^= 4;
        assert_eq!(SnapshotData::decode(&flipped), None);
    }

    #[test]
    fn the_producer_table_is_cut_at_the_snapshot_offset() {
        let cut = producers_as_of(&table(), 15);
        let entries = cut.entries();
        assert_eq!(entries.len(), 1, "producer 2 wrote only above 15");
        let kept: Vec<i64> = entries[&1].batches.iter().map(|b| b.base_offset).collect();
        assert_eq!(kept, vec![0, 10], "the batch at 20..24 lies above the cut");
    }
}
