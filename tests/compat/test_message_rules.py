"""A topic's message rules, enforced on produce and seen by real clients (confluent-kafka):
`message.timestamp.type=LogAppendTime` stamps the broker's time (the consumer sees
TIMESTAMP_LOG_APPEND_TIME), `max.message.bytes` refuses a larger batch with MESSAGE_TOO_LARGE
and applies live when altered, the KIP-937 bounds refuse a record too old or too far in the
future with INVALID_TIMESTAMP, and `min.insync.replicas` above the one replica refuses acks=all
with NOT_ENOUGH_REPLICAS while acks=1 goes through.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from helpers import consumer_config
from kafka_peer import kafka_mode, weir_only


def create(bootstrap: str, name: str, config: dict[str, str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, 1, 1, config=config)])
    futures[name].result(30)


def produce_one(bootstrap: str, topic: str, value: bytes, **extra) -> tuple[KafkaError | None, object]:
    """Produces one record and returns (error, delivered message)."""
    outcome = {}
    timestamp = extra.pop("timestamp", 0)
    conf = {"bootstrap.servers": bootstrap, "retries": 0, "message.timeout.ms": 10000, **extra}
    producer = Producer(conf)
    producer.produce(
        topic, value=value, partition=0, timestamp=timestamp,
        on_delivery=lambda err, msg: outcome.update(err=err, msg=msg),
    )
    assert producer.flush(30) == 0
    return outcome["err"], outcome["msg"]


def test_log_append_time_is_stamped_by_the_broker(broker):
    create(broker.bootstrap, "stamped", {"message.timestamp.type": "LogAppendTime"})
    an_hour_ago = int(time.time() * 1000) - 3_600_000
    before = int(time.time() * 1000)
    err, delivered = produce_one(broker.bootstrap, "stamped", b"v", timestamp=an_hour_ago)
    after = int(time.time() * 1000)
    assert err is None, err
    kind, ts = delivered.timestamp()
    assert kind == TIMESTAMP_LOG_APPEND_TIME and before <= ts <= after, (kind, ts)

    consumer = Consumer(consumer_config(broker.bootstrap))
    consumer.assign([TopicPartition("stamped", 0, 0)])
    msg = consumer.poll(15)
    consumer.close()
    assert msg is not None and msg.error() is None, msg and msg.error()
    assert msg.timestamp() == (TIMESTAMP_LOG_APPEND_TIME, ts), (msg.timestamp(), ts)
    assert msg.value() == b"v"


def test_max_message_bytes_refuses_and_applies_live(broker):
    create(broker.bootstrap, "small", {"max.message.bytes": "2000"})
    err, _ = produce_one(broker.bootstrap, "small", b"x" * 5000)
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err
    err, _ = produce_one(broker.bootstrap, "small", b"x" * 500)
    assert err is None, err

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    resource = ConfigResource("topic", "small")
    resource.add_incremental_config(ConfigEntry("max.message.bytes", "100000", incremental_operation=AlterConfigOpType.SET))
    for f in admin.incremental_alter_configs([resource]).values():
        f.result(30)
    err, _ = produce_one(broker.bootstrap, "small", b"x" * 5000)
    assert err is None, err


def test_timestamp_bounds_refuse_records_out_of_range(broker):
    create(broker.bootstrap, "recent", {
        "message.timestamp.before.max.ms": "60000",
        "message.timestamp.after.max.ms": "60000",
    })
    now = int(time.time() * 1000)
    err, _ = produce_one(broker.bootstrap, "recent", b"old", timestamp=now - 3_600_000)
    assert err is not None and err.code() == KafkaError.INVALID_TIMESTAMP, err
    err, _ = produce_one(broker.bootstrap, "recent", b"future", timestamp=now + 3_600_000)
    assert err is not None and err.code() == KafkaError.INVALID_TIMESTAMP, err
    err, msg = produce_one(broker.bootstrap, "recent", b"now", timestamp=now)
    assert err is None and msg.offset() == 0, err


def test_min_insync_replicas_above_one_refuses_acks_all_only(broker):
    if kafka_mode():
        # Kafka 4.x caps the minimum at the partition's replica count (KIP-966's effective
        # min ISR), so with one replica acks=all is accepted; Weir refuses it.
        weir_only("a min.insync.replicas above the replica count refusing acks=all (Kafka 4 caps it)")
    create(broker.bootstrap, "guarded", {"min.insync.replicas": "2"})
    err, _ = produce_one(broker.bootstrap, "guarded", b"v", acks="all")
    assert err is not None and err.code() == KafkaError.NOT_ENOUGH_REPLICAS, err
    err, msg = produce_one(broker.bootstrap, "guarded", b"v", acks=1)
    assert err is None and msg.offset() == 0, err
