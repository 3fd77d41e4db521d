"""CreatePartitions (key 37) from real admin clients: confluent-kafka's
AdminClient.create_partitions and kafka-python's KafkaAdminClient.create_partitions grow a
topic, refuse a shrink, and the new partition takes records that read back."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewPartitions

from helpers import create_topic, read_partitions


def _produce(bootstrap: str, topic: str, partition: int, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    failures = []
    for v in values:
        producer.produce(
            topic, value=v, partition=partition,
            on_delivery=lambda err, _msg: failures.append(err) if err else None,
        )
    assert producer.flush(30) == 0, "records never acknowledged"
    assert failures == [], failures


def _partition_count(admin: AdminClient, topic: str) -> int:
    return len(admin.list_topics(topic, timeout=10).topics[topic].partitions)


def test_confluent_create_partitions(broker):
    topic = "ck-grow"
    create_topic(broker.bootstrap, topic, 1)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})

    # validate_only changes nothing.
    futures = admin.create_partitions([NewPartitions(topic, 3)], validate_only=True)
    futures[topic].result(timeout=15)
    assert _partition_count(admin, topic) == 1

    futures = admin.create_partitions([NewPartitions(topic, 3)], operation_timeout=10)
    futures[topic].result(timeout=15)
    assert _partition_count(admin, topic) == 3

    # Grow only: the same count or fewer is refused with INVALID_PARTITIONS.
    for count in (3, 2):
        futures = admin.create_partitions([NewPartitions(topic, count)])
        with pytest.raises(KafkaException) as refused:
            futures[topic].result(timeout=15)
        assert refused.value.args[0].name() == "INVALID_PARTITIONS", refused.value
    futures = admin.create_partitions([NewPartitions("ck-no-such-topic", 2)])
    with pytest.raises(KafkaException) as unknown:
        futures["ck-no-such-topic"].result(timeout=15)
    assert unknown.value.args[0].name() == "UNKNOWN_TOPIC_OR_PART", unknown.value

    # A manual assignment naming this broker (node 0) is accepted.
    futures = admin.create_partitions([NewPartitions(topic, 4, replica_assignment=[[0]])])
    futures[topic].result(timeout=15)
    assert _partition_count(admin, topic) == 4

    values = [b"new-%d" % i for i in range(5)]
    _produce(broker.bootstrap, topic, 3, values)
    got = read_partitions(broker.bootstrap, topic, 4)
    assert [(o, v) for o, _k, v, _h, _t in got[3]] == list(enumerate(values))
    assert got[1] == [] and got[2] == []

    # And after a restart the topic still has its four partitions and the records.
    broker.stop_clean()
    broker.restart()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    assert _partition_count(admin, topic) == 4
    got = read_partitions(broker.bootstrap, topic, 4)
    assert [v for _o, _k, v, _h, _t in got[3]] == values


def test_kafka_python_create_partitions(broker):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewPartitions
    from kafka.errors import InvalidPartitionsError

    topic = "kp-grow"
    create_topic(broker.bootstrap, topic, 2)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        response = admin.create_partitions({topic: NewPartitions(total_count=5)})
        _assert_no_errors(response)
        # Kafka's broker serves the new partitions a moment after the answer (when it applies
        # the metadata record); Weir's before it.
        deadline = time.monotonic() + 10
        while (got := sorted(
            p["partition_index"] for p in admin.describe_topics([topic])[0]["partitions"]
        )) != [0, 1, 2, 3, 4] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert got == [0, 1, 2, 3, 4]
        with pytest.raises(InvalidPartitionsError):
            _assert_no_errors(admin.create_partitions({topic: NewPartitions(total_count=4)}))
    finally:
        admin.close()

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    try:
        values = [b"kp-%d" % i for i in range(4)]
        for v in values:
            producer.send(topic, value=v, partition=4).get(timeout=30)
    finally:
        producer.close()

    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap, enable_auto_commit=False, consumer_timeout_ms=10000
    )
    try:
        tp = TopicPartition(topic, 4)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        got = []
        for msg in consumer:
            got.append((msg.offset, msg.value))
            if len(got) == len(values):
                break
        assert got == list(enumerate(values))
    finally:
        consumer.close()


def _assert_no_errors(response) -> None:
    """Raises the first per-topic error of a CreatePartitions response (kafka-python versions
    differ in whether create_partitions raises or returns them)."""
    from kafka.errors import for_code

    for r in response.results:
        if r.error_code != 0:
            raise for_code(r.error_code)(r.error_message)
