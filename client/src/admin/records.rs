//! Trimming partitions (DeleteRecords) and growing topics (CreatePartitions).

use std::collections::BTreeMap;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::{CreatePartitionsRequest, DeleteRecordsRequest, TopicName};

use super::{Admin, s};
use crate::error::{Error, Result};

/// DeleteRecords' offset meaning "everything up to the high watermark".
pub const HIGH_WATERMARK: i64 = -1;

impl Admin {
    /// Deletes the records below each `(topic, partition, offset)` (Kafka's `deleteRecords`):
    /// the partition's log start offset moves to `offset` ([`HIGH_WATERMARK`]: everything),
    /// durably. Each partition gets its own outcome: its new low watermark (the log start
    /// offset; unchanged when `offset` is below it), or why not (OFFSET_OUT_OF_RANGE past the
    /// high watermark, UNKNOWN_TOPIC_OR_PARTITION, POLICY_VIOLATION on a compacted topic).
    ///
    /// # Errors
    /// A request that fails as a whole (network, timeout).
    pub async fn delete_records(
        &self,
        partitions: &[(String, i32, i64)],
    ) -> Result<BTreeMap<(String, i32), Result<i64>>> {
        let mut out = BTreeMap::new();
        let mut by_leader: BTreeMap<i32, BTreeMap<&str, Vec<DeleteRecordsPartition>>> =
            BTreeMap::new();
        for (topic, partition, offset) in partitions {
            crate::topic_name::check(topic)?;
            match self.cluster.leader(topic, *partition).await {
                Ok(leader) => by_leader
                    .entry(leader)
                    .or_default()
                    .entry(topic)
                    .or_default()
                    .push(
                        DeleteRecordsPartition::default()
                            .with_partition_index(*partition)
                            .with_offset(*offset),
                    ),
                Err(err) => {
                    out.insert((topic.clone(), *partition), Err(err));
                }
            }
        }
        for (leader, topics) in by_leader {
            let asked: Vec<(&str, Vec<i32>)> = topics
                .iter()
                .map(|(t, parts)| (*t, parts.iter().map(|p| p.partition_index).collect()))
                .collect();
            let request = DeleteRecordsRequest::default()
                .with_timeout_ms(self.timeout_ms())
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(topic, parts)| {
                            DeleteRecordsTopic::default()
                                .with_name(TopicName(s(topic)))
                                .with_partitions(parts)
                        })
                        .collect(),
                );
            let response = match self.cluster.call(leader, request).await {
                Ok(response) => response,
                Err(err) => {
                    // Only this leader's partitions fail; metadata may name a new one.
                    self.cluster.invalidate().await;
                    let err = std::sync::Arc::new(err);
                    for (topic, partitions) in asked {
                        for partition in partitions {
                            let source = std::sync::Arc::clone(&err);
                            out.insert(
                                (topic.to_owned(), partition),
                                Err(Error::Broker {
                                    node: leader,
                                    source,
                                }),
                            );
                        }
                    }
                    continue;
                }
            };
            for topic in response.topics {
                let name = topic.name.0.to_string();
                for p in topic.partitions {
                    let outcome = match Error::from_code(p.error_code, None, || {
                        format!("deleting records of {name}-{}", p.partition_index)
                    }) {
                        Some(err) => Err(err),
                        None => Ok(p.low_watermark),
                    };
                    out.insert((name.clone(), p.partition_index), outcome);
                }
            }
        }
        Ok(out)
    }

    /// Grows `topic` to `total` partitions (Kafka's `createPartitions`); partitions are never
    /// removed.
    ///
    /// # Errors
    /// INVALID_PARTITIONS (a total at or below the current count), UNKNOWN_TOPIC_OR_PARTITION,
    /// POLICY_VIOLATION (no disk space), or a network error.
    pub async fn create_partitions(&self, topic: &str, total: i32) -> Result<()> {
        crate::topic_name::check(topic)?;
        let request = CreatePartitionsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(vec![
                CreatePartitionsTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_count(total)
                    // The codec's default is an empty list: a manual assignment of nothing.
                    .with_assignments(None),
            ]);
        let response = self.cluster.call_admin(request).await?;
        self.cluster.invalidate().await;
        response
            .results
            .iter()
            .find_map(|r| {
                Error::from_code(r.error_code, r.error_message.as_deref(), || {
                    format!("adding partitions to {topic}")
                })
            })
            .map_or(Ok(()), Err)
    }

    /// The request timeout in milliseconds, as the admin requests carry it.
    pub(super) fn timeout_ms(&self) -> i32 {
        i32::try_from(self.cluster.request_timeout().as_millis()).unwrap_or(i32::MAX)
    }
}
