//! CreateTopics (key 19) and DeleteTopics (key 20) at every served version: success, each
//! refusal with Kafka's code, validate_only, and a deleted topic being really gone.

use kafka_protocol::messages::CreateTopicsResponse;
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_tests::{Client, TestBroker, batch, req, versions};

/// Partitions of `name` per Metadata, or `None` if the broker does not know it (auto-creation
/// must be off).
async fn partitions_of(client: &mut Client, name: &str) -> Option<usize> {
    let v = *versions(ApiKey::Metadata).end();
    let response = client.call(v, req::metadata(v, Some(&[name]))).await;
    let t = &response.topics[0];
    match t.error_code {
        0 => Some(t.partitions.len()),
        code => {
            assert_eq!(code, ErrorCode::UnknownTopicOrPartition.code(), "{t:?}");
            None
        }
    }
}

/// The one result's error code, after checking name and message.
fn only_code(response: &CreateTopicsResponse, name: &str) -> i16 {
    assert_eq!(response.topics.len(), 1, "{response:?}");
    let t = &response.topics[0];
    assert_eq!(t.name.0.as_str(), name);
    if t.error_code != 0 {
        assert!(
            t.error_message.is_some(),
            "an error comes with a message: {t:?}"
        );
    }
    t.error_code
}

async fn broker() -> TestBroker {
    TestBroker::start_with(|c| {
        c.auto_create_topics = false;
        c.default_partitions = 4;
    })
    .await
}

#[tokio::test]
async fn create_succeeds_and_the_topic_exists() {
    let broker = broker().await;
    let mut client = broker.client().await;
    for v in versions(ApiKey::CreateTopics) {
        let response = client
            .call(
                v,
                req::create_topics(&[
                    (&format!("three-{v}"), 3, 1),
                    (&format!("dflt-{v}"), -1, -1),
                ]),
            )
            .await;
        assert_eq!(response.throttle_time_ms, 0);
        let results: Vec<(&str, i16)> = response
            .topics
            .iter()
            .map(|t| (t.name.0.as_str(), t.error_code))
            .collect();
        assert_eq!(
            results,
            [
                (format!("three-{v}").as_str(), 0),
                (format!("dflt-{v}").as_str(), 0)
            ],
            "v{v}"
        );
        assert_eq!(
            partitions_of(&mut client, &format!("three-{v}")).await,
            Some(3)
        );
        assert_eq!(
            partitions_of(&mut client, &format!("dflt-{v}")).await,
            Some(4),
            "-1 partitions means default_partitions"
        );
        assert_eq!(
            client.produce_ok(&format!("three-{v}"), 2, batch(2)).await,
            0
        );
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn create_refusals_carry_kafkas_codes() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("exists", 1).await;
    client.create_topic("dotted.name", 1).await;
    let long = "x".repeat(250);
    let max = "y".repeat(249);
    let cases: &[(&str, i32, i16, ErrorCode)] = &[
        ("exists", 1, 1, ErrorCode::TopicAlreadyExists),
        ("exists", 5, -1, ErrorCode::TopicAlreadyExists),
        ("", 1, 1, ErrorCode::InvalidTopicException),
        (".", 1, 1, ErrorCode::InvalidTopicException),
        ("..", 1, 1, ErrorCode::InvalidTopicException),
        (&long, 1, 1, ErrorCode::InvalidTopicException),
        ("a b", 1, 1, ErrorCode::InvalidTopicException),
        ("a/b", 1, 1, ErrorCode::InvalidTopicException),
        ("a\\b", 1, 1, ErrorCode::InvalidTopicException),
        ("a:b", 1, 1, ErrorCode::InvalidTopicException),
        ("ü", 1, 1, ErrorCode::InvalidTopicException),
        ("dotted_name", 1, 1, ErrorCode::InvalidTopicException), // collides with dotted.name
        ("zero-partitions", 0, 1, ErrorCode::InvalidPartitions),
        ("minus-two-partitions", -2, 1, ErrorCode::InvalidPartitions),
        ("rf-zero", 1, 0, ErrorCode::InvalidReplicationFactor),
        ("rf-two", 1, 2, ErrorCode::InvalidReplicationFactor),
        ("rf-three", 1, 3, ErrorCode::InvalidReplicationFactor),
        ("rf-minus-two", 1, -2, ErrorCode::InvalidReplicationFactor),
    ];
    for v in versions(ApiKey::CreateTopics) {
        for &(name, partitions, rf, expected) in cases {
            let response = client
                .call(v, req::create_topics(&[(name, partitions, rf)]))
                .await;
            assert_eq!(
                only_code(&response, name),
                expected.code(),
                "v{v}: {name:?} partitions {partitions} rf {rf}: {response:?}"
            );
        }
        // The longest legal name works (and only once).
        let response = client.call(v, req::create_topic(&max, 1)).await;
        let expected = if v == *versions(ApiKey::CreateTopics).start() {
            ErrorCode::None
        } else {
            ErrorCode::TopicAlreadyExists
        };
        assert_eq!(only_code(&response, &max), expected.code(), "v{v}");
    }
    // Nothing refused was created.
    for &(name, ..) in cases {
        if name != "exists" {
            assert_eq!(
                partitions_of(&mut client, name).await,
                None,
                "{name:?} exists"
            );
        }
    }
    broker.shutdown().await;
}

fn assigned(name: &str, brokers: &[&[i32]], partitions: i32, rf: i16) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(req::topic(name))
        .with_num_partitions(partitions)
        .with_replication_factor(rf)
        .with_assignments(
            brokers
                .iter()
                .enumerate()
                .map(|(p, ids)| {
                    CreatableReplicaAssignment::default()
                        .with_partition_index(i32::try_from(p).unwrap())
                        .with_broker_ids(
                            ids.iter()
                                .map(|&id| kafka_protocol::messages::BrokerId(id))
                                .collect(),
                        )
                })
                .collect(),
        )
}

