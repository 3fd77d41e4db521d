"""Protocol behaviour real clients tripped over (the hardening issue), each through the client
that tripped: librdkafka's fetch.max.bytes (its test 0082), kafka-python's decoding of
DescribeGroups' authorized operations, confluent-kafka's simple-group flag in ListGroups, a
transactional producer's init_transactions, and closing a cooperative-sticky consumer after one
of its topics was deleted (librdkafka's test 0113).
"""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from helpers import create_topic
from kafka_peer import kafka_mode, weir_only

GROUP_FLAGS = ("--group-initial-rebalance-delay-ms", "300")


def test_fetch_max_bytes_with_batches_near_the_limit(broker):
    """librdkafka's 0082: three partitions of ~920 KB batches, a consumer asking for at most
    1,000,000 bytes per response with receive.message.max.bytes just above it. Every response
    must stay under the client's limit (one oversized batch is allowed only when it is the
    first), or librdkafka drops the connection and the consumer stalls."""
    topic = "fetch-max-bytes"
    partitions, per_partition, size = 3, 4, 900 * 1024
    create_topic(broker.bootstrap, topic, partitions)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    failures = []
    for p in range(partitions):
        for i in range(per_partition):
            producer.produce(topic, value=bytes([i]) * size, partition=p,
                             on_delivery=lambda err, _msg: err and failures.append(err))
            producer.poll(0)
    assert producer.flush(60) == 0
    assert failures == []

    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": "fetch-max-bytes",
        "auto.offset.reset": "earliest",
        "max.partition.fetch.bytes": 20_000_000,
        "fetch.max.bytes": 1_000_000,
        "receive.message.max.bytes": 1_000_512,
    })
    try:
        consumer.subscribe([topic])
        got = 0
        deadline = time.monotonic() + 30
        while got < partitions * per_partition:
            assert time.monotonic() < deadline, f"stalled after {got} records"
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, f"consumer error: {msg.error()}"
            assert len(msg.value()) == size
            got += 1
    finally:
        consumer.close()


def _consume_and_commit(bootstrap: str, group: str, topic: str, count: int, **extra) -> None:
    """A subscribed confluent-kafka member of `group` reads `count` records, commits them
    synchronously and leaves (close sends LeaveGroup)."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, **extra,
    })
    try:
        consumer.subscribe([topic])
        got = 0
        deadline = time.monotonic() + 30
        while got < count:
            assert time.monotonic() < deadline, f"read {got} of {count}"
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got += 1
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()


def _produce(bootstrap: str, topic: str, count: int, start: int = 0) -> None:
    """Produces records with values b"<start>" .. b"<start + count - 1>"."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(start, start + count):
        producer.produce(topic, value=b"%d" % i)
    assert producer.flush(30) == 0


def test_kafka_python_describe_groups_with_authorized_operations(broker_factory):
    """kafka-python's admin client always asks DescribeGroups for the authorized operations;
    with no authorizer Kafka answers every group operation (READ, DESCRIBE, DELETE). Weir left
    the field at "not provided", which kafka-python shows as None (and 2.x failed to decode)."""
    from kafka import KafkaAdminClient

    broker = broker_factory(*GROUP_FLAGS)
    topic, group = "kp-describe", "kp-describe-g"
    create_topic(broker.bootstrap, topic, 1)
    _produce(broker.bootstrap, topic, 5)
    _consume_and_commit(broker.bootstrap, group, topic, 5)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        described = admin.describe_groups([group])
    finally:
        admin.close()
    assert group in described, described
    d = described[group]
    assert d["error"] is None, d
    assert d["group_state"] == "Empty", d
    if kafka_mode():
        # Kafka 4 adds DESCRIBE_CONFIGS and ALTER_CONFIGS (group configs, KIP-848), which
        # Weir does not have.
        assert {"DELETE", "DESCRIBE", "READ"} <= set(d["authorized_operations"]), d
    else:
        assert sorted(d["authorized_operations"]) == ["DELETE", "DESCRIBE", "READ"], d


def test_confluent_lists_an_emptied_consumer_group_as_a_consumer_group(broker_factory):
    """A consumer group whose members committed and left is still a consumer group for
    ListGroups (Kafka keeps its protocol type "consumer"); confluent-kafka reported it as a
    simple group. A group made by simple commits only (assign(), no subscription) is simple."""
    broker = broker_factory(*GROUP_FLAGS)
    topic = "emptied"
    create_topic(broker.bootstrap, topic, 1)
    _produce(broker.bootstrap, topic, 5)
    _consume_and_commit(broker.bootstrap, "emptied-g", topic, 5)

    simple = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "simple-g",
                       "enable.auto.commit": False})
    try:
        simple.commit(offsets=[TopicPartition(topic, 0, 3)], asynchronous=False)
    finally:
        simple.close()

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    result = admin.list_consumer_groups(request_timeout=15).result(timeout=20)
    assert result.errors == [], result.errors
    listed = {g.group_id: g for g in result.valid}
    assert listed["emptied-g"].is_simple_consumer_group is False, listed["emptied-g"]
    assert listed["simple-g"].is_simple_consumer_group is True, listed["simple-g"]
    desc = admin.describe_consumer_groups(["emptied-g"], request_timeout=15)["emptied-g"].result(
        timeout=20)
    assert desc.is_simple_consumer_group is False, desc
    assert desc.members == [], desc


