"""kafka-python (a pure-Python client that probes the broker's API versions) against
weir-broker: producer with keys and gzip, assign()-ed consumer with seek, admin client."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import InvalidTopicError, TopicAlreadyExistsError

from helpers import stored_codecs

N = 2000


def _read(consumer: KafkaConsumer, want: int, timeout: float = 30.0) -> list:
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        for _tp, msgs in consumer.poll(timeout_ms=500).items():
            got.extend((m.partition, m.offset, m.key, m.value, list(m.headers)) for m in msgs)
    # Nothing beyond what was produced: one more poll must come back empty.
    for _tp, msgs in consumer.poll(timeout_ms=300).items():
        got.extend((m.partition, m.offset, m.key, m.value, list(m.headers)) for m in msgs)
    return got


# kafka-python 3 turns idempotence on by default (needs InitProducerId); also run without it.
@pytest.mark.parametrize("idempotence", ["default", "off"])
def test_produce_gzip_then_assign_and_seek(broker, idempotence):
    topic = f"kp-gzip-{idempotence}"
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="weir-compat-admin")
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        admin.close()

    extra = {} if idempotence == "default" else {"enable_idempotence": False}
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap, compression_type="gzip", acks="all", linger_ms=5,
        **extra,
    )
    # The probe settled on a real version, not a forced one.
    assert producer.config["api_version"] >= (0, 11), producer.config["api_version"]
    sent = []
    futures = []
    for i in range(N):
        key = b"k-%05d" % i
        value = (b"payload %d " % i) * (1 + i % 7)
        headers = [("i", str(i).encode())]
        sent.append((key, value, headers))
        futures.append(producer.send(topic, key=key, value=value, headers=headers, partition=i % 2))
    producer.flush(timeout=60)
    metas = [f.get(timeout=30) for f in futures]
    producer.close(timeout=10)
    codecs = stored_codecs(broker.log_dir, topic, 2)
    assert set(codecs) == {"gzip"}, f"stored batches by codec: {codecs}"
    per_partition: dict[int, list[int]] = {0: [], 1: []}
    for i, m in enumerate(metas):
        assert m.partition == i % 2
        per_partition[m.partition].append(i)
        assert m.offset == len(per_partition[m.partition]) - 1, (
            f"record {i}: offset {m.offset}, expected {len(per_partition[m.partition]) - 1}"
        )

    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap, enable_auto_commit=False, group_id=None,
        auto_offset_reset="none", consumer_timeout_ms=1000,
    )
    try:
        tp0 = TopicPartition(topic, 0)
        tp1 = TopicPartition(topic, 1)
        consumer.assign([tp0])
        middle = len(per_partition[0]) // 2 + 3
        consumer.seek(tp0, middle)
        rest = _read(consumer, len(per_partition[0]) - middle)
        expected = [
            (0, off, *sent[i]) for off, i in enumerate(per_partition[0]) if off >= middle
        ]
        assert rest == [(p, o, k, v, h) for p, o, k, v, h in expected]
        assert consumer.position(tp0) == len(per_partition[0])

        consumer.assign([tp0, tp1])
        consumer.seek_to_beginning()
        everything = _read(consumer, N)
        assert len(everything) == N, f"read {len(everything)} records, expected {N}"
        for p in (0, 1):
            got = [r for r in everything if r[0] == p]
            want = [(p, off, *sent[i]) for off, i in enumerate(per_partition[p])]
            assert got == want, f"partition {p} differs"

        assert consumer.beginning_offsets([tp0, tp1]) == {tp0: 0, tp1: 0}
        assert consumer.end_offsets([tp0, tp1]) == {
            tp0: len(per_partition[0]), tp1: len(per_partition[1])
        }
    finally:
        consumer.close()


def test_admin_create_topics(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        response = admin.create_topics(
            [NewTopic("kp-admin", num_partitions=3, replication_factor=1)], timeout_ms=10000
        )
        _assert_no_topic_errors(response)
        assert "kp-admin" in admin.list_topics()
        [described] = admin.describe_topics(["kp-admin"])
        assert described["error_code"] == 0, described
        assert sorted(p["partition_index"] for p in described["partitions"]) == [0, 1, 2]

        with pytest.raises(TopicAlreadyExistsError):
            _assert_no_topic_errors(
                admin.create_topics([NewTopic("kp-admin", 1, 1)], timeout_ms=10000)
            )
        with pytest.raises(InvalidTopicError):
            _assert_no_topic_errors(
                admin.create_topics([NewTopic("bad topic!", 1, 1)], timeout_ms=10000)
            )
    finally:
        admin.close()


def _assert_no_topic_errors(response) -> None:
    """kafka-python versions differ in whether create_topics raises or returns the per-topic
    errors; raise them either way."""
    from kafka.errors import for_code

    topics = response.to_object()["topics"] if hasattr(response, "to_object") else response["topics"]
    for t in topics:
        if t["error_code"] != 0:
            raise for_code(t["error_code"])(t.get("error_message"))


def test_lz4_batches_are_stored_as_sent_and_read_by_kcat(broker, kcat):
    """No librdkafka in this suite sends lz4 to a broker without FindCoordinator v0 (see
    docs/protocol-support.md), so kafka-python produces the lz4 batches: stored with their
    codec, and decompressed by kcat on the way back."""
    import subprocess

    topic = "kp-lz4"
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap, compression_type="lz4", acks="all", linger_ms=5,
    )
    sent = [(b"k%d" % i, b"lz4 value %d " % i * (1 + i % 5)) for i in range(N)]
    futures = [producer.send(topic, key=k, value=v, partition=0) for k, v in sent]
    producer.flush(timeout=60)
    offsets = [f.get(timeout=30).offset for f in futures]
    producer.close(timeout=10)
    assert offsets == list(range(N))
    assert set(stored_codecs(broker.log_dir, topic, 1)) == {"lz4"}
    out = subprocess.run(
        [kcat, "-b", broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
         "-f", "%o %k %s\n"],
        capture_output=True, check=True, timeout=60,
    ).stdout
    assert out == b"".join(b"%d %s %s\n" % (i, k, v) for i, (k, v) in enumerate(sent))
