//! Partition-scoped requests split by leader ([`Cluster::by_leader`]), and ListOffsets built
//! on it: one request per leader and one outcome per partition, so that a partition without
//! a leader, or a leader that is down, costs only its own partitions.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use weir_protocol::error_code::ErrorCode;

use super::Cluster;
use crate::error::{Error, Result};

/// Each partition's outcome, by `(topic, partition)`.
pub type Outcomes = BTreeMap<(String, i32), Result<i64>>;

/// Partitions grouped for their requests: leader -> topic -> `(partition, what is asked)`.
pub(crate) type ByLeader<T> = BTreeMap<i32, BTreeMap<String, Vec<(i32, T)>>>;

impl Cluster {
    /// Groups `(topic, partition, what is asked)` by the partitions' leaders; a partition
    /// without one (no leader, unknown, no metadata) gets its error in `out` instead. A
    /// partition asked twice is asked once.
    pub(crate) async fn by_leader<T: Copy, R>(
        &self,
        partitions: &[(String, i32, T)],
        out: &mut BTreeMap<(String, i32), Result<R>>,
    ) -> ByLeader<T> {
        let asked: Vec<(&str, i32)> = partitions
            .iter()
            .map(|(t, p, _)| (t.as_str(), *p))
            .collect();
        let mut leaders = self.leaders(&asked).await;
        let mut grouped: ByLeader<T> = BTreeMap::new();
        for (topic, partition, value) in partitions {
            let Some(leader) = leaders.remove(&(topic.clone(), *partition)) else {
                continue;
            };
            match leader {
                Ok(leader) => grouped
                    .entry(leader)
                    .or_default()
                    .entry(topic.clone())
                    .or_default()
                    .push((*partition, *value)),
                Err(err) => {
                    out.insert((topic.clone(), *partition), Err(err));
                }
            }
        }
        grouped
    }

    /// ListOffsets for each `(topic, partition, timestamp)` (-1 latest, -2 earliest), one
    /// request per partition leader. Each partition gets its own outcome: its offset, or why
    /// it has none (no leader, its leader unreachable, or the broker's error). Metadata is
    /// invalidated when an outcome says it is stale, so a retry asks the new leader.
    ///
    /// # Errors
    /// None of its own today (every failure is a partition's outcome); kept a `Result` so
    /// that callers stay unchanged if a failure of the whole appears.
    pub async fn list_offsets(&self, partitions: &[(String, i32, i64)]) -> Result<Outcomes> {
        let mut out = BTreeMap::new();
        let grouped = self.by_leader(partitions, &mut out).await;
        let mut stale = false;
        for (leader, topics) in grouped {
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(
                    topics
                        .iter()
                        .map(|(topic, parts)| {
                            ListOffsetsTopic::default()
                                .with_name(TopicName(StrBytes::from_string(topic.clone())))
                                .with_partitions(
                                    parts
                                        .iter()
                                        .map(|&(partition, timestamp)| {
                                            ListOffsetsPartition::default()
                                                .with_partition_index(partition)
                                                .with_timestamp(timestamp)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            let response = match self.call(leader, request).await {
                Ok(response) => response,
                Err(err) => {
                    tracing::debug!(leader, error = %err, "ListOffsets failed");
                    stale = true;
                    fail_request(&mut out, leader, &topics, err);
                    continue;
                }
            };
            for topic in response.topics {
                let name = topic.name.0.to_string();
                for p in topic.partitions {
                    let outcome = match Error::from_code(p.error_code, None, || {
                        format!("listing offsets of {name}-{}", p.partition_index)
                    }) {
                        Some(err) => {
                            stale |= stale_metadata(&err);
                            Err(err)
                        }
                        None => Ok(p.offset),
                    };
                    out.insert((name.clone(), p.partition_index), outcome);
                }
            }
        }
        if stale {
            self.invalidate().await;
        }
        Ok(out)
    }
}

/// Gives every partition of a request to `leader` that failed as a whole its own copy of
/// the failure ([`Error::Broker`], the cause shared).
pub(crate) fn fail_request<T, R>(
    out: &mut BTreeMap<(String, i32), Result<R>>,
    leader: i32,
    topics: &BTreeMap<String, Vec<(i32, T)>>,
    err: Error,
) {
    let err = Arc::new(err);
    for (topic, parts) in topics {
        for (partition, _) in parts {
            let source = Arc::clone(&err);
            out.insert(
                (topic.clone(), *partition),
                Err(Error::Broker {
                    node: leader,
                    source,
                }),
            );
        }
    }
}

/// Whether `err` says the partition's leader is not where metadata said.
pub(crate) fn stale_metadata(err: &Error) -> bool {
    matches!(
        err.code(),
        Some(
            ErrorCode::NotLeaderOrFollower
                | ErrorCode::LeaderNotAvailable
                | ErrorCode::UnknownTopicOrPartition
                | ErrorCode::FencedLeaderEpoch
                | ErrorCode::UnknownLeaderEpoch
        )
    )
}