def test_transactional_producer_fails_fast_with_a_clear_error(broker):
    """init_transactions must fail at once with a fatal error saying transactions are not
    supported; it used to time out (librdkafka retried COORDINATOR_NOT_AVAILABLE)."""
    if kafka_mode():
        weir_only("a broker without transactions (the test expects init_transactions to fail)")
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "tx-1"})
    started = time.monotonic()
    with pytest.raises(KafkaException) as failed:
        producer.init_transactions(10)
    elapsed = time.monotonic() - started
    err = failed.value.args[0]
    assert elapsed < 2, f"init_transactions took {elapsed:.1f}s"
    assert err.code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, err
    assert err.fatal() and not err.retriable(), err
    assert "transactions are not supported" in err.str(), err.str()


def _close_within(consumer: Consumer, seconds: float) -> float:
    """Closes `consumer` on another thread; fails if close() has not returned in `seconds`
    (a hung close would otherwise hang the suite). Returns how long it took."""
    done = threading.Event()
    started = time.monotonic()

    def close():
        consumer.close()
        done.set()

    threading.Thread(target=close, daemon=True).start()
    assert done.wait(seconds), f"close() did not return within {seconds}s"
    return time.monotonic() - started


def test_cooperative_consumer_closes_after_a_subscribed_topic_is_deleted(broker_factory):
    """librdkafka's 0113 (h_delete_topic, n_wildcard): cooperative-sticky consumers subscribed
    to two topics, one topic deleted while they consume. The deleted topic's partitions are
    lost, the group rebalances, the consumers keep reading the other topic, and close()
    returns promptly (LeaveGroup answered, nothing parked in the coordinator)."""
    broker = broker_factory(*GROUP_FLAGS)
    keep, doomed, group = "coop-keep", "coop-doomed", "coop-delete-g"
    create_topic(broker.bootstrap, keep, 2)
    create_topic(broker.bootstrap, doomed, 2)
    _produce(broker.bootstrap, keep, 20)
    _produce(broker.bootstrap, doomed, 20)

    lost: dict[str, list] = {"C_1": [], "C_2": []}
    read: set[int] = set()

    def member(name: str) -> Consumer:
        c = Consumer({
            "bootstrap.servers": broker.bootstrap, "group.id": group, "client.id": name,
            "partition.assignment.strategy": "cooperative-sticky",
            "auto.offset.reset": "earliest", "enable.auto.commit": True,
            "auto.commit.interval.ms": 200, "topic.metadata.refresh.interval.ms": 1000,
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
        })
        c.subscribe([keep, doomed],
                    on_lost=lambda _c, parts: lost[name].extend(p.topic for p in parts))
        return c

    consumers = {"C_1": member("C_1"), "C_2": member("C_2")}

    def poll_until(what: str, done, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: " + str(
                {n: sorted((p.topic, p.partition) for p in c.assignment())
                 for n, c in consumers.items()})
            for c in consumers.values():
                msg = c.poll(0.2)
                if msg is None:
                    continue
                if msg.error() is not None:
                    # The deleted topic is reported while it disappears; nothing else may be.
                    assert msg.error().code() == KafkaError.UNKNOWN_TOPIC_OR_PART, msg.error()
                elif msg.topic() == keep:
                    read.add(int(msg.value()))

    def assigned() -> set:
        return {(p.topic, p.partition) for c in consumers.values() for p in c.assignment()}

    poll_until("both topics assigned", lambda: len(assigned()) == 4)
    # The sticky assignor balances partition counts, not topics: a member may hold none of
    # the doomed topic's partitions, and then has nothing to lose.
    held = {n: {p.topic for p in c.assignment()} for n, c in consumers.items()}
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.delete_topics([doomed], operation_timeout=10)[doomed].result(timeout=15)
    poll_until("the deleted topic to leave the assignment",
               lambda: assigned() == {(keep, 0), (keep, 1)})
    for name, topics in lost.items():
        expected = {doomed} if doomed in held[name] else set()
        assert set(topics) == expected, (name, held, lost)

    # Still a working group: records produced now are read.
    _produce(broker.bootstrap, keep, 10, start=1000)
    poll_until("the records produced after the deletion",
               lambda: read >= set(range(1000, 1010)))
    for name, c in consumers.items():
        took = _close_within(c, 10)
        assert took < 10, (name, took)
