//! Partition assignors run by the group leader, and the adapters between the client's
//! [`TopicPartition`] lists and the consumer protocol's bytes. The byte layout
//! (`ConsumerProtocolSubscription` / `Assignment`, written here at version 0 behind the usual
//! 2-byte version prefix, read at any version) is `weir_protocol::consumer_protocol`'s.
//!
//! Assignment is a pure function of the members' subscriptions and the partition counts,
//! so every leader computes the same result for the same input (members and partitions are
//! sorted first). Cooperative protocols are not offered: members revoke everything at each
//! rebalance (the eager protocol).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use weir_protocol::consumer_protocol::{
    self, Assignment, ConsumerProtocolError, Subscription, TopicPartitions,
};

use super::record::TopicPartition;

/// The consumer-protocol version this client writes: the eager protocol needs no owned
/// partitions, generation or rack.
const PROTOCOL_VERSION: i16 = 0;

/// A partition assignment strategy, named as in Kafka so that mixed groups agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Assignor {
    /// `range`: per topic, consecutive partitions to members in member-id order.
    Range,
    /// `roundrobin`: all partitions, in topic and partition order, dealt to members in turn.
    RoundRobin,
}

impl Assignor {
    /// The protocol name sent in JoinGroup.
    pub fn name(self) -> &'static str {
        match self {
            Self::Range => "range",
            Self::RoundRobin => "roundrobin",
        }
    }

    /// The assignor with this protocol name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "range" => Some(Self::Range),
            "roundrobin" => Some(Self::RoundRobin),
            _ => None,
        }
    }

    /// Assigns the partitions of `partitions` (topic -> partition count) to `members`
    /// (member id -> subscribed topics). Every member gets an entry, possibly empty; topics
    /// absent from `partitions` are skipped.
    pub fn assign(
        self,
        members: &BTreeMap<String, Vec<String>>,
        partitions: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        let mut out: BTreeMap<String, Vec<TopicPartition>> =
            members.keys().map(|m| (m.clone(), Vec::new())).collect();
        match self {
            Self::Range => {
                for (topic, &count) in partitions {
                    let subscribed: Vec<&String> = members
                        .iter()
                        .filter(|(_, topics)| topics.contains(topic))
                        .map(|(m, _)| m)
                        .collect();
                    let n = subscribed.len();
                    if n == 0 {
                        continue;
                    }
                    let count = usize::try_from(count).unwrap_or(0);
                    let (each, extra) = (count / n, count % n);
                    let mut next = 0usize;
                    for (i, member) in subscribed.into_iter().enumerate() {
                        let take = each + usize::from(i < extra);
                        let list = out.entry(member.clone()).or_default();
                        for p in next..next + take {
                            list.push(TopicPartition::new(
                                topic.clone(),
                                i32::try_from(p).unwrap_or(i32::MAX),
                            ));
                        }
                        next += take;
                    }
                }
            }
            Self::RoundRobin => {
                let ids: Vec<&String> = members.keys().collect();
                let mut turn = 0usize;
                for (topic, &count) in partitions {
                    for p in 0..count.max(0) {
                        // The next member (in turn) subscribed to this topic.
                        let found = (0..ids.len())
                            .map(|k| (turn + k) % ids.len())
                            .find(|&i| members[ids[i]].contains(topic));
                        if let Some(i) = found {
                            if let Some(list) = out.get_mut(ids[i]) {
                                list.push(TopicPartition::new(topic.clone(), p));
                            }
                            turn = i + 1;
                        }
                    }
                }
            }
        }
        out
    }
}

/// JoinGroup metadata for a member subscribed to `topics`.
///
/// Version 0 fails only on a topic name over 32,767 bytes, which no broker accepts.
pub(crate) fn encode_subscription(topics: &[String]) -> Result<Bytes, ConsumerProtocolError> {
    let subscription = Subscription::new(topics.to_vec());
    consumer_protocol::encode_subscription(&subscription, PROTOCOL_VERSION)
}

/// The topics of a member's JoinGroup metadata.
pub(crate) fn decode_subscription(metadata: &[u8]) -> Result<Vec<String>, ConsumerProtocolError> {
    Ok(consumer_protocol::decode_subscription(metadata)?.topics)
}