/// A manual assignment naming this broker (as librdkafka's test 0081 sends) creates one
/// partition per entry; other brokers, replicas or mixed counts are refused as Kafka does.
#[tokio::test]
async fn a_manual_assignment_to_this_broker_is_accepted_and_others_refused() {
    let broker = broker().await;
    let mut client = broker.client().await;
    for v in versions(ApiKey::CreateTopics) {
        let name = format!("assigned-{v}");
        let request =
            req::create_topics(&[]).with_topics(vec![assigned(&name, &[&[0], &[0], &[0]], -1, -1)]);
        let response = client.call(v, request).await;
        assert_eq!(only_code(&response, &name), 0, "v{v}: {response:?}");
        assert_eq!(partitions_of(&mut client, &name).await, Some(3), "v{v}");

        let refusals = [
            (
                assigned("elsewhere", &[&[0], &[1]], -1, -1),
                ErrorCode::InvalidReplicaAssignment,
            ),
            (
                assigned("twice", &[&[0, 0]], -1, -1),
                ErrorCode::InvalidReplicaAssignment,
            ),
            (
                assigned("nowhere", &[&[]], -1, -1),
                ErrorCode::InvalidReplicaAssignment,
            ),
            (assigned("both", &[&[0]], 1, -1), ErrorCode::InvalidRequest),
            (
                assigned("both-rf", &[&[0]], -1, 1),
                ErrorCode::InvalidRequest,
            ),
        ];
        for (topic, expected) in refusals {
            let topic_name = topic.name.0.to_string();
            let response = client
                .call(v, req::create_topics(&[]).with_topics(vec![topic]))
                .await;
            assert_eq!(
                only_code(&response, &topic_name),
                expected.code(),
                "v{v} {topic_name}"
            );
            assert_eq!(partitions_of(&mut client, &topic_name).await, None);
        }
        // Partitions out of order.
        let mut shuffled = assigned("shuffled", &[&[0], &[0]], -1, -1);
        shuffled.assignments[0].partition_index = 1;
        shuffled.assignments[1].partition_index = 0;
        let response = client
            .call(v, req::create_topics(&[]).with_topics(vec![shuffled]))
            .await;
        assert_eq!(
            only_code(&response, "shuffled"),
            ErrorCode::InvalidReplicaAssignment.code()
        );
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn validate_only_checks_without_creating() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("exists", 1).await;
    for v in versions(ApiKey::CreateTopics) {
        let name = format!("validated-{v}");
        let response = client
            .call(v, req::create_topic(&name, 2).with_validate_only(true))
            .await;
        assert_eq!(only_code(&response, &name), 0, "v{v}");
        assert_eq!(
            partitions_of(&mut client, &name).await,
            None,
            "v{v}: created"
        );

        for (name, partitions, rf, expected) in [
            ("exists", 1, 1, ErrorCode::TopicAlreadyExists),
            ("..", 1, 1, ErrorCode::InvalidTopicException),
            ("bad name", 1, 1, ErrorCode::InvalidTopicException),
            ("rf", 1, 3, ErrorCode::InvalidReplicationFactor),
        ] {
            let response = client
                .call(
                    v,
                    req::create_topics(&[(name, partitions, rf)]).with_validate_only(true),
                )
                .await;
            assert_eq!(only_code(&response, name), expected.code(), "v{v}: {name}");
        }
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn validate_only_checks_partitions_and_collisions() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("dotted.name", 1).await;
    for v in versions(ApiKey::CreateTopics) {
        for (name, partitions, expected) in [
            ("zero", 0, ErrorCode::InvalidPartitions),
            ("negative", -3, ErrorCode::InvalidPartitions),
            ("dotted_name", 1, ErrorCode::InvalidTopicException),
        ] {
            let response = client
                .call(
                    v,
                    req::create_topics(&[(name, partitions, 1)]).with_validate_only(true),
                )
                .await;
            assert_eq!(only_code(&response, name), expected.code(), "v{v}: {name}");
        }
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn delete_removes_the_topic_and_its_data() {
    let broker = broker().await;
    let mut client = broker.client().await;
    for v in versions(ApiKey::DeleteTopics) {
        let (a, b) = (format!("doomed-a-{v}"), format!("doomed-b-{v}"));
        client.create_topic(&a, 2).await;
        client.create_topic(&b, 1).await;
        assert_eq!(client.produce_ok(&a, 1, batch(3)).await, 0);
        assert_eq!(client.produce_ok(&a, 1, batch(2)).await, 3);

        let response = client.call(v, req::delete_topics(&[&a, &b])).await;
        assert_eq!(response.throttle_time_ms, 0);
        let results: Vec<(String, i16)> = response
            .responses
            .iter()
            .map(|r| (r.name.as_ref().unwrap().0.to_string(), r.error_code))
            .collect();
        assert_eq!(results, [(a.clone(), 0), (b.clone(), 0)], "v{v}");

        // Gone for Metadata, Produce, Fetch and ListOffsets.
        assert_eq!(partitions_of(&mut client, &a).await, None, "v{v}");
        assert_eq!(partitions_of(&mut client, &b).await, None, "v{v}");
        let produce = client
            .call(
                *versions(ApiKey::Produce).end(),
                req::produce(&a, 1, batch(1), 1),
            )
            .await;
        assert_eq!(
            produce.responses[0].partition_responses[0].error_code,
            ErrorCode::UnknownTopicOrPartition.code()
        );
        let fetch = client
            .call(*versions(ApiKey::Fetch).end(), req::fetch(&a, 1, 0, 0, 0))
            .await;
        assert_eq!(
            fetch.responses[0].partitions[0].error_code,
            ErrorCode::UnknownTopicOrPartition.code()
        );
        let list = client
            .call(
                *versions(ApiKey::ListOffsets).end(),
                req::list_offsets(&a, 1, -1),
            )
            .await;
        assert_eq!(
            list.topics[0].partitions[0].error_code,
            ErrorCode::UnknownTopicOrPartition.code()
        );

        // Created again, it starts empty.
        client.create_topic(&a, 2).await;
        assert_eq!(
            client.list_offset(&a, 1, -1).await,
            0,
            "v{v}: old data is back"
        );
        assert!(client.fetch_now(&a, 1, 0).await.is_empty());
        assert_eq!(client.produce_ok(&a, 1, batch(1)).await, 0);
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn delete_unknown_topic_is_refused() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("kept", 1).await;
    for v in versions(ApiKey::DeleteTopics) {
        let response = client
            .call(v, req::delete_topics(&["never-existed", "kept"]))
            .await;
        assert_eq!(response.responses.len(), 2);
        let unknown = &response.responses[0];
        assert_eq!(unknown.name.as_ref().unwrap().0.as_str(), "never-existed");
        assert_eq!(
            unknown.error_code,
            ErrorCode::UnknownTopicOrPartition.code(),
            "v{v}"
        );
        let kept = &response.responses[1];
        // Deleted at the first version, unknown afterwards.
        let expected = if v == *versions(ApiKey::DeleteTopics).start() {
            ErrorCode::None
        } else {
            ErrorCode::UnknownTopicOrPartition
        };
        assert_eq!(kept.error_code, expected.code(), "v{v}");
    }
    broker.shutdown().await;
}

/// CreateTopics v5+ answers with the new topic's configs: each value in force and its source
/// (the request's override as DYNAMIC_TOPIC_CONFIG, the rest from the broker or Kafka's
/// defaults), with `validate_only` too.
#[tokio::test]
async fn create_topics_v5_answers_with_the_configs_in_force() {
    let broker = broker().await;
    let mut client = broker.client().await;
    for (v, validate_only) in [(5, false), (6, false), (6, true)] {
        let name = format!("configured-{v}-{validate_only}");
        let topic = CreatableTopic::default()
            .with_name(req::topic(&name))
            .with_num_partitions(2)
            .with_replication_factor(1)
            .with_configs(vec![
                kafka_protocol::messages::create_topics_request::CreatableTopicConfig::default()
                    .with_name(kafka_protocol::protocol::StrBytes::from_static_str(
                        "retention.ms",
                    ))
                    .with_value(Some(kafka_protocol::protocol::StrBytes::from_static_str(
                        "3600000",
                    ))),
            ]);
        let request = req::create_topics(&[])
            .with_topics(vec![topic])
            .with_validate_only(validate_only);
        let response = client.call(v, request).await;
        let result = &response.topics[0];
        assert_eq!(result.error_code, 0, "v{v}: {result:?}");
        assert_eq!((result.num_partitions, result.replication_factor), (2, 1));
        let configs = result.configs.as_ref().expect("configs in v5+");
        let find = |key: &str| {
            configs
                .iter()
                .find(|c| &*c.name == key)
                .unwrap_or_else(|| panic!("v{v}: no {key} in {configs:?}"))
        };
        let retention = find("retention.ms");
        assert_eq!(retention.value.as_deref(), Some("3600000"));
        assert_eq!(retention.config_source, 1, "DYNAMIC_TOPIC_CONFIG");
        let policy = find("cleanup.policy");
        assert_eq!(policy.value.as_deref(), Some("delete"));
        assert_ne!(policy.config_source, 1);
        assert!(!retention.is_sensitive);
        assert_eq!(
            partitions_of(&mut client, &name).await,
            (!validate_only).then_some(2),
            "v{v}"
        );
    }
    broker.shutdown().await;
}
