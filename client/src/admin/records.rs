//! Trimming partitions (DeleteRecords) and growing topics (CreatePartitions).

use std::collections::BTreeMap;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::{CreatePartitionsRequest, DeleteRecordsRequest, TopicName};

use super::{Admin, s};
use crate::cluster::offsets::{fail_request, stale_metadata};
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
    /// An invalid topic name, before anything is sent (a leader that fails fails only its
    /// partitions, each with [`Error::Broker`]).
    pub async fn delete_records(
        &self,
        partitions: &[(String, i32, i64)],
    ) -> Result<BTreeMap<(String, i32), Result<i64>>> {
        for (topic, _, _) in partitions {
            crate::topic_name::check(topic)?;
        }
        let mut out = BTreeMap::new();
        let grouped = self.cluster.by_leader(partitions, &mut out).await;
        let mut stale = false;
        for (leader, topics) in grouped {
            let request = DeleteRecordsRequest::default()
                .with_timeout_ms(self.timeout_ms())
                .with_topics(
                    topics
                        .iter()
                        .map(|(topic, parts)| {
                            DeleteRecordsTopic::default()
                                .with_name(TopicName(s(topic)))
                                .with_partitions(
                                    parts
                                        .iter()
                                        .map(|&(partition, offset)| {
                                            DeleteRecordsPartition::default()
                                                .with_partition_index(partition)
                                                .with_offset(offset)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            let response = match self.cluster.call(leader, request).await {
                Ok(response) => response,
                Err(err) => {
                    // Only this leader's partitions fail; metadata may name a new one.
                    stale = true;
                    fail_request(&mut out, leader, &topics, err);
                    continue;
                }
            };
            for topic in response.topics {
                let name = topic.name.0.to_string();
                for p in topic.partitions {
                    let outcome = match Error::from_code(p.error_code, None, || {
                        format!("deleting records of {name}-{}", p.partition_index)
                    }) {
                        Some(err) => {
                            stale |= stale_metadata(&err);
                            Err(err)
                        }
                        None => Ok(p.low_watermark),
                    };
                    out.insert((name.clone(), p.partition_index), outcome);
                }
            }
        }
        if stale {
            self.cluster.invalidate().await;
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
