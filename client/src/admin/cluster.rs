//! Describing the cluster (DescribeCluster) and the brokers' data directories
//! (DescribeLogDirs).

use kafka_protocol::messages::{DescribeClusterRequest, DescribeLogDirsRequest};

use super::Admin;
use crate::error::{Error, Result};

/// A broker of a described cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerDescription {
    /// Node id.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack, when the broker has one.
    pub rack: Option<String>,
}

/// What DescribeCluster answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// The cluster id.
    pub cluster_id: String,
    /// The controller's node id (-1: none).
    pub controller_id: i32,
    /// Every broker, sorted by id.
    pub brokers: Vec<BrokerDescription>,
    /// Kafka's bit field of the cluster operations this client may perform (bit `code` per
    /// ACL operation), when asked for.
    pub authorized_operations: Option<i32>,
}

/// One partition in a data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirPartition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Bytes on disk.
    pub size_bytes: i64,
    /// How far this replica is behind the log end (0 for a leader).
    pub offset_lag: i64,
}

/// One data directory of one broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirDescription {
    /// The broker.
    pub broker: i32,
    /// The directory's path on the broker.
    pub path: String,
    /// The filesystem's size (-1 when the broker does not say).
    pub total_bytes: i64,
    /// What the filesystem has left (-1 when the broker does not say).
    pub usable_bytes: i64,
    /// Its partitions, sorted by topic and partition.
    pub partitions: Vec<LogDirPartition>,
}

impl Admin {
    /// The cluster id, the controller and every broker (Kafka's `describeCluster`), with the
    /// authorized operations when `include_authorized_operations`.
    ///
    /// # Errors
    /// The broker's error, or a network error.
    pub async fn describe_cluster(
        &self,
        include_authorized_operations: bool,
    ) -> Result<ClusterDescription> {
        let response = self
            .cluster
            .call_any(
                DescribeClusterRequest::default()
                    .with_include_cluster_authorized_operations(include_authorized_operations),
            )
            .await?;
        if let Some(err) = Error::from_code(
            response.error_code,
            response.error_message.as_deref(),
            || "describing the cluster".to_owned(),
        ) {
            return Err(err);
        }
        let mut brokers: Vec<BrokerDescription> = response
            .brokers
            .into_iter()
            .map(|b| BrokerDescription {
                id: b.broker_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.map(|r| r.to_string()),
            })
            .collect();
        brokers.sort_by_key(|b| b.id);
        Ok(ClusterDescription {
            cluster_id: response.cluster_id.to_string(),
            controller_id: response.controller_id.0,
            brokers,
            authorized_operations: include_authorized_operations
                .then_some(response.cluster_authorized_operations),
        })
    }

    /// Every data directory of every broker with the size of each partition in it (what
    /// `kafka-log-dirs --describe` shows).
    ///
    /// # Errors
    /// A broker's error for a directory, or a network error.
    pub async fn describe_log_dirs(&self) -> Result<Vec<LogDirDescription>> {
        let mut out = Vec::new();
        for (broker, _) in self.brokers().await? {
            let response = self
                .cluster
                .call(broker, DescribeLogDirsRequest::default().with_topics(None))
                .await?;
            if let Some(err) = Error::from_code(response.error_code, None, || {
                format!("describing the log directories of broker {broker}")
            }) {
                return Err(err);
            }
            for dir in response.results {
                let path = dir.log_dir.to_string();
                if let Some(err) = Error::from_code(dir.error_code, None, || {
                    format!("describing log directory {path} of broker {broker}")
                }) {
                    return Err(err);
                }
                let mut partitions: Vec<LogDirPartition> = dir
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions.iter().map(|p| LogDirPartition {
                            topic: t.name.0.to_string(),
                            partition: p.partition_index,
                            size_bytes: p.partition_size,
                            offset_lag: p.offset_lag,
                        })
                    })
                    .collect();
                partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
                out.push(LogDirDescription {
                    broker,
                    path,
                    total_bytes: dir.total_bytes,
                    usable_bytes: dir.usable_bytes,
                    partitions,
                });
            }
        }
        Ok(out)
    }
}
