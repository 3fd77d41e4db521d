//! ElectLeaders (key 43), v0-2, on a single broker: every partition has one replica, which
//! leads it, so a preferred or unclean election is never needed (ELECTION_NOT_NEEDED);
//! unknown partitions are UNKNOWN_TOPIC_OR_PARTITION; an unknown election type is
//! INVALID_REQUEST; a null partition list has nothing to answer. Clusters are tested in
//! `cluster_leaders.rs`.

use kafka_protocol::messages::ElectLeadersRequest;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_tests::{TestBroker, req, versions};

fn request(election_type: i8, partitions: Option<Vec<i32>>) -> ElectLeadersRequest {
    ElectLeadersRequest::default()
        .with_election_type(election_type)
        .with_timeout_ms(5_000)
        .with_topic_partitions(partitions.map(|ps| {
            vec![
                TopicPartitions::default()
                    .with_topic(req::topic("e"))
                    .with_partitions(ps),
            ]
        }))
}

#[tokio::test]
async fn a_single_broker_never_needs_an_election() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    client.create_topic("e", 2).await;
    for v in versions(ApiKey::ElectLeaders) {
        // v0 has no election type: it is always PREFERRED.
        let types: &[i8] = if v == 0 { &[0] } else { &[0, 1] };
        for &election_type in types {
            let r = client
                .call(v, request(election_type, Some(vec![0, 1, 5])))
                .await;
            let codes: Vec<(i32, i16)> = r.replica_election_results[0]
                .partition_result
                .iter()
                .map(|p| (p.partition_id, p.error_code))
                .collect();
            assert_eq!(
                codes,
                vec![
                    (0, ErrorCode::ElectionNotNeeded.code()),
                    (1, ErrorCode::ElectionNotNeeded.code()),
                    (5, ErrorCode::UnknownTopicOrPartition.code()),
                ],
                "v{v} type {election_type}"
            );
        }
        let all = client.call(v, request(0, None)).await;
        assert!(all.replica_election_results.is_empty(), "v{v}: {all:?}");
    }
    let bad = client.call(2, request(7, Some(vec![0]))).await;
    let p = &bad.replica_election_results[0].partition_result[0];
    assert_eq!(p.error_code, ErrorCode::InvalidRequest.code());
    assert!(
        p.error_message
            .as_deref()
            .is_some_and(|m| m.contains("election type"))
    );
}
