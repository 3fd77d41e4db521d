//! DescribeConfigs (every version) and topic configs given to CreateTopics: the values
//! reported are the ones in force, and configs that cannot be honoured are refused
//! (`server_topic_configs.rs` covers overrides and the alter APIs).

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::{CreateTopicsRequest, DescribeConfigsRequest};
use kafka_protocol::protocol::StrBytes;
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_tests::{TestBroker, req, versions};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

fn resource(kind: i8, name: &str, keys: Option<&[&str]>) -> DescribeConfigsResource {
    DescribeConfigsResource::default()
        .with_resource_type(kind)
        .with_resource_name(StrBytes::from_string(name.to_owned()))
        .with_configuration_keys(keys.map(|k| {
            k.iter()
                .map(|s| StrBytes::from_string((*s).to_owned()))
                .collect()
        }))
}

fn values(result: &DescribeConfigsResult) -> BTreeMap<String, String> {
    result
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn topic_and_broker_configs_are_the_values_in_force() {
    let broker = TestBroker::start_with(|c| {
        c.retention_ms = 3_600_000;
        c.retention_bytes = 1 << 30;
        c.segment_bytes = 4 << 20;
        c.default_partitions = 3;
    })
    .await;
    let mut client = broker.client().await;
    client.create_topic("configured", 1).await;
    for v in versions(ApiKey::DescribeConfigs) {
        for synonyms in [false, true] {
            let request = DescribeConfigsRequest::default()
                .with_include_synonyms(synonyms)
                .with_resources(vec![
                    resource(TOPIC, "configured", None),
                    resource(BROKER, "0", None),
                ]);
            let response = client.call(v, request).await;
            assert_eq!(response.results.len(), 2);
            let topic = &response.results[0];
            assert_eq!(
                (topic.error_code, topic.resource_type, &*topic.resource_name),
                (0, TOPIC, "configured")
            );
            let t = values(topic);
            for (name, value) in [
                ("cleanup.policy", "delete"),
                ("retention.ms", "3600000"),
                ("retention.bytes", "1073741824"),
                ("segment.bytes", "4194304"),
                ("min.insync.replicas", "1"),
                ("flush.messages", "1"),
                ("compression.type", "producer"),
            ] {
                assert_eq!(
                    t.get(name).map(String::as_str),
                    Some(value),
                    "v{v} topic {name}"
                );
            }
            assert!(t.len() >= 10, "v{v}: only {t:?}");
            let retention = topic
                .configs
                .iter()
                .find(|c| &*c.name == "retention.ms")
                .unwrap();
            assert!(!retention.read_only, "a topic config can be changed");
            assert_eq!(
                retention.config_source, 4,
                "set by a broker flag: STATIC_BROKER_CONFIG"
            );
            if synonyms {
                assert_eq!(retention.synonyms.len(), 1);
                assert_eq!(&*retention.synonyms[0].name, "log.retention.ms");
            } else {
                assert!(retention.synonyms.is_empty());
            }
            let policy = topic
                .configs
                .iter()
                .find(|c| &*c.name == "cleanup.policy")
                .unwrap();
            assert_eq!(policy.config_source, 5, "a fixed default: DEFAULT_CONFIG");

            let b = &response.results[1];
            assert_eq!((b.error_code, b.resource_type), (0, BROKER));
            let b = values(b);
            assert_eq!(
                b.get("num.partitions").map(String::as_str),
                Some("3"),
                "v{v}"
            );
            assert_eq!(
                b.get("log.retention.ms").map(String::as_str),
                Some("3600000"),
                "v{v}"
            );
            assert_eq!(b.get("broker.id").map(String::as_str), Some("0"), "v{v}");
            assert_eq!(
                b.get("advertised.listeners"),
                Some(&format!("PLAINTEXT://{}", broker.addr())),
                "v{v}"
            );
        }
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn selected_keys_unknown_resources_and_errors() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    client.create_topic("keys", 1).await;
    for v in versions(ApiKey::DescribeConfigs) {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            resource(
                TOPIC,
                "keys",
                Some(&["retention.ms", "segment.bytes", "no.such.key"]),
            ),
            resource(TOPIC, "missing", None),
            resource(BROKER, "7", None),
            resource(BROKER, "", Some(&["num.partitions"])),
            resource(3, "some-group", None),
        ]);
        let response = client.call(v, request).await;
        let r = &response.results;
        assert_eq!(
            values(&r[0]).keys().cloned().collect::<Vec<_>>(),
            ["retention.ms", "segment.bytes"],
            "v{v}"
        );
        assert_eq!(
            r[1].error_code,
            ErrorCode::UnknownTopicOrPartition.code(),
            "v{v}"
        );
        assert!(r[1].configs.is_empty());
        assert_eq!(r[2].error_code, ErrorCode::InvalidRequest.code(), "v{v}");
        // The cluster-wide default resource lists only dynamic defaults: none are set.
        assert_eq!((r[3].error_code, r[3].configs.len()), (0, 0), "v{v}");
        assert_eq!(r[4].error_code, ErrorCode::InvalidRequest.code(), "v{v}");
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn create_topics_accepts_known_configs_and_refuses_the_rest() {
    let broker = TestBroker::start_with(|c| c.auto_create_topics = false).await;
    let mut client = broker.client().await;
    let with_configs = |name: &str, configs: &[(&str, &str)]| {
        let configs = configs
            .iter()
            .map(|(k, v)| {
                CreatableTopicConfig::default()
                    .with_name(StrBytes::from_string((*k).to_owned()))
                    .with_value(Some(StrBytes::from_string((*v).to_owned())))
            })
            .collect();
        CreateTopicsRequest::default()
            .with_timeout_ms(5_000)
            .with_topics(vec![
                CreatableTopic::default()
                    .with_name(req::topic(name))
                    .with_num_partitions(1)
                    .with_replication_factor(1)
                    .with_configs(configs),
            ])
    };
    for v in versions(ApiKey::CreateTopics) {
        let same = client
            .call(
                v,
                with_configs(&format!("same-{v}"), &[("cleanup.policy", "delete")]),
            )
            .await;
        assert_eq!(same.topics[0].error_code, 0, "v{v}: {same:?}");
        for (key, value) in [
            ("cleanup.policy", "shred"),
            ("retention.ms", "-2"),
            ("made.up", "x"),
        ] {
            let name = format!("override-{v}");
            let refused = client.call(v, with_configs(&name, &[(key, value)])).await;
            assert_eq!(
                refused.topics[0].error_code,
                ErrorCode::InvalidConfig.code(),
                "v{v} {key}={value}"
            );
            let md = client
                .call(1, req::metadata(1, Some(&[name.as_str()])))
                .await;
            assert_eq!(
                md.topics[0].error_code,
                ErrorCode::UnknownTopicOrPartition.code(),
                "v{v}: created anyway"
            );
        }
    }
    broker.shutdown().await;
}
