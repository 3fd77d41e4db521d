//! The live committed offsets, in memory: what fetches read, what snapshots hold and what
//! replaying a log rebuilds. Pure: no I/O, no locks.
//!
//! Invariants (checked by `check_invariants` in the tests): no group or topic is kept without
//! offsets, and `live_bytes` is exactly the size of these offsets in a snapshot.

use std::collections::{BTreeMap, HashMap};

use super::CommittedOffset;
use super::codec::{ENTRY_FIXED, GROUP_FIXED};

/// One committed offset: topic, partition, value.
pub(super) type Entry = (String, i32, CommittedOffset);
pub(super) type Partitions = BTreeMap<i32, CommittedOffset>;
/// A group's offsets by topic, then partition: sorted as `group_offsets` answers.
pub(super) type Topics = BTreeMap<String, Partitions>;

/// Every group's offsets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Offsets {
    pub(super) groups: HashMap<String, Topics>,
    /// Size of these offsets in a snapshot, without header and CRC: with the logs' size it
    /// decides when compaction pays.
    pub(super) live_bytes: u64,
}

/// One log record, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Op {
    Commit {
        group: String,
        entries: Vec<Entry>,
    },
    DeleteGroup(String),
    DeleteTopic(String),
    /// OffsetDelete: some partitions of one group.
    DeleteOffsets {
        group: String,
        partitions: Vec<(String, i32)>,
    },
}

fn group_bytes(group: &str) -> u64 {
    GROUP_FIXED + group.len() as u64
}

pub(super) fn entry_bytes(topic_len: usize, value: &CommittedOffset) -> u64 {
    let metadata = value.metadata.as_ref().map_or(0, |m| m.len() as u64);
    ENTRY_FIXED + topic_len as u64 + metadata
}

fn partitions_bytes(topic: &str, partitions: &Partitions) -> u64 {
    partitions
        .values()
        .map(|v| entry_bytes(topic.len(), v))
        .sum()
}

fn topics_bytes(topics: &Topics) -> u64 {
    topics.iter().map(|(t, p)| partitions_bytes(t, p)).sum()
}

impl Offsets {
    pub(super) fn apply(&mut self, op: Op) {
        match op {
            Op::Commit { group, entries } => self.commit(&group, entries),
            Op::DeleteGroup(group) => self.delete_group(&group),
            Op::DeleteTopic(topic) => self.delete_topic(&topic),
            Op::DeleteOffsets { group, partitions } => self.delete_offsets(&group, &partitions),
        }
    }

    /// Sets every entry; a commit without entries changes nothing (creates no group).
    pub(super) fn commit(&mut self, group: &str, entries: impl IntoIterator<Item = Entry>) {
        let mut entries = entries.into_iter().peekable();
        if entries.peek().is_none() {
            return;
        }
        if !self.groups.contains_key(group) {
            self.groups.insert(group.to_owned(), Topics::new());
            self.live_bytes += group_bytes(group);
        }
        let Some(topics) = self.groups.get_mut(group) else {
            return;
        };
        for (topic, partition, value) in entries {
            let topic_len = topic.len();
            self.live_bytes += entry_bytes(topic_len, &value);
            if let Some(old) = topics.entry(topic).or_default().insert(partition, value) {
                self.live_bytes = self.live_bytes.saturating_sub(entry_bytes(topic_len, &old));
            }
        }
    }

    pub(super) fn delete_group(&mut self, group: &str) {
        if let Some(topics) = self.groups.remove(group) {
            let removed = group_bytes(group) + topics_bytes(&topics);
            self.live_bytes = self.live_bytes.saturating_sub(removed);
        }
    }

    /// Removes the given partitions' offsets of `group`, then topics and the group if left
    /// without offsets. Partitions without an offset are skipped.
    pub(super) fn delete_offsets(&mut self, group: &str, partitions: &[(String, i32)]) {
        let Some(topics) = self.groups.get_mut(group) else {
            return;
        };
        let mut removed = 0;
        for (topic, partition) in partitions {
            let Some(offsets) = topics.get_mut(topic) else {
                continue;
            };
            if let Some(old) = offsets.remove(partition) {
                removed += entry_bytes(topic.len(), &old);
            }
            if offsets.is_empty() {
                topics.remove(topic);
            }
        }
        if topics.is_empty() {
            self.groups.remove(group);
            removed += group_bytes(group);
        }
        self.live_bytes = self.live_bytes.saturating_sub(removed);
    }

    /// Removes the topic from every group, and groups left without offsets.
    pub(super) fn delete_topic(&mut self, topic: &str) {
        let mut removed = 0;
        self.groups.retain(|group, topics| {
            if let Some(partitions) = topics.remove(topic) {
                removed += partitions_bytes(topic, &partitions);
                if topics.is_empty() {
                    removed += group_bytes(group);
                    return false;
                }
            }
            true
        });
        self.live_bytes = self.live_bytes.saturating_sub(removed);
    }

    #[cfg(test)]
    pub(super) fn check_invariants(&self) {
        let mut bytes = 0;
        for (group, topics) in &self.groups {
            assert!(!topics.is_empty(), "group {group} without offsets");
            assert!(
                topics.values().all(|p| !p.is_empty()),
                "topic without offsets"
            );
            bytes += group_bytes(group) + topics_bytes(topics);
        }
        assert_eq!(bytes, self.live_bytes);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in super::super) fn value(offset: i64, metadata: Option<&str>) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: 3,
            metadata: metadata.map(str::to_owned),
            commit_timestamp_ms: 1_700_000_000_000 + offset,
        }
    }

    pub(in super::super) fn sample() -> Offsets {
        let mut offsets = Offsets::default();
        offsets.commit(
            "g1",
            vec![
                ("t".to_owned(), 0, value(5, None)),
                ("t".to_owned(), 1, value(6, Some("m"))),
                ("u".to_owned(), 0, value(7, Some(""))),
            ],
        );
        offsets.commit("g2", vec![("t".to_owned(), 0, value(9, Some("é")))]);
        offsets
    }

    #[test]
    fn live_bytes_follow_every_change() {
        let mut offsets = sample();
        offsets.check_invariants();
        offsets.commit("g1", vec![("t".to_owned(), 0, value(50, Some("longer")))]);
        offsets.check_invariants();
        offsets.delete_topic("t");
        offsets.check_invariants();
        assert_eq!(offsets.groups.keys().collect::<Vec<_>>(), ["g1"]);
        offsets.apply(Op::DeleteGroup("g1".to_owned()));
        offsets.check_invariants();
        assert_eq!(offsets, Offsets::default());
        offsets.commit("g", Vec::new());
        assert!(
            offsets.groups.is_empty(),
            "an empty commit creates no group"
        );
    }
}
