//! The committed offsets a cluster broker serves as coordinator: the in-memory offsets of
//! the `__consumer_offsets` partitions it leads, each rebuilt from that partition's
//! committed records ([`super::kafka_format`]) and kept in step with them.
//!
//! Owns, per offsets partition this broker leads: whether it is loading or loaded, the live
//! offsets of its groups ([`super::live::Offsets`], the map the single-broker store keeps),
//! and the next log offset to apply. Does not write records (the coordinator proposes them
//! through the partition's data group) and does not decide leadership (it is told).
//!
//! Invariants:
//! - a loaded partition's offsets are exactly the replay, in log order, of its records below
//!   `next`, which never passes the high watermark: only committed records are served;
//! - a partition is loaded for one leader term; a load for an older term than the slot's is
//!   ignored, so a stale load never replaces a newer one;
//! - every group's records live in partition [`partition_for`] of the group, so a partition's
//!   groups are exactly those hashing to it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use weir_protocol::record_batch::{BatchHeader, Records};

use super::CommittedOffset;
use super::kafka_format::{self, Decoded};
use super::live::Offsets;
use crate::log::{LogError, Offset, PartitionLog};

/// The name of the internal topic holding committed offsets in a cluster (Kafka's).
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Bytes read from the log at a time while loading or catching up.
const READ_BYTES: usize = 1 << 20;

/// The offsets partition of `group` among `partitions`: Kafka's
/// `Utils.abs(groupId.hashCode()) % partitions`, with Java's `String.hashCode` (over UTF-16
/// code units) and `Utils.abs` (`Integer.MIN_VALUE` maps to 0, not to itself).
#[must_use]
pub fn partition_for(group: &str, partitions: u32) -> i32 {
    let hash = group
        .encode_utf16()
        .fold(0_i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    let count = i32::try_from(partitions.max(1)).unwrap_or(i32::MAX);
    abs % count
}

/// Where an offsets partition stands on this broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not led here (or not known yet): NOT_COORDINATOR.
    NotLoaded,
    /// Led here, its records being read: COORDINATOR_LOAD_IN_PROGRESS.
    Loading,
    /// Led here and served.
    Loaded,
}

/// Why a partition could not be loaded or caught up.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading the log failed.
    #[error("reading {OFFSETS_TOPIC}-{partition}: {source}")]
    Log {
        /// The offsets partition.
        partition: i32,
        /// The cause.
        #[source]
        source: LogError,
    },
    /// A batch or record that is not an offsets record (nothing is guessed: the partition
    /// stays unloaded rather than serve offsets with a commit missing).
    #[error("{OFFSETS_TOPIC}-{partition} at offset {offset}: {reason}")]
    Bad {
        /// The offsets partition.
        partition: i32,
        /// Where.
        offset: i64,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Debug, Default)]
struct Loaded {
    ready: bool,
    offsets: Offsets,
    /// The next log offset to apply.
    next: i64,
}

#[derive(Debug)]
struct Slot {
    term: u64,
    state: Mutex<Loaded>,
}

/// The offsets partitions this broker leads, in memory. Share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct ReplicatedOffsets {
    slots: RwLock<HashMap<i32, Arc<Slot>>>,
}

