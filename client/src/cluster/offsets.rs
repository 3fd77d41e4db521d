//! ListOffsets, asked of each partition's leader: one request per leader, and one outcome per
//! partition, so that a partition without a leader, or a leader that is down, costs only its
//! own partitions.

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

impl Cluster {
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
        let mut by_leader: BTreeMap<i32, BTreeMap<&str, Vec<ListOffsetsPartition>>> =
            BTreeMap::new();
        for (topic, partition, timestamp) in partitions {
            match self.leader(topic, *partition).await {
                Ok(leader) => by_leader
                    .entry(leader)
                    .or_default()
                    .entry(topic)
                    .or_default()
                    .push(
                        ListOffsetsPartition::default()
                            .with_partition_index(*partition)
                            .with_timestamp(*timestamp),
                    ),
                Err(err) => {
                    out.insert((topic.clone(), *partition), Err(err));
                }
            }
        }
        let mut stale = false;
        for (leader, topics) in by_leader {
            let asked: Vec<(String, i32)> = topics
                .iter()
                .flat_map(|(t, parts)| parts.iter().map(|p| ((*t).to_owned(), p.partition_index)))
                .collect();
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(topic, parts)| {
                            ListOffsetsTopic::default()
                                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                                .with_partitions(parts)
                        })
                        .collect(),
                );
            let response = match self.call(leader, request).await {
                Ok(response) => response,
                Err(err) => {
                    tracing::debug!(leader, error = %err, "ListOffsets failed");
                    stale = true;
                    let err = Arc::new(err);
                    for tp in asked {
                        let source = Arc::clone(&err);
                        out.insert(
                            tp,
                            Err(Error::Broker {
                                node: leader,
                                source,
                            }),
                        );
                    }
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