/// SyncGroup assignment bytes for `partitions`; fails as [`encode_subscription`] does.
pub(crate) fn encode_assignment(
    partitions: &[TopicPartition],
) -> Result<Bytes, ConsumerProtocolError> {
    let mut by_topic: BTreeMap<&str, BTreeSet<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&tp.topic).or_default().insert(tp.partition);
    }
    let assignment = Assignment {
        partitions: by_topic
            .into_iter()
            .map(|(topic, parts)| TopicPartitions::new(topic, parts.into_iter().collect()))
            .collect(),
        user_data: None,
    };
    consumer_protocol::encode_assignment(&assignment, PROTOCOL_VERSION)
}

/// The partitions of an assignment; empty bytes (a member the leader left out) are none.
pub(crate) fn decode_assignment(
    bytes: &[u8],
) -> Result<Vec<TopicPartition>, ConsumerProtocolError> {
    let assignment = consumer_protocol::decode_assignment(bytes)?;
    Ok(assignment
        .partitions
        .into_iter()
        .flat_map(|t| {
            let TopicPartitions { topic, partitions } = t;
            partitions
                .into_iter()
                .map(move |p| TopicPartition::new(topic.clone(), p))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(list: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        list.iter()
            .map(|(m, ts)| {
                (
                    (*m).to_owned(),
                    ts.iter().map(|t| (*t).to_owned()).collect(),
                )
            })
            .collect()
    }

    fn parts(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
        list.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
    }

    fn show(a: &BTreeMap<String, Vec<TopicPartition>>) -> Vec<(String, Vec<String>)> {
        a.iter()
            .map(|(m, tps)| (m.clone(), tps.iter().map(ToString::to_string).collect()))
            .collect()
    }

    #[test]
    fn range_gives_consecutive_partitions_extra_ones_first() {
        let m = members(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]);
        let a = Assignor::Range.assign(&m, &parts(&[("t", 7)]));
        assert_eq!(
            show(&a),
            [
                ("a".into(), vec!["t-0".into(), "t-1".into(), "t-2".into()]),
                ("b".into(), vec!["t-3".into(), "t-4".into()]),
                ("c".into(), vec!["t-5".into(), "t-6".into()]),
            ]
        );
    }

    #[test]
    fn roundrobin_deals_in_turn_and_respects_subscriptions() {
        let m = members(&[("a", &["t", "u"]), ("b", &["t"])]);
        let a = Assignor::RoundRobin.assign(&m, &parts(&[("t", 3), ("u", 2), ("v", 1)]));
        assert_eq!(
            show(&a),
            [
                (
                    "a".into(),
                    vec!["t-0".into(), "t-2".into(), "u-0".into(), "u-1".into()]
                ),
                ("b".into(), vec!["t-1".into()]),
            ]
        );
    }

    #[test]
    fn every_partition_is_assigned_exactly_once() {
        for assignor in [Assignor::Range, Assignor::RoundRobin] {
            for n in 1..5 {
                let ids: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
                let m: BTreeMap<String, Vec<String>> = ids
                    .iter()
                    .map(|id| (id.clone(), vec!["x".to_owned(), "y".to_owned()]))
                    .collect();
                let a = assignor.assign(&m, &parts(&[("x", 6), ("y", 5)]));
                let mut all: Vec<TopicPartition> = a.values().flatten().cloned().collect();
                all.sort();
                let before = all.len();
                all.dedup();
                assert_eq!((before, all.len()), (11, 11), "{assignor:?} with {n}");
            }
        }
    }

    #[test]
    fn protocol_data_round_trips() {
        let topics = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(
            decode_subscription(&encode_subscription(&topics).unwrap()).ok(),
            Some(topics)
        );
        let tps = vec![TopicPartition::new("a", 1), TopicPartition::new("a", 3)];
        assert_eq!(
            decode_assignment(&encode_assignment(&tps).unwrap()).ok(),
            Some(tps)
        );
        assert_eq!(decode_assignment(&Bytes::new()).ok(), Some(vec![]));
        assert_eq!(decode_subscription(&[0]).ok(), None);
    }
}
