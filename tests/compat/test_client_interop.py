"""weir-client against the Python clients, through one weir-broker: what weir-client writes
reads back identically in confluent-kafka and kafka-python, weir-client partitions keys as
kafka-python (and librdkafka's murmur2 partitioner) does, and weir-client's consumer reads
what confluent-kafka wrote, headers included, uncompressed and with each codec.

weir-client is driven through its `interop` example (client/examples/interop.rs), built once
per session by the `interop` fixture with `cargo build -p weir-client --example interop
--locked`; a failed build fails the tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Producer
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from conftest import REPO
from helpers import assert_contiguous, create_topic, read_partitions, stored_codecs

PARTITIONS = 6
KEYED = 2000
UNKEYED = 100
RUN_TIMEOUT_S = 120


@pytest.fixture(scope="session")
def interop() -> Path:
    """Builds the `interop` example and returns its path (from cargo's own artifact report,
    so `CARGO_TARGET_DIR` is honoured)."""
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.fail("cargo is not installed: it builds weir-client's interop example", pytrace=False)
    build = subprocess.run(
        [cargo, "build", "-p", "weir-client", "--example", "interop", "--locked",
         "--message-format=json-render-diagnostics"],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )
    if build.returncode != 0:
        pytest.fail(f"building the interop example failed:\n{build.stderr}", pytrace=False)
    executables = [
        msg["executable"]
        for msg in map(json.loads, build.stdout.splitlines())
        if msg.get("reason") == "compiler-artifact"
        and msg.get("target", {}).get("name") == "interop"
        and msg.get("executable")
    ]
    if not executables:
        pytest.fail(f"cargo reported no interop executable:\n{build.stdout[-2000:]}", pytrace=False)
    path = Path(executables[-1])
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"interop example not found at {path}", pytrace=False)
    return path


def run_interop(binary: Path, *args: str) -> str:
    """Runs the example and returns its stdout; a non-zero exit fails the test with stderr."""
    done = subprocess.run(
        [str(binary), *args], capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, (
        f"interop {' '.join(args)} exited with status {done.returncode}:\n{done.stderr}"
    )
    return done.stdout


def escape(data: bytes | str | None) -> str:
    """The example's escaping: printable ASCII but `\\`, `,`, `=` as is, the rest `\\xNN`."""
    if data is None:
        return ""
    if isinstance(data, str):
        data = data.encode()
    return "".join(
        chr(b) if 0x20 <= b < 0x7F and b not in b"\\,=" else f"\\x{b:02x}" for b in data
    )


def records_to_produce() -> list[tuple[bytes | None, bytes]]:
    """KEYED keyed records (some keys repeated) with UNKEYED unkeyed ones spread among them.
    Values hold non-ASCII bytes and tabs (the example splits a line at its first tab only)."""
    records: list[tuple[bytes | None, bytes]] = []
    for i in range(KEYED):
        key = b"user-%d" % (i % 1700)
        value = b"value %d " % i * (1 + i % 5)
        if i % 97 == 0:
            value += "caf\u00e9 \u2603".encode() + b"\twith a tab"
        records.append((key, value))
        if i % (KEYED // UNKEYED) == 0:
            records.append((None, b"unkeyed %d" % i))
    assert sum(k is None for k, _ in records) == UNKEYED
    return records


def weir_produce(binary: Path, bootstrap: str, topic: str, records, tmp_path: Path) -> list[tuple[int, int]]:
    """Produces `records` with weir-client; returns (partition, offset) per record."""
    path = tmp_path / f"{topic}.records"
    path.write_bytes(b"".join((k or b"") + b"\t" + v + b"\n" for k, v in records))
    out = run_interop(binary, "produce", bootstrap, topic, str(path))
    written = [tuple(map(int, line.split())) for line in out.splitlines()]
    assert len(written) == len(records), f"{len(written)} results for {len(records)} records"
    return written


def test_weir_client_records_read_back_in_confluent_and_kafka_python(broker, interop, tmp_path):
    topic = "interop-weir-to-python"
    create_topic(broker.bootstrap, topic, PARTITIONS)
    records = records_to_produce()
    written = weir_produce(interop, broker.bootstrap, topic, records, tmp_path)

    # Per partition, offsets 0, 1, 2, ... in input order (one producer, order kept).
    expected: dict[tuple[int, int], tuple[bytes | None, bytes]] = {}
    per_partition: dict[int, list[tuple[int]]] = {}
    for (p, off), record in zip(written, records):
        assert 0 <= p < PARTITIONS, f"partition {p}"
        per_partition.setdefault(p, []).append((off,))
        expected[(p, off)] = record
    for p, offsets in per_partition.items():
        assert_contiguous(offsets)
    assert len(expected) == len(records), "two records were given the same partition and offset"
    # Keyed records: a key always lands in the same partition.
    key_partition: dict[bytes, int] = {}
    for (p, _), (key, _) in zip(written, records):
        if key is not None:
            assert key_partition.setdefault(key, p) == p, f"key {key!r} in two partitions"

    # confluent-kafka.
    got = read_partitions(broker.bootstrap, topic, PARTITIONS)
    confluent = {}
    for p, msgs in got.items():
        for off, key, value, headers, _ts in msgs:
            assert headers is None, f"{p}/{off}: unexpected headers {headers}"
            assert (p, off) not in confluent, f"{p}/{off} read twice"
            confluent[(p, off)] = (key, value)
    assert confluent == expected, _diff(expected, confluent)

    # kafka-python.
    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap, enable_auto_commit=False, group_id=None,
        auto_offset_reset="earliest",
    )
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        kp: dict[tuple[int, int], tuple[bytes | None, bytes]] = {}
        count = 0

        def take(polled) -> None:
            nonlocal count
            for _tp, msgs in polled.items():
                for m in msgs:
                    assert list(m.headers) == [], f"{m.partition}/{m.offset}: headers {m.headers}"
                    kp[(m.partition, m.offset)] = (m.key, m.value)
                    count += 1

        deadline = time.monotonic() + 60
        while count < len(records) and time.monotonic() < deadline:
            take(consumer.poll(timeout_ms=500))
        take(consumer.poll(timeout_ms=300))  # nothing beyond what was produced
    finally:
        consumer.close()
    assert count == len(records), f"kafka-python read {count} records, {len(records)} produced"
    assert kp == expected, _diff(expected, kp)


