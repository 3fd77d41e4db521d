//! Administration: create, delete, list and describe topics; list and describe consumer groups
//! with their committed offsets and lag. `records.rs`: trimming partitions (DeleteRecords) and
//! adding partitions; `group_offsets.rs`: deleting a group's offsets (OffsetDelete);
//! `cluster.rs`: describing the cluster and the brokers' data directories.
//!
//! ```no_run
//! # async fn example() -> weir_client::Result<()> {
//! use weir_client::{Admin, ClientConfig, NewTopic};
//!
//! let admin = Admin::new(ClientConfig::new(["127.0.0.1:9092"]));
//! admin.create_topics(&[NewTopic::new("orders", 6)]).await?;
//! for topic in admin.list_topics().await? {
//!     println!("{} ({} partitions)", topic.name, topic.partitions.len());
//! }
//! # Ok(())
//! # }
//! ```

mod cluster;
pub mod configs;
mod group_offsets;
mod records;

pub use cluster::{BrokerDescription, ClusterDescription, LogDirDescription, LogDirPartition};
pub use records::HIGH_WATERMARK;

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::{
    CreateTopicsRequest, DeleteGroupsRequest, DeleteTopicsRequest, DescribeGroupsRequest, GroupId,
    ListGroupsRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::{Cluster, TopicInfo};
use crate::config::ClientConfig;
use crate::error::{Error, Result};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Its name.
    pub name: String,
    /// Partitions (-1: the broker's default).
    pub partitions: i32,
    /// Replication factor (-1: the broker's default).
    pub replication_factor: i16,
    /// Topic configuration entries.
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic with `partitions` partitions and the broker's default replication.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        Self {
            name: name.into(),
            partitions,
            replication_factor: -1,
            configs: Vec::new(),
        }
    }

    /// Adds a configuration entry.
    #[must_use]
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((key.into(), value.into()));
        self
    }
}

/// A consumer group in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// "consumer" for consumer groups; empty for groups known only by committed offsets.
    pub protocol_type: String,
}

/// A member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// The raw assignment bytes (for consumers: the consumer protocol's assignment).
    pub assignment: bytes::Bytes,
}

/// One partition's committed offset and lag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset.
    pub committed: i64,
    /// The partition's end offset (high watermark).
    pub end: i64,
    /// `end - committed`, never negative.
    pub lag: i64,
    /// The commit's metadata string.
    pub metadata: Option<String>,
}

/// A described consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// Kafka's state name ("Stable", "Empty", ...; "Dead" for unknown groups).
    pub state: String,
    /// Protocol type.
    pub protocol_type: String,
    /// The chosen assignor.
    pub protocol: String,
    /// Members.
    pub members: Vec<GroupMember>,
    /// Committed offsets with lag, sorted by topic and partition.
    pub offsets: Vec<PartitionLag>,
}

/// The admin client.
#[derive(Debug, Clone)]
pub struct Admin {
    cluster: Arc<Cluster>,
}

impl Admin {
    /// An admin client for the cluster at `config.bootstrap`.
    pub fn new(config: ClientConfig) -> Self {
        Self {
            cluster: Cluster::new(config),
        }
    }

    /// An admin client sharing a producer's or consumer's cluster view.
    pub fn with_cluster(cluster: Arc<Cluster>) -> Self {
        Self { cluster }
    }

    /// Creates topics; fails on the first topic the broker refuses (after trying all).
    ///
    /// # Errors
    /// The broker's error for a refused topic (e.g. TOPIC_ALREADY_EXISTS), a network error,
    /// or [`Error::InvalidTopicName`] before anything is sent.
    pub async fn create_topics(&self, topics: &[NewTopic]) -> Result<()> {
        for t in topics {
            crate::topic_name::check(&t.name)?;
        }
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(
                i32::try_from(self.cluster.request_timeout().as_millis()).unwrap_or(i32::MAX),
            )
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(TopicName(s(&t.name)))
                            .with_num_partitions(t.partitions)
                            .with_replication_factor(t.replication_factor)
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(s(k))
                                            .with_value(Some(s(v)))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let response = self.cluster.call_admin(request).await?;
        self.cluster.invalidate().await;
        response
            .topics
            .iter()
            .find_map(|t| {
                Error::from_code(t.error_code, t.error_message.as_deref(), || {
                    format!("creating topic {}", t.name.as_str())
                })
            })
            .map_or(Ok(()), Err)
    }

