//! Per-topic configuration and the config APIs against the real `weir-broker` binary:
//! CreateTopics with configs, DescribeConfigs' sources and synonyms, AlterConfigs and
//! IncrementalAlterConfigs on topics and the broker, changes applied live, and overrides that
//! survive a crash.

use std::path::Path;
use std::time::{Duration, Instant};

use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource as IncrementalResource, AlterableConfig as IncrementalConfig,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, CreateTopicsRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest,
};
use kafka_protocol::protocol::StrBytes;
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_tests::process::BrokerProcess;
use weir_tests::{Client, batch, req, versions};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;
const DYNAMIC_TOPIC: i8 = 1;
const DYNAMIC_BROKER: i8 = 2;
const DYNAMIC_DEFAULT_BROKER: i8 = 3;
const STATIC_BROKER: i8 = 4;
const DEFAULT: i8 = 5;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

struct Setup {
    _dir: tempfile::TempDir,
    broker: BrokerProcess,
}

fn start(extra: &[&str]) -> Setup {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    let log = dir.path().join("broker.log");
    let broker = BrokerProcess::start(&data, &log, extra);
    Setup { _dir: dir, broker }
}

async fn create(
    client: &mut Client,
    name: &str,
    configs: &[(&str, &str)],
    validate_only: bool,
) -> CreatableTopicResult {
    let configs = configs
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(s(k))
                .with_value(Some(s(v)))
        })
        .collect();
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5_000)
        .with_validate_only(validate_only)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(req::topic(name))
                .with_num_partitions(1)
                .with_replication_factor(1)
                .with_configs(configs),
        ]);
    let v = *versions(ApiKey::CreateTopics).end();
    let mut response = client.call(v, request).await;
    response.topics.remove(0)
}

async fn describe_at(
    client: &mut Client,
    version: i16,
    kind: i8,
    name: &str,
    keys: Option<&[&str]>,
    documentation: bool,
) -> DescribeConfigsResult {
    let request = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_include_documentation(documentation && version >= 3)
        .with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(kind)
                .with_resource_name(s(name))
                .with_configuration_keys(keys.map(|k| k.iter().map(|n| s(n)).collect())),
        ]);
    let mut response = client.call(version, request).await;
    response.results.remove(0)
}

async fn describe(client: &mut Client, kind: i8, name: &str) -> DescribeConfigsResult {
    let v = *versions(ApiKey::DescribeConfigs).end();
    describe_at(client, v, kind, name, None, false).await
}

fn entry<'a>(result: &'a DescribeConfigsResult, name: &str) -> &'a DescribeConfigsResourceResult {
    result
        .configs
        .iter()
        .find(|c| &*c.name == name)
        .unwrap_or_else(|| panic!("{name} missing from {result:?}"))
}

/// (value, source) of `name`.
fn value_of(result: &DescribeConfigsResult, name: &str) -> (String, i8) {
    let e = entry(result, name);
    (
        e.value.as_deref().unwrap_or_default().to_owned(),
        e.config_source,
    )
}

async fn incremental(
    client: &mut Client,
    kind: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, String) {
    let request = IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![
            IncrementalResource::default()
                .with_resource_type(kind)
                .with_resource_name(s(name))
                .with_configs(
                    ops.iter()
                        .map(|(k, op, v)| {
                            IncrementalConfig::default()
                                .with_name(s(k))
                                .with_config_operation(*op)
                                .with_value(v.map(s))
                        })
                        .collect(),
                ),
        ]);
    let mut response = client.call(0, request).await;
    let r = response.responses.remove(0);
    (
        r.error_code,
        r.error_message.as_deref().unwrap_or_default().to_owned(),
    )
}

