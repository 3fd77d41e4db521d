//! Committed offsets in a cluster live in the replicated internal topic `__consumer_offsets`
//! (real `weir-broker` processes): a group's coordinator is the leader of its offsets
//! partition; a commit acknowledged by it survives its `kill -9`, and the new coordinator
//! (the partition's new leader) serves it after loading the partition. Other brokers answer
//! NOT_COORDINATOR; users cannot produce to the topic, which Metadata marks internal. An
//! OffsetDelete's tombstone is replicated the same way.

use std::time::{Duration, Instant};

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    FindCoordinatorRequest, GroupId, OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest,
    OffsetFetchResponse,
};
use kafka_protocol::protocol::StrBytes;
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_tests::cluster_procs::{ClusterOptions, ClusterProcs};
use weir_tests::{Client, batch, req, versions};

const GROUP: &str = "billing";

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

async fn wait_until<F, Fut, T>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The coordinator `node` names for `GROUP`, or the error code.
async fn find_coordinator(cluster: &ClusterProcs, node: u64) -> Result<u64, i16> {
    let mut client = Client::connect(cluster.kafka_addr(node)).await;
    let v = *versions(ApiKey::FindCoordinator).end();
    let answer = client
        .call(v, FindCoordinatorRequest::default().with_key(s(GROUP)))
        .await;
    if answer.error_code != 0 {
        return Err(answer.error_code);
    }
    Ok(u64::try_from(answer.node_id.0).unwrap())
}

fn commit(offsets: &[(i32, i64)]) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(s(""))
        .with_retention_time_ms(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(req::topic("orders"))
                .with_partitions(
                    offsets
                        .iter()
                        .map(|&(p, o)| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(o)
                                .with_committed_leader_epoch(-1)
                                .with_committed_metadata(Some(s(&format!("at-{o}"))))
                        })
                        .collect(),
                ),
        ])
}

async fn fetch(cluster: &ClusterProcs, node: u64) -> OffsetFetchResponse {
    let mut client = Client::connect(cluster.kafka_addr(node)).await;
    let v = *versions(ApiKey::OffsetFetch).end();
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_topics(Some(vec![
            OffsetFetchRequestTopic::default()
                .with_name(req::topic("orders"))
                .with_partition_indexes(vec![0, 1]),
        ]));
    client.call(v, request).await
}

