"""confluent-kafka (librdkafka) against weir-broker: the idempotent producer, an assign()-ed
consumer, and the AdminClient."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from conftest import DEFAULT_SEGMENT_BYTES
from helpers import assert_contiguous, create_topic, read_partitions
from kafka_peer import kafka_mode


def test_idempotent_producer_and_assigned_consumer(broker):
    topic = "ck-idempotent"
    partitions = 3
    n = 6000
    create_topic(broker.bootstrap, topic, partitions)
    producer = Producer({
        "bootstrap.servers": broker.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
    })
    reports: list[tuple[int, KafkaError | None, int, int]] = []

    def on_delivery(err, msg, i):
        # Bound per message so a report can never be attributed to the wrong record.
        reports.append((i, err, msg.partition(), msg.offset()))

    sent = []
    for i in range(n):
        key = b"key-%d" % i
        value = b"value-%d-" % i + bytes([i % 256]) * (i % 50)
        headers = [("seq", str(i).encode()), ("null-header", None)] if i % 3 == 0 else None
        sent.append((key, value, headers))
        while True:
            try:
                producer.produce(
                    topic, key=key, value=value, headers=headers, partition=i % partitions,
                    on_delivery=lambda err, msg, i=i: on_delivery(err, msg, i),
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(60)
    assert remaining == 0, f"{remaining} records were never acknowledged"

    errors = [(i, err) for i, err, _, _ in reports if err is not None]
    assert errors == [], f"{len(errors)} delivery failures, first: {errors[:3]}"
    assert sorted(i for i, *_ in reports) == list(range(n)), "missing or repeated delivery reports"
    # In each partition the acknowledged offsets follow production order: 0, 1, 2, ...
    acked: dict[int, list[tuple[int, int]]] = {}
    for i, _, p, o in sorted(reports):
        assert p == i % partitions, f"record {i} went to partition {p}"
        acked.setdefault(p, []).append((o, i))
    for p, offsets in acked.items():
        assert [o for o, _ in offsets] == list(range(len(offsets))), (
            f"partition {p}: acknowledged offsets are not 0, 1, 2, ...: {offsets[:10]}"
        )

    got = read_partitions(broker.bootstrap, topic, partitions)
    for p in range(partitions):
        assert_contiguous(got[p])
        expected = [sent[i] for _, i in acked[p]]
        actual = [(k, v, h) for _, k, v, h, _ in got[p]]
        assert len(actual) == len(expected), f"partition {p}: {len(actual)} read, {len(expected)} sent"
        for idx, (a, e) in enumerate(zip(actual, expected)):
            assert a == e, f"partition {p} offset {idx}: read {a!r}, sent {e!r}"


def _admin(broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def _create_error(admin: AdminClient, topic: NewTopic) -> KafkaError:
    future = admin.create_topics([topic], operation_timeout=10)[topic.topic]
    with pytest.raises(KafkaException) as info:
        future.result(timeout=15)
    return info.value.args[0]


def test_admin_create_list_delete(broker):
    admin = _admin(broker)
    futures = admin.create_topics(
        [NewTopic("ck-admin-a", 4, 1), NewTopic("ck-admin-b", 1, 1)], operation_timeout=10
    )
    assert sorted(futures) == ["ck-admin-a", "ck-admin-b"]
    for name, future in futures.items():
        assert future.result(timeout=15) is None, name

    listed = admin.list_topics(timeout=10)
    assert {"ck-admin-a", "ck-admin-b"} <= set(listed.topics), listed.topics
    a = listed.topics["ck-admin-a"]
    assert a.error is None, a.error
    assert sorted(a.partitions) == [0, 1, 2, 3]
    for p in a.partitions.values():
        assert p.error is None and p.leader == 0 and p.replicas == [0] and p.isrs == [0], p
    assert list(listed.brokers) == [0]
    assert f"{listed.brokers[0].host}:{listed.brokers[0].port}" == broker.bootstrap

    # Errors: an existing topic, and names Kafka refuses.
    err = _create_error(admin, NewTopic("ck-admin-a", 1, 1))
    assert err.code() == KafkaError.TOPIC_ALREADY_EXISTS, err
    for bad in ["bad name", "slash/name", "..", ".", "x" * 250, "caf\u00e9"]:
        err = _create_error(admin, NewTopic(bad, 1, 1))
        # Kafka's INVALID_TOPIC_EXCEPTION (17); librdkafka calls it TOPIC_EXCEPTION.
        assert err.code() == KafkaError.TOPIC_EXCEPTION, (bad, err)
    err = _create_error(admin, NewTopic("ck-admin-zero", 0, 1))
    assert err.code() == KafkaError.INVALID_PARTITIONS, err
    assert "ck-admin-zero" not in admin.list_topics(timeout=10).topics

    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    for i in range(100):
        producer.produce("ck-admin-a", value=b"old-%d" % i, partition=i % 4)
    assert producer.flush(30) == 0

    futures = admin.delete_topics(["ck-admin-a"], operation_timeout=10)
    assert futures["ck-admin-a"].result(timeout=15) is None
    # Deletion is complete once metadata no longer lists the topic (Kafka may lag briefly).
    deadline = time.monotonic() + 10
    while "ck-admin-a" in admin.list_topics(timeout=10).topics:
        assert time.monotonic() < deadline, "deleted topic still listed after 10 s"
        time.sleep(0.2)
    assert "ck-admin-b" in admin.list_topics(timeout=10).topics

    # A topic created again under the deleted name starts empty, with its new partition count.
    create_topic(broker.bootstrap, "ck-admin-a", 1)
    # Listed once metadata has it (immediately on Weir; Kafka's brokers may lag briefly).
    deadline = time.monotonic() + 10
    while "ck-admin-a" not in admin.list_topics(timeout=10).topics:
        assert time.monotonic() < deadline, "re-created topic not listed after 10 s"
        time.sleep(0.2)
    meta = admin.list_topics(timeout=10).topics["ck-admin-a"]
    assert sorted(meta.partitions) == [0]
    assert read_partitions(broker.bootstrap, "ck-admin-a", 1) == {0: []}

    future = admin.delete_topics(["ck-admin-never-existed"], operation_timeout=10)[
        "ck-admin-never-existed"
    ]
    with pytest.raises(KafkaException) as info:
        future.result(timeout=15)
    assert info.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_admin_describe_topic_configs(broker):
    admin = _admin(broker)
    create_topic(broker.bootstrap, "ck-configs", 2)
    resource = ConfigResource(ConfigResource.Type.TOPIC, "ck-configs")
    entries = admin.describe_configs([resource], request_timeout=15)[resource].result(timeout=20)
    names = sorted(entries)
    for name, entry in entries.items():
        assert entry.name == name
        # Kafka's replication throttles are lists whose default is empty.
        if not entry.is_sensitive and not name.endswith(".replication.throttled.replicas"):
            assert entry.value not in (None, ""), f"{name} has no value: {entry}"
    expected = {
        "cleanup.policy": "delete",
        "retention.ms": "604800000",
        "retention.bytes": "-1",
        # The fixture's --segment-bytes for Weir; Kafka's default (1 GiB) in Kafka mode.
        "segment.bytes": str(1 << 30 if kafka_mode() else DEFAULT_SEGMENT_BYTES),
        "segment.ms": "604800000",
    }
    for name, value in expected.items():
        assert name in entries, f"{name} missing from DescribeConfigs; got {names}"
        assert entries[name].value == value, f"{name}: got {entries[name].value!r}, want {value!r}"
    for name in ["max.message.bytes", "message.timestamp.type", "compression.type"]:
        assert name in entries, f"{name} missing from DescribeConfigs; got {names}"

    missing = ConfigResource(ConfigResource.Type.TOPIC, "ck-configs-missing")
    with pytest.raises(KafkaException) as info:
        admin.describe_configs([missing], request_timeout=15)[missing].result(timeout=20)
    assert info.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, info.value
