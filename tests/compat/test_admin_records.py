"""The admin APIs of issue 15 from real admin clients: DeleteRecords (confluent-kafka's
AdminClient.delete_records and kafka-python's KafkaAdminClient.delete_records, as
kafka-python's own test_delete_records and test_delete_records_with_errors use it), ListOffsets
earliest after it, OffsetDelete (delete_consumer_group_offsets / delete_group_offsets, after
alter_consumer_group_offsets), DescribeCluster and DescribeLogDirs; the trimmed start kept
across a restart and a crash of the broker."""

from __future__ import annotations

import pytest
from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec
from kafka import KafkaAdminClient, KafkaConsumer
from kafka import TopicPartition as KpTopicPartition
from kafka.errors import (
    BrokerResponseError,
    GroupIdNotFoundError,
    NoError,
    OffsetOutOfRangeError,
    UnknownTopicOrPartitionError,
)

from helpers import create_topic, read_partitions, wait_for_group_coordinator


def _produce(bootstrap: str, topic: str, partition: int, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    failures = []
    for i in range(count):
        producer.produce(
            topic, value=b"%d" % i, partition=partition,
            on_delivery=lambda err, _msg: failures.append(err) if err else None,
        )
    assert producer.flush(30) == 0, "records never acknowledged"
    assert failures == [], failures


def _earliest(admin: AdminClient, topic: str, partition: int) -> int:
    tp = TopicPartition(topic, partition)
    futures = admin.list_offsets({tp: OffsetSpec.earliest()}, request_timeout=15)
    return futures[tp].result(timeout=15).offset


def test_confluent_delete_records(broker):
    topic = "ck-trim"
    create_topic(broker.bootstrap, topic, 2)
    _produce(broker.bootstrap, topic, 0, 100)
    _produce(broker.bootstrap, topic, 1, 10)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})

    futures = admin.delete_records(
        [TopicPartition(topic, 0, 60), TopicPartition(topic, 1, -1)],  # -1: the high watermark
        request_timeout=15,
    )
    results = {tp.partition: f.result(timeout=15) for tp, f in futures.items()}
    assert results[0].low_watermark == 60
    assert results[1].low_watermark == 10
    assert _earliest(admin, topic, 0) == 60
    assert _earliest(admin, topic, 1) == 10

    # The records left read back from the new start; nothing below it.
    records = read_partitions(broker.bootstrap, topic, 2)
    assert [r[0] for r in records[0]] == list(range(60, 100))
    assert [r[2] for r in records[0]] == [b"%d" % i for i in range(60, 100)]
    assert records[1] == []

    # Past the high watermark: OFFSET_OUT_OF_RANGE, and nothing moves.
    futures = admin.delete_records([TopicPartition(topic, 0, 101)], request_timeout=15)
    with pytest.raises(KafkaException) as refused:
        next(iter(futures.values())).result(timeout=15)
    assert refused.value.args[0].name() == "OFFSET_OUT_OF_RANGE", refused.value
    assert _earliest(admin, topic, 0) == 60

    # Kept across a restart and a crash.
    broker.stop_clean()
    broker.restart()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    assert _earliest(admin, topic, 0) == 60
    futures = admin.delete_records([TopicPartition(topic, 0, 80)], request_timeout=15)
    assert next(iter(futures.values())).result(timeout=15).low_watermark == 80
    broker.kill9()
    broker.restart()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    assert _earliest(admin, topic, 0) == 80
    records = read_partitions(broker.bootstrap, topic, 2)
    assert [r[0] for r in records[0]] == list(range(80, 100))


def test_confluent_describe_cluster(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    described = admin.describe_cluster(include_authorized_operations=True, request_timeout=15)
    result = described.result(timeout=15)
    assert result.cluster_id == (broker.data_dir / "cluster-id").read_text().strip()
    assert result.controller.id == 0
    assert [(n.id, n.host, n.port) for n in result.nodes] == [(0, "127.0.0.1", broker.port)]
    # librdkafka answers describe_cluster from a Metadata request (v8+ for the authorized
    # operations, above the served range), so they stay unknown here; DescribeCluster itself
    # is exercised by kafka-python's describe_cluster below.
    assert result.authorized_operations is None


def test_confluent_group_offsets_after_offset_delete(broker):
    """confluent-kafka 2.16's AdminClient has no delete_consumer_group_offsets: it commits with
    alter_consumer_group_offsets, kafka-python's delete_group_offsets deletes one partition's
    offset, and confluent-kafka's list_consumer_group_offsets no longer finds it, also after a
    crash of the broker."""
    topic = "ck-offsets"
    group = "ck-offsets-group"
    create_topic(broker.bootstrap, topic, 2)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    _produce(broker.bootstrap, topic, 0, 5)
    _produce(broker.bootstrap, topic, 1, 5)
    altered = admin.alter_consumer_group_offsets([
        ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 4)])
    ])
    altered[group].result(timeout=15)
    wait_for_group_coordinator(broker.bootstrap, group)

    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        assert kp.delete_group_offsets(group, [KpTopicPartition(topic, 0)]) == {
            KpTopicPartition(topic, 0): NoError
        }
    finally:
        kp.close()

    def committed(admin: AdminClient) -> dict[int, int]:
        listed = admin.list_consumer_group_offsets([
            ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0), TopicPartition(topic, 1)])
        ])
        return {tp.partition: tp.offset for tp in listed[group].result(timeout=15).topic_partitions}

    offsets = committed(admin)
    assert offsets[0] < 0, offsets  # nothing committed any more
    assert offsets[1] == 4
    broker.kill9()
    broker.restart()
    offsets = committed(AdminClient({"bootstrap.servers": broker.bootstrap}))
    assert offsets[0] < 0 and offsets[1] == 4, offsets