    /// Deletes topics; fails on the first topic the broker refuses (after trying all).
    ///
    /// # Errors
    /// The broker's error (e.g. UNKNOWN_TOPIC_OR_PARTITION), or a network error.
    pub async fn delete_topics(&self, names: &[&str]) -> Result<()> {
        for name in names {
            crate::topic_name::check(name)?;
        }
        let request = DeleteTopicsRequest::default()
            .with_timeout_ms(
                i32::try_from(self.cluster.request_timeout().as_millis()).unwrap_or(i32::MAX),
            )
            .with_topic_names(names.iter().map(|n| TopicName(s(n))).collect());
        let response = self.cluster.call_admin(request).await?;
        self.cluster.invalidate().await;
        response
            .responses
            .iter()
            .find_map(|t| {
                let name = t
                    .name
                    .as_ref()
                    .map(|n| n.as_str().to_owned())
                    .unwrap_or_default();
                Error::from_code(t.error_code, t.error_message.as_deref(), || {
                    format!("deleting topic {name}")
                })
            })
            .map_or(Ok(()), Err)
    }

    /// Every topic with its partitions, sorted by name.
    ///
    /// # Errors
    /// A network error.
    pub async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        let mut topics = self.cluster.refresh(None).await?;
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// These topics' metadata.
    ///
    /// # Errors
    /// UNKNOWN_TOPIC_OR_PARTITION for a topic that does not exist, or a network error.
    pub async fn describe_topics(&self, names: &[&str]) -> Result<Vec<TopicInfo>> {
        let infos = self.cluster.refresh(Some(names)).await?;
        for name in names {
            if !infos
                .iter()
                .any(|t| t.name == *name && !t.partitions.is_empty())
            {
                return Err(Error::Kafka {
                    code: weir_protocol::error_code::ErrorCode::UnknownTopicOrPartition.code(),
                    message: None,
                    context: format!("describing topic {name}"),
                });
            }
        }
        Ok(infos)
    }