def _diff(expected: dict, got: dict) -> str:
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    first = wrong[0] if wrong else None
    return (
        f"missing {len(missing)} {missing[:5]}, extra {len(extra)} {extra[:5]}, "
        f"different {len(wrong)}"
        + (f", first at {first}: expected {expected[first]!r}, got {got[first]!r}" if first else "")
    )


def test_weir_client_partitions_keys_as_kafka_python(broker, interop, tmp_path):
    keyed = [(k, v) for k, v in records_to_produce() if k is not None]
    # Keys of every length mod 4 (murmur2's tail) and a few odd bytes.
    keyed += [(b"k" * n, b"len %d" % n) for n in range(1, 40)]
    keyed += [(bytes([b, 0xFF, 0x80, b]), b"bytes %d" % b) for b in range(0, 256, 17)]
    for topic in ("interop-keys-weir", "interop-keys-kafka-python", "interop-keys-librdkafka"):
        create_topic(broker.bootstrap, topic, PARTITIONS)

    weir = [p for p, _ in weir_produce(interop, broker.bootstrap, "interop-keys-weir", keyed, tmp_path)]

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5)
    try:
        futures = [producer.send("interop-keys-kafka-python", key=k, value=v) for k, v in keyed]
        producer.flush(timeout=60)
        kafka_python = [f.get(timeout=30).partition for f in futures]
    finally:
        producer.close(timeout=10)

    # librdkafka's Java-compatible partitioner, for a second opinion.
    reports: dict[int, int] = {}
    rd = Producer({"bootstrap.servers": broker.bootstrap, "partitioner": "murmur2_random"})
    for i, (k, v) in enumerate(keyed):
        rd.produce(
            "interop-keys-librdkafka", key=k, value=v,
            on_delivery=lambda err, msg, i=i: reports.__setitem__(i, -1 if err else msg.partition()),
        )
        rd.poll(0)
    assert rd.flush(60) == 0
    librdkafka = [reports[i] for i in range(len(keyed))]

    differ = [(k, w, p) for (k, _), w, p in zip(keyed, weir, kafka_python) if w != p]
    assert differ == [], f"{len(differ)} keys partitioned differently (key, weir, kafka-python): {differ[:5]}"
    differ = [(k, w, p) for (k, _), w, p in zip(keyed, weir, librdkafka) if w != p]
    assert differ == [], f"{len(differ)} keys partitioned differently (key, weir, librdkafka): {differ[:5]}"
    assert len(set(weir)) == PARTITIONS, f"keys landed in only {sorted(set(weir))}"


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_weir_client_reads_confluent_records_with_headers(broker, interop, codec):
    topic = f"interop-confluent-to-weir-{codec}"
    create_topic(broker.bootstrap, topic, PARTITIONS)
    producer = Producer({
        "bootstrap.servers": broker.bootstrap,
        "compression.type": codec,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
    })
    reports: dict[int, tuple[KafkaError | None, int, int]] = {}
    sent = []
    n = KEYED + UNKEYED
    for i in range(n):
        key = None if i % 20 == 0 else b"key-%d" % i
        value = None if i % 250 == 7 else b"value %d " % i + bytes([i % 256]) * (i % 9)
        if i % 3 == 0:
            headers = [("seq", str(i).encode()), ("null-header", None), ("a=b,c", b"\t\\\xff")]
        elif i % 3 == 1:
            headers = [("seq", str(i).encode()), ("seq", b"repeated")]
        else:
            headers = None
        sent.append((key, value, headers))
        while True:
            try:
                producer.produce(
                    topic, key=key, value=value, headers=headers,
                    on_delivery=lambda err, msg, i=i: reports.__setitem__(
                        i, (err, msg.partition(), msg.offset())
                    ),
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0, "records never acknowledged"
    errors = [(i, r[0]) for i, r in reports.items() if r[0] is not None]
    assert errors == [], f"{len(errors)} delivery failures, first: {errors[:3]}"
    assert sorted(reports) == list(range(n))
    # librdkafka sends a batch uncompressed when the codec would not make it smaller.
    codecs = stored_codecs(broker.log_dir, topic, PARTITIONS)
    assert codec in codecs and set(codecs) <= {codec, "none"}, f"stored batches by codec: {codecs}"

    expected = []
    for i, (key, value, headers) in enumerate(sent):
        _, p, off = reports[i]
        hs = ",".join(
            escape(k) if v is None else f"{escape(k)}={escape(v)}" for k, v in headers or []
        )
        expected.append((p, off, f"{p}\t{off}\t{escape(key)}\t{escape(value)}\t{hs}"))
    expected = [line for _, _, line in sorted(expected)]

    out = run_interop(interop, "consume", broker.bootstrap, topic, str(PARTITIONS), str(n))
    got = out.splitlines()
    assert len(got) == n, f"weir-client printed {len(got)} records, {n} produced"
    wrong = [(e, g) for e, g in zip(expected, got) if e != g]
    assert wrong == [], f"{len(wrong)} records differ, first (expected, got): {wrong[:3]}"
