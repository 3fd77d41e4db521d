"""Per-topic configuration and the config APIs from real admin clients.

confluent-kafka's AdminClient: create_topics with configs, describe_configs (sources and
synonyms), incremental_alter_configs (SET, DELETE, APPEND, SUBTRACT, validate_only) and the
legacy alter_configs (replaces the whole set), on topics and on the broker. kafka-python's
KafkaAdminClient: describe_configs and alter_configs, incremental and not. Overrides survive a
restart of the broker."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
)

from kafka_peer import kafka_mode, weir_only

TOPIC = ConfigResource.Type.TOPIC
BROKER = ConfigResource.Type.BROKER


def _admin(broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def _describe(admin: AdminClient, kind, name: str) -> dict:
    resource = ConfigResource(kind, name)
    return admin.describe_configs([resource], request_timeout=15)[resource].result(timeout=20)


def _incremental(admin: AdminClient, kind, name: str, entries, validate_only=False) -> None:
    resource = ConfigResource(kind, name, incremental_configs=entries)
    futures = admin.incremental_alter_configs([resource], validate_only=validate_only, request_timeout=15)
    futures[resource].result(timeout=20)


def _op(name: str, value, op) -> ConfigEntry:
    return ConfigEntry(name, value, incremental_operation=op)


def test_confluent_create_describe_and_alter_topic_configs(broker):
    admin = _admin(broker)
    topic = "ck-topic-configs"
    futures = admin.create_topics(
        [NewTopic(topic, 1, 1, config={"retention.ms": "5000", "cleanup.policy": "compact"})],
        operation_timeout=10,
    )
    futures[topic].result(timeout=20)

    entries = _describe(admin, TOPIC, topic)
    assert entries["retention.ms"].value == "5000"
    assert entries["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert not entries["retention.ms"].is_read_only
    synonyms = {s.name: s.value for s in entries["retention.ms"].synonyms.values()}
    if kafka_mode():
        # Kafka sets log.retention.hours, not log.retention.ms, so its synonyms differ; and
        # the rest checks how Weir's flags are reported (STATIC_BROKER_CONFIG).
        assert list(synonyms.items())[0] == ("retention.ms", "5000"), synonyms
        weir_only("Weir's broker flags reported as broker configs (log.retention.ms, segment.ms)")
    assert synonyms == {"retention.ms": "5000", "log.retention.ms": "604800000"}, synonyms
    assert entries["cleanup.policy"].value == "compact"
    assert entries["segment.ms"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert entries["max.message.bytes"].source == ConfigSource.DEFAULT_CONFIG.value

    _incremental(admin, TOPIC, topic, [
        _op("retention.ms", None, AlterConfigOpType.DELETE),
        _op("segment.ms", "60000", AlterConfigOpType.SET),
        _op("cleanup.policy", "delete", AlterConfigOpType.APPEND),
    ])
    entries = _describe(admin, TOPIC, topic)
    assert entries["retention.ms"].value == "604800000"
    assert entries["retention.ms"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert entries["segment.ms"].value == "60000"
    assert entries["cleanup.policy"].value == "compact,delete"
    _incremental(admin, TOPIC, topic, [_op("cleanup.policy", "compact", AlterConfigOpType.SUBTRACT)])
    assert _describe(admin, TOPIC, topic)["cleanup.policy"].value == "delete"

    # validate_only changes nothing.
    _incremental(admin, TOPIC, topic, [_op("segment.ms", "1234", AlterConfigOpType.SET)], validate_only=True)
    assert _describe(admin, TOPIC, topic)["segment.ms"].value == "60000"

    # A bad value is INVALID_CONFIG, naming the key and the range.
    with pytest.raises(KafkaException) as info:
        _incremental(admin, TOPIC, topic, [_op("segment.bytes", "100", AlterConfigOpType.SET)])
    err = info.value.args[0]
    assert err.code() == KafkaError.INVALID_CONFIG, err
    assert "segment.bytes" in err.str() and "between 4096 and" in err.str(), err.str()
    bad = "ck-topic-configs-bad"
    futures = admin.create_topics([NewTopic(bad, 1, 1, config={"no.such.config": "1"})], operation_timeout=10)
    with pytest.raises(KafkaException) as info:
        futures[bad].result(timeout=20)
    assert info.value.args[0].code() == KafkaError.INVALID_CONFIG

    # The legacy AlterConfigs replaces the whole set of overrides.
    resource = ConfigResource(TOPIC, topic, set_config={"retention.bytes": "1048576"})
    with pytest.warns(DeprecationWarning):
        futures = admin.alter_configs([resource], request_timeout=15)
    futures[resource].result(timeout=20)
    entries = _describe(admin, TOPIC, topic)
    assert entries["retention.bytes"].value == "1048576"
    assert entries["segment.ms"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert entries["cleanup.policy"].source == ConfigSource.DEFAULT_CONFIG.value

    # Durable: still there after a crash and a restart.
    broker.kill9()
    broker.restart()
    admin = _admin(broker)
    assert _describe(admin, TOPIC, topic)["retention.bytes"].value == "1048576"


def test_confluent_broker_dynamic_configs(broker):
    admin = _admin(broker)
    topic = "ck-broker-configs"
    admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=10)[topic].result(timeout=20)
    _incremental(admin, BROKER, "0", [_op("log.retention.ms", "3600000", AlterConfigOpType.SET)])
    # Kafka's broker applies a dynamic config a moment after the answer (from the metadata
    # log); Weir's before it.
    deadline = time.monotonic() + 10
    while (entries := _describe(admin, BROKER, "0"))["log.retention.ms"].value != "3600000":
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert entries["log.retention.ms"].value == "3600000"
    assert entries["log.retention.ms"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    topic_entries = _describe(admin, TOPIC, topic)
    assert topic_entries["retention.ms"].value == "3600000"
    assert topic_entries["retention.ms"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    if kafka_mode():
        # Kafka can add listeners at run time (a per-broker dynamic config); Weir cannot.
        weir_only("`listeners` read-only (Kafka updates it dynamically)")
    assert entries["listeners"].is_read_only
    with pytest.raises(KafkaException) as info:
        _incremental(admin, BROKER, "0", [_op("listeners", "PLAINTEXT://:1", AlterConfigOpType.SET)])
    assert info.value.args[0].code() == KafkaError.INVALID_CONFIG


def test_kafka_python_describe_and_alter_configs(broker):
    from kafka.admin import ConfigResource as KpResource
    from kafka.admin import ConfigResourceType, KafkaAdminClient, NewTopic as KpTopic

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        topic = "kp-topic-configs"
        admin.create_topics([KpTopic(topic, 1, 1, topic_configs={"retention.ms": "7000"})])
        described = admin.describe_configs([KpResource(ConfigResourceType.TOPIC, topic)], include_synonyms=True)
        modified = described["topic"][topic]
        assert modified["retention.ms"]["value"] == "7000", modified
        assert modified["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"

        # Incremental (the default against a broker that has it) and the legacy full replacement.
        result = admin.alter_configs([KpResource(ConfigResourceType.TOPIC, topic, configs={"segment.ms": "60000"})])
        assert result["topic"][topic] == "OK", result
        result = admin.alter_configs(
            [KpResource(ConfigResourceType.TOPIC, topic, configs={"retention.bytes": "2097152"})],
            incremental=False,
        )
        assert result["topic"][topic] == "OK", result
        every = admin.describe_configs([KpResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
        configs = every["topic"][topic]
        assert configs["segment.ms"]["value"] == "60000"
        assert configs["retention.bytes"]["value"] == "2097152"
        # kafka-python carried the other overrides over (AlterConfigs replaces the whole set).
        assert configs["retention.ms"]["value"] == "7000"
        result = admin.alter_configs(
            [KpResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "nope"})],
        )
        assert "InvalidConfig" in result["topic"][topic] and "retention.ms" in result["topic"][topic], result
    finally:
        admin.close()