fn lock(slot: &Slot) -> std::sync::MutexGuard<'_, Loaded> {
    slot.state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ReplicatedOffsets {
    /// No partition loaded.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn slot(&self, partition: i32) -> Option<Arc<Slot>> {
        self.slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&partition)
            .cloned()
    }

    /// Where `partition` stands here.
    pub fn status(&self, partition: i32) -> Status {
        match self.slot(partition) {
            None => Status::NotLoaded,
            Some(slot) if lock(&slot).ready => Status::Loaded,
            Some(_) => Status::Loading,
        }
    }

    /// The term `partition` is loaded (or loading) for.
    pub fn term(&self, partition: i32) -> Option<u64> {
        self.slot(partition).map(|s| s.term)
    }

    /// Marks `partition` as loading for leader term `term` (its requests answer
    /// COORDINATOR_LOAD_IN_PROGRESS until [`Self::load`] finishes), dropping what an older
    /// term had loaded.
    pub fn begin_load(&self, partition: i32, term: u64) {
        self.slots
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                partition,
                Arc::new(Slot {
                    term,
                    state: Mutex::new(Loaded::default()),
                }),
            );
    }

    /// Reads `partition`'s committed records from `log` (from its start to the high
    /// watermark) into memory and marks it loaded, unless another term took the slot
    /// meanwhile. Blocking: it reads the log.
    ///
    /// # Errors
    /// [`LoadError`]: the log cannot be read or holds a record that is not an offset.
    pub fn load(&self, partition: i32, term: u64, log: &PartitionLog) -> Result<(), LoadError> {
        let Some(slot) = self.slot(partition).filter(|s| s.term == term) else {
            return Ok(());
        };
        let mut loaded = lock(&slot);
        loaded.next = log.log_start_offset().0;
        apply_from(&mut loaded, partition, log)?;
        loaded.ready = true;
        tracing::info!(
            partition,
            term,
            groups = loaded.offsets.groups.len(),
            next = loaded.next,
            "loaded the committed offsets of an offsets partition"
        );
        Ok(())
    }

    /// Applies the records committed since the last call (the caller's commit among them).
    ///
    /// # Errors
    /// As [`Self::load`].
    pub fn catch_up(&self, partition: i32, log: &PartitionLog) -> Result<(), LoadError> {
        let Some(slot) = self.slot(partition) else {
            return Ok(());
        };
        let mut loaded = lock(&slot);
        if !loaded.ready {
            return Ok(());
        }
        apply_from(&mut loaded, partition, log)
    }

    /// Forgets `partition` (its leadership moved away); returns the groups it held.
    pub fn unload(&self, partition: i32) -> Vec<String> {
        let slot = self
            .slots
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&partition);
        slot.map(|s| lock(&s).offsets.groups.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The partitions loaded or loading here, with their terms.
    pub fn held(&self) -> Vec<(i32, u64)> {
        self.slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(p, s)| (*p, s.term))
            .collect()
    }

    fn with_loaded<T>(&self, partition: i32, read: impl FnOnce(&Offsets) -> T) -> Option<T> {
        let slot = self.slot(partition)?;
        let loaded = lock(&slot);
        loaded.ready.then(|| read(&loaded.offsets))
    }

    /// The committed offset of `group` (in `partition`) for `topic`-`index`.
    pub fn fetch(
        &self,
        partition: i32,
        group: &str,
        topic: &str,
        index: i32,
    ) -> Option<CommittedOffset> {
        self.with_loaded(partition, |o| {
            o.groups.get(group)?.get(topic)?.get(&index).cloned()
        })
        .flatten()
    }

    /// Every committed offset of `group`, sorted by topic and partition.
    pub fn group_offsets(
        &self,
        partition: i32,
        group: &str,
    ) -> Vec<(String, i32, CommittedOffset)> {
        self.with_loaded(partition, |o| {
            o.groups
                .get(group)
                .map(|topics| {
                    topics
                        .iter()
                        .flat_map(|(t, ps)| ps.iter().map(|(p, v)| (t.clone(), *p, v.clone())))
                        .collect()
                })
                .unwrap_or_default()
        })
        .unwrap_or_default()
    }

    /// Whether `group` has committed offsets.
    pub fn has_group(&self, partition: i32, group: &str) -> bool {
        self.with_loaded(partition, |o| o.groups.contains_key(group))
            .unwrap_or(false)
    }

    /// The groups with committed offsets in every loaded partition, sorted.
    pub fn groups(&self) -> Vec<String> {
        let slots: Vec<Arc<Slot>> = self
            .slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let mut groups: Vec<String> = slots
            .iter()
            .flat_map(|s| {
                let loaded = lock(s);
                if loaded.ready {
                    loaded.offsets.groups.keys().cloned().collect()
                } else {
                    Vec::new()
                }
            })
            .collect();
        groups.sort_unstable();
        groups
    }

    /// Per loaded partition, the groups with offsets of `topic` and those partitions: what a
    /// deleted topic's tombstones must cover.
    pub fn offsets_of_topic(&self, topic: &str) -> Vec<(i32, String, Vec<i32>)> {
        let mut found = Vec::new();
        for (partition, _) in self.held() {
            let groups = self.with_loaded(partition, |o| {
                o.groups
                    .iter()
                    .filter_map(|(g, topics)| {
                        let ps = topics.get(topic)?;
                        Some((g.clone(), ps.keys().copied().collect::<Vec<i32>>()))
                    })
                    .collect::<Vec<_>>()
            });
            for (group, partitions) in groups.unwrap_or_default() {
                found.push((partition, group, partitions));
            }
        }
        found
    }
}

/// Applies `log`'s records from `loaded.next` to the high watermark.
fn apply_from(loaded: &mut Loaded, partition: i32, log: &PartitionLog) -> Result<(), LoadError> {
    loop {
        let read = log
            .read(Offset(loaded.next), READ_BYTES)
            .map_err(|source| LoadError::Log { partition, source })?;
        if read.records.is_empty() {
            return Ok(());
        }
        let mut rest: &[u8] = &read.records;
        while !rest.is_empty() {
            let bad = |offset: i64, reason: String| LoadError::Bad {
                partition,
                offset,
                reason,
            };
            let header = BatchHeader::parse(rest).map_err(|e| bad(loaded.next, e.to_string()))?;
            let len = header
                .total_len()
                .map_err(|e| bad(header.base_offset, e.to_string()))?
                .min(rest.len());
            let (batch, after) = rest.split_at(len);
            rest = after;
            // Leader changes, membership and producer markers: not offsets.
            if !header.attributes.is_control() {
                let records =
                    Records::new(batch).map_err(|e| bad(header.base_offset, e.to_string()))?;
                for record in records {
                    let record = record.map_err(|e| bad(header.base_offset, e.to_string()))?;
                    let decoded = kafka_format::decode(record.key, record.value)
                        .map_err(|e| bad(record.offset(header.base_offset), e.to_string()))?;
                    apply(&mut loaded.offsets, decoded);
                }
            }
            loaded.next = header.next_offset();
        }
    }
}