    /// Every consumer group, sorted by id.
    ///
    /// # Errors
    /// A network error or the broker's error.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let mut groups = Vec::new();
        for (node, _) in self.brokers().await? {
            let response = self
                .cluster
                .call(node, ListGroupsRequest::default())
                .await?;
            if let Some(err) = Error::from_code(response.error_code, None, || {
                format!("listing groups on broker {node}")
            }) {
                return Err(err);
            }
            groups.extend(response.groups.into_iter().map(|g| GroupListing {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
            }));
        }
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        groups.dedup_by(|a, b| a.group_id == b.group_id);
        Ok(groups)
    }

    async fn brokers(&self) -> Result<Vec<(i32, std::net::SocketAddr)>> {
        let known = self.cluster.brokers().await;
        if !known.is_empty() {
            return Ok(known);
        }
        self.cluster.refresh(Some(&[])).await?;
        Ok(self.cluster.brokers().await)
    }

    /// Runs `op` again while it fails because the group's coordinator moved, is loading, or
    /// cannot be reached (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE,
    /// COORDINATOR_LOAD_IN_PROGRESS, a connection failure), waiting 50 ms, then twice as long
    /// each time up to 1 s, until the request timeout has passed. `op` finds the coordinator
    /// afresh each time; only for requests that may be repeated.
    pub(super) async fn with_coordinator_retries<T, F, Fut>(&self, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let deadline = tokio::time::Instant::now() + self.cluster.request_timeout();
        let mut wait = std::time::Duration::from_millis(50);
        loop {
            match op().await {
                Err(err)
                    if err.coordinator_lost() && tokio::time::Instant::now() + wait < deadline =>
                {
                    tracing::debug!(error = %err, ?wait, "the group coordinator moved or is unreachable");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_secs(1));
                }
                outcome => return outcome,
            }
        }
    }

    /// A group with its members, committed offsets and lag, following the coordinator when it
    /// moves.
    ///
    /// # Errors
    /// A network error or the broker's error.
    pub async fn describe_group(&self, group_id: &str) -> Result<GroupDescription> {
        self.with_coordinator_retries(|| self.describe_group_once(group_id))
            .await
    }

    #[allow(
        clippy::too_many_lines,
        reason = "three requests in a row (DescribeGroups, OffsetFetch, ListOffsets), each answer feeding the next, read best as one sequence"
    )]
    async fn describe_group_once(&self, group_id: &str) -> Result<GroupDescription> {
        let coordinator = self.coordinator(group_id).await?;
        let described = self
            .cluster
            .call(
                coordinator,
                DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group_id))]),
            )
            .await?;
        let group =
            described.groups.into_iter().next().ok_or_else(|| {
                Error::InvalidArgument(format!("no description of group {group_id}"))
            })?;
        if let Some(err) =
            Error::from_code(group.error_code, group.error_message.as_deref(), || {
                format!("describing group {group_id}")
            })
        {
            return Err(err);
        }
        let fetched = self
            .cluster
            .call(
                coordinator,
                OffsetFetchRequest::default()
                    .with_group_id(GroupId(s(group_id)))
                    .with_topics(None),
            )
            .await?;
        if let Some(err) = Error::from_code(fetched.error_code, None, || {
            format!("fetching offsets of group {group_id}")
        }) {
            return Err(err);
        }
        let mut committed = BTreeMap::new();
        for topic in fetched.topics {
            for p in topic.partitions {
                if p.committed_offset >= 0 {
                    committed.insert(
                        (topic.name.0.to_string(), p.partition_index),
                        (p.committed_offset, p.metadata.map(|m| m.to_string())),
                    );
                }
            }
        }
        let ends = self
            .end_offsets(committed.keys().cloned().collect())
            .await?;
        let offsets = committed
            .into_iter()
            .map(|((topic, partition), (committed, metadata))| {
                let end = ends.get(&(topic.clone(), partition)).copied().unwrap_or(-1);
                PartitionLag {
                    lag: (end - committed).max(0),
                    topic,
                    partition,
                    committed,
                    end,
                    metadata,
                }
            })
            .collect();
        Ok(GroupDescription {
            group_id: group_id.to_owned(),
            state: group.group_state.to_string(),
            protocol_type: group.protocol_type.to_string(),
            protocol: group.protocol_data.to_string(),
            members: group
                .members
                .into_iter()
                .map(|m| GroupMember {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                    assignment: m.member_assignment,
                })
                .collect(),
            offsets,
        })
    }

    /// Deletes groups that have no members (and their committed offsets).
    ///
    /// # Errors
    /// NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND, or a network error.
    pub async fn delete_groups(&self, group_ids: &[&str]) -> Result<()> {
        for group_id in group_ids {
            self.with_coordinator_retries(|| self.delete_group(group_id))
                .await?;
        }
        Ok(())
    }

    async fn delete_group(&self, group_id: &str) -> Result<()> {
        let coordinator = self.coordinator(group_id).await?;
        let response = self
            .cluster
            .call(
                coordinator,
                DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(group_id))]),
            )
            .await?;
        response
            .results
            .iter()
            .find_map(|r| {
                Error::from_code(r.error_code, None, || format!("deleting group {group_id}"))
            })
            .map_or(Ok(()), Err)
    }

    /// The broker coordinating `group_id`.
    ///
    /// # Errors
    /// A network error or the broker's error.
    pub async fn coordinator(&self, group_id: &str) -> Result<i32> {
        let response = self
            .cluster
            .call_any_repeatable(
                kafka_protocol::messages::FindCoordinatorRequest::default().with_key(s(group_id)),
            )
            .await?;
        if let Some(err) = Error::from_code(
            response.error_code,
            response.error_message.as_deref(),
            || format!("finding the coordinator of {group_id}"),
        ) {
            return Err(err);
        }
        if self
            .cluster
            .brokers()
            .await
            .iter()
            .all(|(id, _)| *id != response.node_id.0)
        {
            self.cluster.refresh(Some(&[])).await?;
        }
        Ok(response.node_id.0)
    }

    /// The latest offset of each partition whose leader answers (lag is unknown for others).
    async fn end_offsets(
        &self,
        partitions: Vec<(String, i32)>,
    ) -> Result<BTreeMap<(String, i32), i64>> {
        let latest: Vec<(String, i32, i64)> = partitions
            .into_iter()
            .map(|(topic, partition)| (topic, partition, -1))
            .collect();
        Ok(self
            .cluster
            .list_offsets(&latest)
            .await?
            .into_iter()
            .filter_map(|(tp, outcome)| outcome.ok().map(|offset| (tp, offset)))
            .collect())
    }
}
