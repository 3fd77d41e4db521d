"""Shared helpers for the compatibility tests (confluent-kafka based admin and read-back)."""

from __future__ import annotations

import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    """Creates a topic through CreateTopics and fails the test if that does not succeed."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=10)
    futures[name].result(timeout=15)


def consumer_config(bootstrap: str, **extra) -> dict:
    # group.id is required by librdkafka even for assign(); nothing is ever committed.
    config = {
        "bootstrap.servers": bootstrap,
        "group.id": "weir-compat-assign-only",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "error",
    }
    config.update(extra)
    return config


def read_partitions(
    bootstrap: str, topic: str, partitions: int, timeout: float = 60.0
) -> dict[int, list[tuple[int, bytes | None, bytes | None, list | None, int]]]:
    """Reads every partition of `topic` from the beginning to its end with an assign()-ed
    confluent-kafka consumer. Returns {partition: [(offset, key, value, headers, timestamp)]}
    in the order received. Fails on any consumer error."""
    consumer = Consumer(consumer_config(bootstrap))
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        got: dict[int, list] = {p: [] for p in range(partitions)}
        at_eof: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(at_eof) < partitions:
            if time.monotonic() > deadline:
                counts = {p: len(v) for p, v in got.items()}
                raise AssertionError(
                    f"timed out reading {topic}: partitions at end {sorted(at_eof)}, "
                    f"records per partition {counts}"
                )
            for msg in consumer.consume(num_messages=10000, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_eof.add(msg.partition())
                        continue
                    raise AssertionError(f"consumer error on {topic}: {err}")
                p = msg.partition()
                at_eof.discard(p)
                got[p].append(
                    (msg.offset(), msg.key(), msg.value(), msg.headers(), msg.timestamp()[1])
                )
        return got
    finally:
        consumer.close()


def assert_contiguous(records: list, first: int = 0) -> None:
    """Offsets of `records` (first field) must be first, first+1, ... with no gap or repeat."""
    offsets = [r[0] for r in records]
    expected = list(range(first, first + len(records)))
    if offsets != expected:
        bad = next(i for i, (a, b) in enumerate(zip(offsets, expected)) if a != b)
        raise AssertionError(
            f"offsets not contiguous from {first}: at index {bad} got {offsets[bad]}, "
            f"expected {expected[bad]} (neighbourhood {offsets[max(0, bad - 3):bad + 4]})"
        )


CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def stored_codecs(data_dir, topic: str, partitions: int) -> dict[str, int]:
    """Counts the record batches of `topic` on disk by compression codec, from the attributes
    of each batch header in the segment files (docs/storage-format.md: raw v2 batches back to
    back; the preallocated rest of the active segment is zeros)."""
    import struct
    from pathlib import Path

    counts: dict[str, int] = {}
    for p in range(partitions):
        part_dir = Path(data_dir) / f"{topic}-{p}"
        segments = sorted(part_dir.glob("*.log"))
        assert segments, f"no segment files in {part_dir}"
        for segment in segments:
            data = segment.read_bytes()
            pos = 0
            while pos + 61 <= len(data):
                (length,) = struct.unpack_from(">i", data, pos + 8)
                if length <= 0:
                    break
                magic = data[pos + 16]
                assert magic == 2, f"{segment}@{pos}: magic {magic}"
                (attributes,) = struct.unpack_from(">h", data, pos + 21)
                codec = CODECS.get(attributes & 7, f"unknown({attributes & 7})")
                counts[codec] = counts.get(codec, 0) + 1
                pos += 12 + length
    return counts


def api_versions(bootstrap: str) -> dict[int, tuple[int, int]]:
    """The broker's ApiVersions answer ({api_key: (min, max)}), from a raw v0 request."""
    import socket
    import struct

    host, port = bootstrap.rsplit(":", 1)
    client_id = b"weir-compat"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack_from(">i", buf)[0]:
            chunk = s.recv(65536)
            assert chunk, "connection closed before the ApiVersions response"
            buf += chunk
    correlation, error, count = struct.unpack_from(">ihi", buf, 4)
    assert correlation == 1 and error == 0, (correlation, error)
    return {
        k: (lo, hi)
        for k, lo, hi in (struct.unpack_from(">hhh", buf, 14 + 6 * i) for i in range(count))
    }


def codec_on_the_wire(codec: str, librdkafka: tuple[int, ...], apis: dict[int, tuple[int, int]]) -> str:
    """The codec librdkafka really puts on the wire when asked for `codec`, given the broker's
    ApiVersions: librdkafka silently sends uncompressed batches when it concludes the broker
    cannot take the codec (rdkafka_msgset_writer.c, the "Broker does not support compression
    type" check). The rules, as seen with librdkafka 2.0.2 (Debian's kcat) and 2.16.0
    (confluent-kafka's wheel):

    - gzip, snappy: before 2.11 only if the broker's Produce range includes v0 (which Kafka 4.0
      dropped too; confluentinc/librdkafka#4956); always since.
    - lz4: as gzip, and also FindCoordinator v0 (the "LZ4" feature flag).
    - zstd: Produce v7 and Fetch v10 (the "ZSTD" feature flag).
    """

    def overlaps(key: int, lo: int, hi: int) -> bool:
        return key in apis and apis[key][0] <= hi and lo <= apis[key][1]

    old = librdkafka < (2, 11)
    produce_v0 = overlaps(0, 0, 0)
    sends = {
        "none": True,
        "gzip": produce_v0 or not old,
        "snappy": produce_v0 or not old,
        "lz4": (produce_v0 or not old) and overlaps(10, 0, 0),
        "zstd": overlaps(0, 7, 7) and overlaps(1, 10, 10),
    }[codec]
    return codec if sends else "none"


def kcat_librdkafka_version(kcat: str) -> tuple[int, ...]:
    """The librdkafka version kcat is built with (from `kcat -V`)."""
    import re
    import subprocess

    out = subprocess.run([kcat, "-V"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"librdkafka (\d+)\.(\d+)\.(\d+)", out)
    assert found, f"no librdkafka version in kcat -V: {out}"
    return tuple(int(x) for x in found.groups())


def wait_for_group_coordinator(bootstrap: str, group: str, timeout: float = 30.0) -> None:
    """Returns once the group's coordinator answers for `group` (its committed offsets are
    listed without an error). Apache Kafka creates its __consumer_offsets topic on the first
    FindCoordinator and answers COORDINATOR_NOT_AVAILABLE, then COORDINATOR_LOAD_IN_PROGRESS
    (and OffsetDelete GROUP_ID_NOT_FOUND) until it has loaded it, which kafka-python's admin
    client does not retry; Weir answers at once. Call it before a kafka-python group call on a
    fresh broker."""
    from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException

    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    while True:
        try:
            listed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=10)
            listed[group].result(timeout=15)
            return
        except KafkaException as err:
            if time.monotonic() > deadline:
                raise AssertionError(f"no coordinator for group {group} within {timeout} s: {err}") from err
            time.sleep(0.3)