fn apply(offsets: &mut Offsets, decoded: Decoded) {
    match decoded {
        Decoded::Offset {
            group,
            topic,
            partition,
            value: Some(value),
        } => offsets.commit(&group, [(topic, partition, value)]),
        Decoded::Offset {
            group,
            topic,
            partition,
            value: None,
        } => offsets.delete_offsets(&group, &[(topic, partition)]),
        Decoded::Other(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::offsets::kafka_format::{Change, encode_batch};
    use crate::log::{LogConfig, LogOptions};
    use crate::storage::Flusher;

    fn value(offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: 1,
            metadata: Some(format!("m{offset}")),
            commit_timestamp_ms: 1_700_000_000_000,
        }
    }

    fn change(topic: &str, partition: i32, offset: Option<i64>) -> Change {
        Change {
            topic: topic.to_owned(),
            partition,
            value: offset.map(value),
        }
    }

    #[test]
    fn a_partition_is_served_only_once_loaded_and_follows_its_log_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(
            dir.path(),
            LogOptions::new(LogConfig::default(), Flusher::new(1)),
        )
        .unwrap();
        let append = |group: &str, changes: &[Change]| {
            log.append(&encode_batch(group, changes, 5).unwrap())
                .unwrap();
        };
        append("g", &[change("t", 0, Some(3)), change("t", 1, Some(4))]);
        append("h", &[change("t", 0, Some(9))]);
        append("g", &[change("t", 0, Some(5))]);
        let offsets = ReplicatedOffsets::new();
        assert_eq!(offsets.status(2), Status::NotLoaded);
        offsets.begin_load(2, 7);
        assert_eq!(offsets.status(2), Status::Loading);
        assert_eq!(
            offsets.fetch(2, "g", "t", 0),
            None,
            "nothing served while loading"
        );
        // A load for a term the slot no longer has changes nothing.
        offsets.load(2, 6, &log).unwrap();
        assert_eq!(offsets.status(2), Status::Loading);
        offsets.load(2, 7, &log).unwrap();
        assert_eq!(offsets.status(2), Status::Loaded);
        assert_eq!(
            offsets.fetch(2, "g", "t", 0),
            Some(value(5)),
            "the later commit wins"
        );
        assert_eq!(offsets.fetch(2, "g", "t", 1), Some(value(4)));
        assert_eq!(offsets.groups(), ["g", "h"]);
        // Tombstones and new commits after the load are applied by catching up, in order.
        append("g", &[change("t", 1, None), change("u", 0, Some(1))]);
        append("h", &[change("t", 0, None)]);
        offsets.catch_up(2, &log).unwrap();
        assert_eq!(offsets.fetch(2, "g", "t", 1), None);
        assert_eq!(
            offsets.group_offsets(2, "g"),
            [("t".to_owned(), 0, value(5)), ("u".to_owned(), 0, value(1))]
        );
        assert!(
            !offsets.has_group(2, "h"),
            "a group without offsets is gone"
        );
        assert_eq!(
            offsets.offsets_of_topic("u"),
            [(2, "g".to_owned(), vec![0])]
        );
        assert_eq!(offsets.unload(2), ["g"]);
        assert_eq!(offsets.status(2), Status::NotLoaded);
        assert_eq!(offsets.fetch(2, "g", "t", 0), None);
    }

    #[test]
    fn a_record_that_is_not_an_offset_stops_the_load() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(
            dir.path(),
            LogOptions::new(LogConfig::default(), Flusher::new(1)),
        )
        .unwrap();
        let mut builder = weir_protocol::record_batch::BatchBuilder::new();
        builder.push(weir_protocol::record_batch::RecordInput {
            key: Some(b"\x00\x01\x7f"),
            value: Some(b"x"),
            timestamp: 1,
            ..Default::default()
        });
        log.append(&builder.build().unwrap()).unwrap();
        let offsets = ReplicatedOffsets::new();
        offsets.begin_load(0, 1);
        let err = offsets.load(0, 1, &log).unwrap_err();
        assert!(matches!(err, LoadError::Bad { offset: 0, .. }), "{err}");
        assert_eq!(offsets.status(0), Status::Loading);
    }

    #[test]
    fn partition_for_is_kafkas_hash() {
        // Java: "my-group".hashCode() == 1_108_019_427... values checked against
        // `Utils.abs(s.hashCode()) % 50` as Kafka computes it.
        let java_hash = |s: &str| {
            s.encode_utf16()
                .fold(0_i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
        };
        assert_eq!(java_hash("a"), 97);
        assert_eq!(java_hash("ab"), 97 * 31 + 98);
        assert_eq!(partition_for("a", 50), 97 % 50);
        assert_eq!(partition_for("", 10), 0);
        // A hash of Integer.MIN_VALUE: "polygenelubricants".hashCode() in Java.
        assert_eq!(java_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 7), 0);
        // A negative hash takes its absolute value.
        let negative = "consumer-group-with-a-long-name";
        assert!(java_hash(negative) < 0);
        assert_eq!(partition_for(negative, 10), java_hash(negative).abs() % 10);
    }
}