/// (offset, metadata) per partition, or the group-level error.
fn offsets(answer: &OffsetFetchResponse) -> Result<Vec<(i64, String)>, i16> {
    if answer.error_code != 0 {
        return Err(answer.error_code);
    }
    Ok(answer.topics[0]
        .partitions
        .iter()
        .map(|p| {
            (
                p.committed_offset,
                p.metadata.as_deref().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_the_coordinators_kill9_and_the_new_coordinator_serves_them() {
    let root = tempfile::tempdir().unwrap();
    let mut cluster = ClusterProcs::start(
        root.path(),
        ClusterOptions::new(3)
            .arg("--offsets-topic-partitions")
            .arg("3"),
    );
    let coordinator = wait_until(
        "the group has a coordinator",
        Duration::from_secs(60),
        || {
            let cluster = &cluster;
            async move { find_coordinator(cluster, 1).await.ok() }
        },
    )
    .await;
    // Every broker names the same one.
    for node in 2..=3 {
        let named = wait_until("every broker names it", Duration::from_secs(10), || {
            let cluster = &cluster;
            async move { find_coordinator(cluster, node).await.ok() }
        })
        .await;
        assert_eq!(named, coordinator);
    }
    // The offsets topic is internal, of the configured partitions and 3 replicas, and refuses
    // produce from clients.
    let mut one = Client::connect(cluster.kafka_addr(1)).await;
    let mv = *versions(ApiKey::Metadata).end();
    let md = one
        .call(mv, req::metadata(mv, Some(&["__consumer_offsets"])))
        .await;
    let topic = &md.topics[0];
    assert_eq!(topic.error_code, 0, "{topic:?}");
    assert!(topic.is_internal, "{topic:?}");
    assert_eq!(topic.partitions.len(), 3);
    assert!(topic.partitions.iter().all(|p| p.replica_nodes.len() == 3));
    let pv = *versions(ApiKey::Produce).end();
    let mut at_coordinator = Client::connect(cluster.kafka_addr(coordinator)).await;
    let produced = at_coordinator
        .call(pv, req::produce("__consumer_offsets", 0, batch(1), -1))
        .await;
    assert_eq!(
        produced.responses[0].partition_responses[0].error_code,
        ErrorCode::InvalidTopicException as i16
    );

    let cv = *versions(ApiKey::CreateTopics).end();
    let created = one.call(cv, req::create_topics(&[("orders", 2, 3)])).await;
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    let ocv = *versions(ApiKey::OffsetCommit).end();
    // Until the new topic's partitions are known everywhere a commit may be refused.
    let deadline = Instant::now() + Duration::from_secs(30);
    let committed = loop {
        let answer = at_coordinator.call(ocv, commit(&[(0, 42), (1, 7)])).await;
        let codes: Vec<i16> = answer.topics[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect();
        if codes.iter().all(|c| *c == 0) || Instant::now() > deadline {
            break codes;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(committed, [0, 0]);
    let later = at_coordinator.call(ocv, commit(&[(0, 50)])).await;
    assert_eq!(later.topics[0].partitions[0].error_code, 0, "{later:?}");
    assert_eq!(
        offsets(&fetch(&cluster, coordinator).await),
        Ok(vec![(50, "at-50".to_owned()), (7, "at-7".to_owned())])
    );
    let other = (1..=3).find(|n| *n != coordinator).unwrap();
    assert_eq!(
        offsets(&fetch(&cluster, other).await),
        Err(ErrorCode::NotCoordinator as i16),
        "a broker that does not lead the group's offsets partition"
    );

    // The coordinator dies without a word; another replica of its offsets partition leads,
    // loads it and serves every acknowledged commit.
    cluster.kill9(coordinator);
    let survivor = (1..=3).find(|n| *n != coordinator).unwrap();
    let successor = wait_until(
        "another broker coordinates the group",
        Duration::from_secs(60),
        || {
            let cluster = &cluster;
            async move {
                find_coordinator(cluster, survivor)
                    .await
                    .ok()
                    .filter(|c| *c != coordinator)
            }
        },
    )
    .await;
    let served = wait_until(
        "the new coordinator serves the offsets",
        Duration::from_secs(30),
        || {
            let cluster = &cluster;
            async move {
                let answer = fetch(cluster, successor).await;
                match offsets(&answer) {
                    Ok(found) => Some(found),
                    Err(code)
                        if code == ErrorCode::CoordinatorLoadInProgress as i16
                            || code == ErrorCode::NotCoordinator as i16 =>
                    {
                        None
                    }
                    Err(code) => panic!("OffsetFetch answered {code}: {answer:?}"),
                }
            }
        },
    )
    .await;
    assert_eq!(
        served,
        vec![(50, "at-50".to_owned()), (7, "at-7".to_owned())]
    );
    // It takes new commits, and the old coordinator, back, is not the coordinator any more
    // unless it leads again (then it loads the same history).
    let mut at_successor = Client::connect(cluster.kafka_addr(successor)).await;
    let next = at_successor.call(ocv, commit(&[(1, 9)])).await;
    assert_eq!(next.topics[0].partitions[0].error_code, 0, "{next:?}");
    // OffsetDelete is a tombstone in the same partition.
    let odv = *versions(ApiKey::OffsetDelete).end();
    let deleted = at_successor
        .call(
            odv,
            OffsetDeleteRequest::default()
                .with_group_id(GroupId(s(GROUP)))
                .with_topics(vec![
                    OffsetDeleteRequestTopic::default()
                        .with_name(req::topic("orders"))
                        .with_partitions(vec![
                            OffsetDeleteRequestPartition::default().with_partition_index(0),
                        ]),
                ]),
        )
        .await;
    assert_eq!(deleted.error_code, 0, "{deleted:?}");
    assert_eq!(deleted.topics[0].partitions[0].error_code, 0, "{deleted:?}");
    cluster.restart(coordinator);
    // As a client does: ask for the coordinator (the restarted broker's metadata may lag
    // at first), then fetch there.
    let served = wait_until(
        "the coordinator serves the offsets after the restart",
        Duration::from_secs(60),
        || {
            let cluster = &cluster;
            async move {
                let now = find_coordinator(cluster, coordinator).await.ok()?;
                offsets(&fetch(cluster, now).await).ok()
            }
        },
    )
    .await;
    assert_eq!(served, vec![(-1, String::new()), (9, "at-9".to_owned())]);
    // The successor goes too: whoever leads next reads the commit and the tombstone from
    // its own log.
    let before = find_coordinator(&cluster, coordinator)
        .await
        .unwrap_or(successor);
    cluster.kill9(before);
    let up = (1..=3).find(|n| *n != before).unwrap();
    let served = wait_until(
        "a third coordinator serves the offsets",
        Duration::from_secs(60),
        || {
            let cluster = &cluster;
            async move {
                let now = find_coordinator(cluster, up)
                    .await
                    .ok()
                    .filter(|c| *c != before)?;
                offsets(&fetch(cluster, now).await).ok()
            }
        },
    )
    .await;
    assert_eq!(served, vec![(-1, String::new()), (9, "at-9".to_owned())]);
    assert!(cluster.stop_all(), "{}", cluster.report());
}
