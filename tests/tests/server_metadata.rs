//! Metadata (key 3) at every served version: the one broker at the listen address, cluster id
//! and controller, all topics or named ones, and auto-creation on and off.

use kafka_protocol::messages::{BrokerId, MetadataResponse};
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_tests::{TestBroker, req, versions};

fn topic_names(response: &MetadataResponse) -> Vec<String> {
    let mut names: Vec<String> = response
        .topics
        .iter()
        .map(|t| t.name.as_ref().expect("topic name").0.to_string())
        .collect();
    names.sort();
    names
}

fn check_broker(response: &MetadataResponse, broker: &TestBroker, v: i16) {
    assert_eq!(response.brokers.len(), 1, "v{v}");
    let b = &response.brokers[0];
    assert_eq!(b.node_id, BrokerId(0), "v{v}");
    assert_eq!(b.host.as_str(), "127.0.0.1", "v{v}: advertised host");
    assert_eq!(
        b.port,
        i32::from(broker.addr().port()),
        "v{v}: advertised port"
    );
    assert_eq!(b.rack, None, "v{v}");
    if v >= 1 {
        assert_eq!(response.controller_id, BrokerId(0), "v{v}: controller id");
    }
    if v >= 2 {
        let id = response.cluster_id.as_ref().expect("cluster id from v2");
        assert_eq!(id.len(), 22, "v{v}: cluster id {id:?} is like Kafka's");
    }
}

#[tokio::test]
async fn lists_all_or_named_topics_at_every_version() {
    let broker = TestBroker::start_with(|c| c.auto_create_topics = false).await;
    let mut client = broker.client().await;
    client.create_topic("alpha", 3).await;
    client.create_topic("beta", 1).await;
    let mut cluster_ids = Vec::new();
    for v in versions(ApiKey::Metadata) {
        let all = client.call(v, req::metadata(v, None)).await;
        check_broker(&all, &broker, v);
        cluster_ids.push(all.cluster_id.clone());
        assert_eq!(topic_names(&all), ["alpha", "beta"], "v{v}");
        for t in &all.topics {
            assert_eq!(t.error_code, 0, "v{v}");
            assert!(!t.is_internal, "v{v}");
            let expected = if t.name.as_ref().unwrap().0.as_str() == "alpha" {
                3
            } else {
                1
            };
            assert_eq!(t.partitions.len(), expected, "v{v}");
            for (i, p) in t.partitions.iter().enumerate() {
                assert_eq!(p.error_code, 0, "v{v}");
                assert_eq!(p.partition_index, i32::try_from(i).unwrap(), "v{v}");
                assert_eq!(p.leader_id, BrokerId(0), "v{v}");
                assert_eq!(p.replica_nodes, [BrokerId(0)], "v{v}");
                assert_eq!(p.isr_nodes, [BrokerId(0)], "v{v}");
            }
        }

        let named = client.call(v, req::metadata(v, Some(&["beta"]))).await;
        check_broker(&named, &broker, v);
        assert_eq!(topic_names(&named), ["beta"], "v{v}");
        assert_eq!(named.topics[0].partitions.len(), 1, "v{v}");

        if v >= 1 {
            // From v1 an empty list means no topics (null means all).
            let none = client.call(v, req::metadata(v, Some(&[]))).await;
            check_broker(&none, &broker, v);
            assert!(none.topics.is_empty(), "v{v}: {:?}", none.topics);
        }
    }
    // v0 and v1 have no cluster id field; every later version gives the same one.
    assert!(cluster_ids[..2].iter().all(Option::is_none));
    assert!(cluster_ids[2..].windows(2).all(|w| w[0] == w[1]));
    broker.shutdown().await;
}

#[tokio::test]
async fn cluster_id_survives_a_restart() {
    let mut broker = TestBroker::start().await;
    let v = *versions(ApiKey::Metadata).end();
    let before = broker.client().await.call(v, req::metadata(v, None)).await;
    broker.restart().await;
    let after = broker.client().await.call(v, req::metadata(v, None)).await;
    assert!(before.cluster_id.is_some());
    assert_eq!(before.cluster_id, after.cluster_id);
    check_broker(&after, &broker, v);
    broker.shutdown().await;
}

#[tokio::test]
async fn auto_create_on_creates_requested_topics() {
    let broker = TestBroker::start_with(|c| {
        c.auto_create_topics = true;
        c.default_partitions = 2;
    })
    .await;
    let mut client = broker.client().await;
    for v in versions(ApiKey::Metadata) {
        let name = format!("auto-{v}");
        let response = client.call(v, req::metadata(v, Some(&[&name]))).await;
        assert_eq!(topic_names(&response), std::slice::from_ref(&name), "v{v}");
        let t = &response.topics[0];
        assert_eq!(t.error_code, 0, "v{v}: auto-created");
        assert_eq!(t.partitions.len(), 2, "v{v}: default_partitions");
        // It exists now: produce works.
        assert_eq!(client.produce_ok(&name, 1, weir_tests::batch(1)).await, 0);

        if v >= 4 {
            // The client may ask not to create.
            let name = format!("not-created-{v}");
            let request = req::metadata(v, Some(&[&name])).with_allow_auto_topic_creation(false);
            let response = client.call(v, request).await;
            assert_eq!(
                response.topics[0].error_code,
                ErrorCode::UnknownTopicOrPartition.code(),
                "v{v}"
            );
            assert!(response.topics[0].partitions.is_empty());
            let all = client.call(v, req::metadata(v, None)).await;
            assert!(
                !topic_names(&all).contains(&name),
                "v{v}: {name} was created"
            );
        }
    }
    // An illegal name is refused, not created.
    let v = *versions(ApiKey::Metadata).end();
    let response = client.call(v, req::metadata(v, Some(&["bad/name"]))).await;
    assert_eq!(
        response.topics[0].error_code,
        ErrorCode::InvalidTopicException.code()
    );
    let all = client.call(v, req::metadata(v, None)).await;
    let expected: Vec<String> = {
        let mut n: Vec<String> = versions(ApiKey::Metadata)
            .map(|v| format!("auto-{v}"))
            .collect();
        n.sort();
        n
    };
    assert_eq!(topic_names(&all), expected);
    broker.shutdown().await;
}

#[tokio::test]
async fn auto_create_off_answers_unknown_topic() {
    let broker = TestBroker::start_with(|c| c.auto_create_topics = false).await;
    let mut client = broker.client().await;
    client.create_topic("known", 1).await;
    for v in versions(ApiKey::Metadata) {
        let response = client
            .call(v, req::metadata(v, Some(&["unknown", "known"])))
            .await;
        check_broker(&response, &broker, v);
        assert_eq!(response.topics.len(), 2, "v{v}");
        let unknown = &response.topics[0];
        assert_eq!(unknown.name.as_ref().unwrap().0.as_str(), "unknown", "v{v}");
        assert_eq!(
            unknown.error_code,
            ErrorCode::UnknownTopicOrPartition.code(),
            "v{v}"
        );
        assert!(unknown.partitions.is_empty(), "v{v}");
        assert_eq!(response.topics[1].error_code, 0, "v{v}");
        assert_eq!(response.topics[1].partitions.len(), 1, "v{v}");
        let all = client.call(v, req::metadata(v, None)).await;
        assert_eq!(topic_names(&all), ["known"], "v{v}");
    }
    broker.shutdown().await;
}
