//! What a Metadata answer says, as plain values: the brokers, the controller, the cluster id
//! and each topic's partitions with their leader, replicas, in-sync replicas and leader
//! epoch.
//!
//! Pure: [`Snapshot::from_response`] reads a decoded [`MetadataResponse`] and does no I/O
//! (resolving the advertised hosts is the caller's, [`super::Cluster`]). Invariants of a
//! [`Snapshot`]: brokers sorted by node id, topics in the answer's order, each topic's
//! partitions sorted by index; a topic the broker answered with an error has no partitions
//! and keeps its error code.

use kafka_protocol::messages::MetadataResponse;

/// One partition's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition index.
    pub partition: i32,
    /// Leader's node id (-1 when none: its broker is down, or an election is under way).
    pub leader: i32,
    /// The partition's error code (0 when fine; LEADER_NOT_AVAILABLE without a leader).
    pub error_code: i16,
    /// The leader epoch (-1 when the broker's Metadata version, below 7, does not carry it).
    pub leader_epoch: i32,
    /// Every broker holding a replica, the preferred leader first.
    pub replicas: Vec<i32>,
    /// The replicas in sync with the leader.
    pub isr: Vec<i32>,
    /// Replicas on brokers that are down or whose log directory failed (Metadata v5+).
    pub offline_replicas: Vec<i32>,
}

impl PartitionInfo {
    /// A partition led by `leader`, with no replica information (for callers building
    /// metadata by hand, tests among them).
    pub fn led_by(partition: i32, leader: i32) -> Self {
        Self {
            partition,
            leader,
            error_code: 0,
            leader_epoch: -1,
            replicas: Vec::new(),
            isr: Vec::new(),
            offline_replicas: Vec::new(),
        }
    }
}

/// One topic's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The name.
    pub name: String,
    /// Partitions, by index.
    pub partitions: Vec<PartitionInfo>,
    /// Whether it is an internal topic.
    pub internal: bool,
}

/// A broker as Metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Node id.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack, when the broker has one.
    pub rack: Option<String>,
}

/// One whole Metadata answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The cluster id (Metadata v2+; `None` before, or when the broker has none).
    pub cluster_id: Option<String>,
    /// The controller (for Weir: the metadata leader); `None` when the broker names none.
    pub controller_id: Option<i32>,
    /// The live brokers, sorted by node id.
    pub brokers: Vec<BrokerInfo>,
    /// The topics asked for (every topic when none was named), with each topic's error
    /// code (0 when fine).
    pub topics: Vec<(TopicInfo, i16)>,
}

impl Snapshot {
    /// Reads a decoded answer.
    pub fn from_response(response: MetadataResponse) -> Self {
        let mut brokers: Vec<BrokerInfo> = response
            .brokers
            .into_iter()
            .map(|b| BrokerInfo {
                id: b.node_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.map(|r| r.to_string()),
            })
            .collect();
        brokers.sort_by_key(|b| b.id);
        let topics = response
            .topics
            .into_iter()
            .filter_map(|topic| {
                let name = topic.name?.0.to_string();
                let mut partitions: Vec<PartitionInfo> = if topic.error_code == 0 {
                    topic
                        .partitions
                        .into_iter()
                        .map(|p| PartitionInfo {
                            partition: p.partition_index,
                            leader: p.leader_id.0,
                            error_code: p.error_code,
                            leader_epoch: p.leader_epoch,
                            replicas: p.replica_nodes.iter().map(|n| n.0).collect(),
                            isr: p.isr_nodes.iter().map(|n| n.0).collect(),
                            offline_replicas: p.offline_replicas.iter().map(|n| n.0).collect(),
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                partitions.sort_by_key(|p| p.partition);
                let info = TopicInfo {
                    name,
                    partitions,
                    internal: topic.is_internal,
                };
                Some((info, topic.error_code))
            })
            .collect();
        Self {
            cluster_id: response.cluster_id.map(|c| c.to_string()),
            controller_id: Some(response.controller_id.0).filter(|&c| c >= 0),
            brokers,
            topics,
        }
    }

    /// How many partitions broker `node` leads.
    pub fn leads(&self, node: i32) -> usize {
        self.partitions().filter(|p| p.leader == node).count()
    }

    /// How many partitions have no leader.
    pub fn leaderless(&self) -> usize {
        self.partitions().filter(|p| p.leader < 0).count()
    }

    fn partitions(&self) -> impl Iterator<Item = &PartitionInfo> {
        self.topics.iter().flat_map(|(t, _)| &t.partitions)
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    fn broker(id: i32) -> MetadataResponseBroker {
        MetadataResponseBroker::default()
            .with_node_id(BrokerId(id))
            .with_host(StrBytes::from_static_str("localhost"))
            .with_port(9000 + id)
    }

    fn partition(index: i32, leader: i32, replicas: &[i32]) -> MetadataResponsePartition {
        MetadataResponsePartition::default()
            .with_partition_index(index)
            .with_leader_id(BrokerId(leader))
            .with_leader_epoch(4)
            .with_replica_nodes(replicas.iter().copied().map(BrokerId).collect())
            .with_isr_nodes(replicas.iter().copied().map(BrokerId).collect())
    }

    #[test]
    fn a_cluster_answer_reads_as_brokers_leaders_and_replicas() {
        let response = MetadataResponse::default()
            .with_cluster_id(Some(StrBytes::from_static_str("weir-1")))
            .with_controller_id(BrokerId(2))
            .with_brokers(vec![broker(3), broker(1), broker(2)])
            .with_topics(vec![
                MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("orders"))))
                    .with_partitions(vec![
                        partition(1, 2, &[2, 3]),
                        partition(0, 1, &[1, 2]),
                        partition(2, -1, &[3]).with_error_code(5),
                    ]),
                MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("gone"))))
                    .with_error_code(3)
                    .with_partitions(vec![partition(0, 1, &[1])]),
            ]);
        let snapshot = Snapshot::from_response(response);
        assert_eq!(snapshot.cluster_id.as_deref(), Some("weir-1"));
        assert_eq!(snapshot.controller_id, Some(2));
        let ids: Vec<i32> = snapshot.brokers.iter().map(|b| b.id).collect();
        assert_eq!(ids, [1, 2, 3]);
        let (orders, code) = &snapshot.topics[0];
        assert_eq!(*code, 0);
        let leaders: Vec<i32> = orders.partitions.iter().map(|p| p.leader).collect();
        assert_eq!(leaders, [1, 2, -1]);
        assert_eq!(orders.partitions[1].replicas, [2, 3]);
        assert_eq!(orders.partitions[1].leader_epoch, 4);
        assert_eq!(orders.partitions[2].error_code, 5);
        let (gone, code) = &snapshot.topics[1];
        assert_eq!((*code, gone.partitions.len()), (3, 0));
        let leads: Vec<usize> = (1..=3).map(|n| snapshot.leads(n)).collect();
        assert_eq!((leads, snapshot.leaderless()), (vec![1, 1, 0], 1));
    }
}