async fn alter(
    client: &mut Client,
    version: i16,
    kind: i8,
    name: &str,
    entries: &[(&str, &str)],
) -> (i16, String) {
    let request = AlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(s(name))
            .with_configs(
                entries
                    .iter()
                    .map(|(k, v)| {
                        AlterableConfig::default()
                            .with_name(s(k))
                            .with_value(Some(s(v)))
                    })
                    .collect(),
            ),
    ]);
    let mut response = client.call(version, request).await;
    let r = response.responses.remove(0);
    (
        r.error_code,
        r.error_message.as_deref().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn create_with_configs_is_described_with_sources_and_synonyms() {
    let mut setup = start(&["--retention-ms", "3600000", "--auto-create-topics", "false"]);
    let mut client = Client::connect(setup.broker.addr()).await;
    let created = create(
        &mut client,
        "tuned",
        &[
            ("retention.ms", "5000"),
            ("cleanup.policy", "delete, compact"),
            ("segment.bytes", "65536"),
        ],
        false,
    )
    .await;
    assert_eq!(created.error_code, 0, "{created:?}");

    for v in versions(ApiKey::DescribeConfigs) {
        let result = describe_at(&mut client, v, TOPIC, "tuned", None, true).await;
        assert_eq!(result.error_code, 0, "v{v}");
        assert_eq!(
            value_of(&result, "retention.ms"),
            ("5000".into(), DYNAMIC_TOPIC)
        );
        assert_eq!(
            value_of(&result, "cleanup.policy"),
            ("delete,compact".into(), DYNAMIC_TOPIC)
        );
        assert_eq!(
            value_of(&result, "segment.bytes"),
            ("65536".into(), DYNAMIC_TOPIC)
        );
        assert_eq!(
            value_of(&result, "max.message.bytes"),
            ("1048588".into(), DEFAULT)
        );
        let retention = entry(&result, "retention.ms");
        assert!(!retention.read_only && !retention.is_sensitive);
        let synonyms: Vec<(String, String, i8)> = retention
            .synonyms
            .iter()
            .map(|s| {
                (
                    s.name.to_string(),
                    s.value.as_deref().unwrap_or_default().to_owned(),
                    s.source,
                )
            })
            .collect();
        assert_eq!(
            synonyms,
            [
                ("retention.ms".into(), "5000".into(), DYNAMIC_TOPIC),
                ("log.retention.ms".into(), "3600000".into(), STATIC_BROKER),
            ],
            "v{v}"
        );
        if v >= 3 {
            assert_eq!(retention.config_type, 5, "LONG");
            assert_eq!(entry(&result, "cleanup.policy").config_type, 7, "LIST");
            assert!(
                retention
                    .documentation
                    .as_deref()
                    .is_some_and(|d| d.contains("sealed segment is deleted")),
                "{retention:?}"
            );
        }
    }
    // Without include_documentation, none; only the keys asked for.
    let v = *versions(ApiKey::DescribeConfigs).end();
    let result = describe_at(
        &mut client,
        v,
        TOPIC,
        "tuned",
        Some(&["retention.ms", "no.such.key"]),
        false,
    )
    .await;
    assert_eq!(result.configs.len(), 1);
    assert!(
        result.configs[0]
            .documentation
            .as_deref()
            .is_none_or(str::is_empty),
        "documentation only when asked"
    );

    // validate_only creates nothing; bad keys and values are refused, naming the key.
    let checked = create(&mut client, "checked", &[("retention.ms", "10")], true).await;
    assert_eq!(checked.error_code, 0, "{checked:?}");
    assert_eq!(
        describe(&mut client, TOPIC, "checked").await.error_code,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    for (key, value, says) in [
        ("retention.ms", "soon", "between -1 and"),
        ("segment.bytes", "100", "between 4096 and"),
        ("cleanup.policy", "shred", "compact, delete"),
        ("made.up", "x", "made.up"),
    ] {
        for validate_only in [false, true] {
            let refused = create(&mut client, "refused", &[(key, value)], validate_only).await;
            assert_eq!(
                refused.error_code,
                ErrorCode::InvalidConfig.code(),
                "{key}={value}: {refused:?}"
            );
            let message = refused.error_message.as_deref().unwrap_or_default();
            assert!(message.contains(key) && message.contains(says), "{message}");
        }
    }
    assert_eq!(
        describe(&mut client, TOPIC, "refused").await.error_code,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    drop(client);
    assert!(setup.broker.stop());
}

#[tokio::test]
async fn incremental_and_full_alters_change_what_they_say() {
    let mut setup = start(&[]);
    let mut client = Client::connect(setup.broker.addr()).await;
    assert_eq!(
        create(&mut client, "alt", &[("retention.ms", "1000")], false)
            .await
            .error_code,
        0
    );

    let ok = incremental(
        &mut client,
        TOPIC,
        "alt",
        &[
            ("retention.ms", DELETE, None),
            ("segment.ms", SET, Some("60000")),
            ("cleanup.policy", APPEND, Some("compact")),
        ],
        false,
    )
    .await;
    assert_eq!(ok.0, 0, "{ok:?}");
    let result = describe(&mut client, TOPIC, "alt").await;
    assert_eq!(
        value_of(&result, "retention.ms"),
        ("604800000".into(), STATIC_BROKER)
    );
    assert_eq!(
        value_of(&result, "segment.ms"),
        ("60000".into(), DYNAMIC_TOPIC)
    );
    assert_eq!(
        value_of(&result, "cleanup.policy"),
        ("delete,compact".into(), DYNAMIC_TOPIC)
    );
    let ok = incremental(
        &mut client,
        TOPIC,
        "alt",
        &[("cleanup.policy", SUBTRACT, Some("delete"))],
        false,
    )
    .await;
    assert_eq!(ok.0, 0, "{ok:?}");
    assert_eq!(
        value_of(&describe(&mut client, TOPIC, "alt").await, "cleanup.policy"),
        ("compact".into(), DYNAMIC_TOPIC)
    );

    // validate_only checks and changes nothing.
    let checked = incremental(
        &mut client,
        TOPIC,
        "alt",
        &[("segment.ms", SET, Some("1234"))],
        true,
    )
    .await;
    assert_eq!(checked.0, 0);
    assert_eq!(
        value_of(&describe(&mut client, TOPIC, "alt").await, "segment.ms").0,
        "60000"
    );

    // Refusals change nothing either, and name the key.
    for (ops, code, says) in [
        (
            vec![("segment.ms", SET, Some("0"))],
            ErrorCode::InvalidConfig,
            "segment.ms",
        ),
        (
            vec![("retention.ms", APPEND, Some("5"))],
            ErrorCode::InvalidConfig,
            "not a list",
        ),
        (
            vec![("no.such", SET, Some("5"))],
            ErrorCode::InvalidConfig,
            "no.such",
        ),
        (
            vec![("segment.ms", SET, Some("5")), ("segment.ms", DELETE, None)],
            ErrorCode::InvalidRequest,
            "more than once",
        ),
        (
            vec![
                ("segment.ms", SET, Some("999")),
                ("min.cleanable.dirty.ratio", SET, Some("2")),
            ],
            ErrorCode::InvalidConfig,
            "min.cleanable.dirty.ratio",
        ),
    ] {
        let (got, message) = incremental(&mut client, TOPIC, "alt", &ops, false).await;
        assert_eq!(got, code.code(), "{ops:?}: {message}");
        assert!(message.contains(says), "{message}");
    }
    assert_eq!(
        value_of(&describe(&mut client, TOPIC, "alt").await, "segment.ms").0,
        "60000",
        "a refused change applies nothing"
    );
    let missing = incremental(
        &mut client,
        TOPIC,
        "missing",
        &[("segment.ms", SET, Some("5"))],
        false,
    )
    .await;
    assert_eq!(missing.0, ErrorCode::UnknownTopicOrPartition.code());
    let logger = incremental(
        &mut client,
        BROKER_LOGGER,
        "0",
        &[("root", SET, Some("DEBUG"))],
        false,
    )
    .await;
    assert_eq!(logger.0, ErrorCode::InvalidRequest.code());
    assert!(logger.1.contains("BROKER_LOGGER"), "{}", logger.1);
    let other = incremental(&mut client, 3, "g", &[("x", SET, Some("1"))], false).await;
    assert_eq!(other.0, ErrorCode::InvalidRequest.code());

    // AlterConfigs replaces the whole set.
    for v in versions(ApiKey::AlterConfigs) {
        let replaced = alter(
            &mut client,
            v,
            TOPIC,
            "alt",
            &[("retention.bytes", "1048576")],
        )
        .await;
        assert_eq!(replaced.0, 0, "v{v}: {replaced:?}");
        let result = describe(&mut client, TOPIC, "alt").await;
        assert_eq!(
            value_of(&result, "retention.bytes"),
            ("1048576".into(), DYNAMIC_TOPIC)
        );
        assert_eq!(value_of(&result, "segment.ms").1, STATIC_BROKER, "v{v}");
        assert_eq!(
            value_of(&result, "cleanup.policy"),
            ("delete".into(), DEFAULT),
            "v{v}"
        );
        let refused = alter(&mut client, v, TOPIC, "alt", &[("retention.bytes", "-7")]).await;
        assert_eq!(refused.0, ErrorCode::InvalidConfig.code(), "v{v}");
    }
    drop(client);
    assert!(setup.broker.stop());
}

#[tokio::test]
async fn broker_dynamic_configs_apply_to_topics_without_their_own() {
    let mut setup = start(&[]);
    let mut client = Client::connect(setup.broker.addr()).await;
    assert_eq!(create(&mut client, "plain", &[], false).await.error_code, 0);
    assert_eq!(
        create(&mut client, "own", &[("retention.ms", "777")], false)
            .await
            .error_code,
        0
    );

    let set = incremental(
        &mut client,
        BROKER,
        "0",
        &[("log.retention.ms", SET, Some("12345"))],
        false,
    )
    .await;
    assert_eq!(set.0, 0, "{set:?}");
    let set = incremental(
        &mut client,
        BROKER,
        "",
        &[
            ("log.cleaner.threads", SET, Some("2")),
            ("log.segment.bytes", SET, Some("1048576")),
        ],
        false,
    )
    .await;
    assert_eq!(set.0, 0, "{set:?}");
    let plain = describe(&mut client, TOPIC, "plain").await;
    assert_eq!(
        value_of(&plain, "retention.ms"),
        ("12345".into(), DYNAMIC_BROKER)
    );
    assert_eq!(
        value_of(&plain, "segment.bytes"),
        ("1048576".into(), DYNAMIC_DEFAULT_BROKER)
    );
    assert_eq!(
        value_of(&describe(&mut client, TOPIC, "own").await, "retention.ms"),
        ("777".into(), DYNAMIC_TOPIC)
    );

    let this = describe(&mut client, BROKER, "0").await;
    assert_eq!(
        value_of(&this, "log.retention.ms"),
        ("12345".into(), DYNAMIC_BROKER)
    );
    assert_eq!(
        value_of(&this, "log.cleaner.threads"),
        ("2".into(), DYNAMIC_DEFAULT_BROKER)
    );
    assert_eq!(
        value_of(&this, "log.cleaner.backoff.ms"),
        ("15000".into(), DEFAULT)
    );
    assert!(!entry(&this, "log.retention.ms").read_only);
    let listeners = entry(&this, "listeners");
    assert!(listeners.read_only);
    assert_eq!(listeners.config_source, STATIC_BROKER);
    let defaults = describe(&mut client, BROKER, "").await;
    let names: Vec<&str> = defaults.configs.iter().map(|c| &*c.name).collect();
    assert_eq!(names, ["log.cleaner.threads", "log.segment.bytes"]);

    for (name, says) in [
        ("listeners", "read-only"),
        ("log.flush.interval.ms", "read-only"),
        ("retention.ms", "unknown broker config"),
    ] {
        let (code, message) =
            incremental(&mut client, BROKER, "0", &[(name, SET, Some("1"))], false).await;
        assert_eq!(code, ErrorCode::InvalidConfig.code(), "{name}");
        assert!(
            message.contains(name) && message.contains(says),
            "{message}"
        );
    }
    let other = incremental(
        &mut client,
        BROKER,
        "7",
        &[("log.retention.ms", SET, Some("1"))],
        false,
    )
    .await;
    assert_eq!(other.0, ErrorCode::InvalidRequest.code());

    // Deleting the broker's own value falls back to the lower layers.
    let del = incremental(
        &mut client,
        BROKER,
        "0",
        &[("log.retention.ms", DELETE, None)],
        false,
    )
    .await;
    assert_eq!(del.0, 0);
    assert_eq!(
        value_of(&describe(&mut client, TOPIC, "plain").await, "retention.ms"),
        ("604800000".into(), STATIC_BROKER)
    );
    drop(client);
    assert!(setup.broker.stop());
}

/// A catalog as today's main writes it: one topic, no config lines.
fn write_old_catalog(data: &Path) {
    std::fs::create_dir_all(data).expect("data directory");
    let body = "topic legacy 1\n";
    let crc = crc32fast::hash(body.as_bytes());
    std::fs::write(data.join("topics"), format!("{body}crc32 {crc:08x}\n")).expect("catalog");
}

#[tokio::test]
async fn overrides_and_broker_configs_survive_a_crash_and_old_catalogs_open() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    write_old_catalog(&data);
    let mut broker = BrokerProcess::start(&data, &dir.path().join("broker.log"), &[]);
    let mut client = Client::connect(broker.addr()).await;
    let legacy = describe(&mut client, TOPIC, "legacy").await;
    assert_eq!(legacy.error_code, 0, "the old catalog's topic is there");
    assert_eq!(value_of(&legacy, "retention.ms").1, STATIC_BROKER);

    assert_eq!(
        create(&mut client, "kept", &[("cleanup.policy", "compact")], false)
            .await
            .error_code,
        0
    );
    let set = incremental(
        &mut client,
        TOPIC,
        "legacy",
        &[("retention.bytes", SET, Some("99999"))],
        false,
    )
    .await;
    assert_eq!(set.0, 0);
    let set = incremental(
        &mut client,
        BROKER,
        "0",
        &[("log.cleaner.backoff.ms", SET, Some("500"))],
        false,
    )
    .await;
    assert_eq!(set.0, 0);
    drop(client);
    // Acknowledged means durable: a crash right after loses nothing.
    broker.kill9();
    broker.restart();
    let mut client = Client::connect(broker.addr()).await;
    assert_eq!(
        value_of(
            &describe(&mut client, TOPIC, "kept").await,
            "cleanup.policy"
        ),
        ("compact".into(), DYNAMIC_TOPIC)
    );
    assert_eq!(
        value_of(
            &describe(&mut client, TOPIC, "legacy").await,
            "retention.bytes"
        ),
        ("99999".into(), DYNAMIC_TOPIC)
    );
    assert_eq!(
        value_of(
            &describe(&mut client, BROKER, "0").await,
            "log.cleaner.backoff.ms"
        ),
        ("500".into(), DYNAMIC_BROKER)
    );
    drop(client);
    assert!(broker.stop());
}

#[tokio::test]
async fn a_retention_change_applies_without_a_restart() {
    let mut setup = start(&["--retention-check-ms", "100"]);
    let mut client = Client::connect(setup.broker.addr()).await;
    // Small segments, kept forever; the records' timestamps are in 2023.
    let created = create(
        &mut client,
        "aging",
        &[("segment.bytes", "4096"), ("retention.ms", "-1")],
        false,
    )
    .await;
    assert_eq!(created.error_code, 0, "{created:?}");
    for _ in 0..80 {
        client.produce_ok("aging", 0, batch(20)).await;
    }
    let segments = |dir: &Path| {
        std::fs::read_dir(dir.join("aging-0"))
            .expect("partition directory")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".log"))
            })
            .count()
    };
    let data = setup._dir.path().join("data");
    let before = segments(&data);
    assert!(before > 2, "segment.bytes=4096 rolled: {before} segments");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        client.list_offset("aging", 0, -2).await,
        0,
        "retention.ms=-1 keeps everything"
    );

    let set = incremental(
        &mut client,
        TOPIC,
        "aging",
        &[("retention.ms", SET, Some("1000"))],
        false,
    )
    .await;
    assert_eq!(set.0, 0, "{set:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let start = client.list_offset("aging", 0, -2).await;
        if start > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old segments still there after the change"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        segments(&data),
        1,
        "every sealed segment is past retention.ms"
    );
    drop(client);
    assert!(setup.broker.stop());
}
