//! Deleting a consumer group's committed offsets (OffsetDelete).

use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::{GroupId, OffsetDeleteRequest, TopicName};

use super::{Admin, s};
use crate::error::{Error, Result};

impl Admin {
    /// Deletes `group_id`'s committed offsets of `partitions` (Kafka's
    /// `deleteConsumerGroupOffsets`). Fails with the first refusal, after the broker has
    /// deleted what it could: GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP (members of another
    /// protocol), GROUP_SUBSCRIBED_TO_TOPIC (a member consumes the topic),
    /// UNKNOWN_TOPIC_OR_PARTITION.
    ///
    /// Follows the coordinator when it moves.
    ///
    /// # Errors
    /// As above, or a network error.
    pub async fn delete_group_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<()> {
        self.with_coordinator_retries(|| self.delete_group_offsets_once(group_id, partitions))
            .await
    }

    async fn delete_group_offsets_once(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<()> {
        let mut topics: Vec<OffsetDeleteRequestTopic> = Vec::new();
        for (topic, partition) in partitions {
            crate::topic_name::check(topic)?;
            let p = OffsetDeleteRequestPartition::default().with_partition_index(*partition);
            match topics.iter_mut().find(|t| &*t.name.0 == topic) {
                Some(t) => t.partitions.push(p),
                None => topics.push(
                    OffsetDeleteRequestTopic::default()
                        .with_name(TopicName(s(topic)))
                        .with_partitions(vec![p]),
                ),
            }
        }
        let coordinator = self.coordinator(group_id).await?;
        let response = self
            .cluster
            .call(
                coordinator,
                OffsetDeleteRequest::default()
                    .with_group_id(GroupId(s(group_id)))
                    .with_topics(topics),
            )
            .await?;
        if let Some(err) = Error::from_code(response.error_code, None, || {
            format!("deleting offsets of group {group_id}")
        }) {
            return Err(err);
        }
        response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
            .find_map(|(t, p)| {
                Error::from_code(p.error_code, None, || {
                    format!(
                        "deleting the offset of group {group_id} for {}-{}",
                        t.name.0, p.partition_index
                    )
                })
            })
            .map_or(Ok(()), Err)
    }
}