def test_kafka_python_delete_records(broker):
    """kafka-python's test_delete_records: three partitions of 100 records, trimmed to the
    high watermark (-1), to the middle and to the end; a consumer then reads from the new
    starts."""
    topic = "kp-trim"
    create_topic(broker.bootstrap, topic, 3)
    for p in range(3):
        _produce(broker.bootstrap, topic, p, 100)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        t0p0, t0p1, t0p2 = (KpTopicPartition(topic, p) for p in range(3))
        deleted = admin.delete_records({t0p0: -1, t0p1: 50, t0p2: 100})
        assert deleted[t0p0]["low_watermark"] == 100
        assert deleted[t0p1]["low_watermark"] == 50
        assert deleted[t0p2]["low_watermark"] == 100

        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, consumer_timeout_ms=5000)
        try:
            consumer.assign([t0p0, t0p1, t0p2])
            consumer.seek_to_beginning()
            assert consumer.position(t0p0) == 100
            assert consumer.position(t0p1) == 50
            assert consumer.position(t0p2) == 100
            offsets = sorted(m.offset for m in consumer if m.partition == 1)
            assert offsets == list(range(50, 100))
        finally:
            consumer.close()
    finally:
        admin.close()


def test_kafka_python_delete_records_with_errors(broker):
    """kafka-python's test_delete_records_with_errors: unknown partition and topic, an
    offset past the end, and two failures in one call."""
    topic = "kp-trim-errors"
    create_topic(broker.bootstrap, topic, 3)
    _produce(broker.bootstrap, topic, 2, 1)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        p0, p1 = KpTopicPartition(topic, 0), KpTopicPartition(topic, 1)
        with pytest.raises(UnknownTopicOrPartitionError):
            admin.delete_records({KpTopicPartition(topic, 9999): -1})
        with pytest.raises(UnknownTopicOrPartitionError):
            admin.delete_records({KpTopicPartition("kp-doesnt-exist", 0): -1})
        with pytest.raises(OffsetOutOfRangeError):
            admin.delete_records({p0: 1000})
        with pytest.raises(BrokerResponseError):
            admin.delete_records({p0: 1000, p1: 1000})
    finally:
        admin.close()


def test_kafka_python_describe_log_dirs_and_cluster(broker):
    topic = "kp-dirs"
    create_topic(broker.bootstrap, topic, 2)
    _produce(broker.bootstrap, topic, 1, 20)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        described = admin.describe_log_dirs()
        assert [d["broker"] for d in described] == [0]
        (log_dir,) = described[0]["log_dirs"]
        assert log_dir["error_code"] == 0
        assert log_dir["log_dir"] == str(broker.data_dir.resolve())
        sizes = {
            (t["name"], p["partition_index"]): p["partition_size"]
            for t in log_dir["topics"] for p in t["partitions"]
        }
        assert sizes[(topic, 0)] == 0
        assert sizes[(topic, 1)] > 20
        cluster = admin.describe_cluster()
        assert cluster["controller_id"] == 0
        assert [(b["broker_id"], b["host"], b["port"]) for b in cluster["brokers"]] == [
            (0, "127.0.0.1", broker.port)
        ]
        assert cluster["cluster_id"] == (broker.data_dir / "cluster-id").read_text().strip()
    finally:
        admin.close()


def test_kafka_python_delete_group_offsets(broker):
    topic = "kp-offsets"
    group = "kp-offsets-group"
    create_topic(broker.bootstrap, topic, 2)
    wait_for_group_coordinator(broker.bootstrap, group)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        from kafka.structs import OffsetAndMetadata

        admin.alter_group_offsets(group, {
            KpTopicPartition(topic, 0): OffsetAndMetadata(0, "", -1),
            KpTopicPartition(topic, 1): OffsetAndMetadata(0, "", -1),
        })
        result = admin.delete_group_offsets(group, [KpTopicPartition(topic, 1)])
        assert result == {KpTopicPartition(topic, 1): NoError}, result
        left = admin.list_group_offsets(group)[group]
        assert {tp: o.offset for tp, o in left.items() if o.offset >= 0} == {
            KpTopicPartition(topic, 0): 0
        }, left
        with pytest.raises(GroupIdNotFoundError):
            admin.delete_group_offsets("kp-no-such-group", [KpTopicPartition(topic, 0)])
    finally:
        admin.close()
