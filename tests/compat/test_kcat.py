"""kcat (librdkafka's command-line client) against weir-broker: metadata; produce and consume
with every compression codec, checking both the records and the codec of the batches the broker
stored; kcat reading batches compressed by confluent-kafka; offsets for timestamps."""

from __future__ import annotations

import json
import random
import subprocess
import time
import zlib

import pytest
import confluent_kafka
from confluent_kafka import Producer

from helpers import (
    api_versions,
    codec_on_the_wire,
    create_topic,
    kcat_librdkafka_version,
    stored_codecs,
)

RECORDS = 10_000
HEADERS = [("source", "kcat"), ("trace-id", "00f067aa0ba902b7"), ("empty", "")]


def run_kcat(kcat: str, *args: str, stdin: bytes | None = None, timeout: float = 60) -> str:
    proc = subprocess.run(
        [kcat, *args], input=stdin, capture_output=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"kcat {' '.join(args)} exited with {proc.returncode}\n"
            f"stderr:\n{proc.stderr.decode(errors='replace')[-4000:]}"
        )
    return proc.stdout.decode()


def test_metadata_lists_broker_and_topic(broker, kcat):
    create_topic(broker.bootstrap, "kcat-meta", 3)
    meta = json.loads(run_kcat(kcat, "-b", broker.bootstrap, "-L", "-J", "-m", "10"))
    host, port = broker.bootstrap.split(":")
    assert [(b["id"], b["name"]) for b in meta["brokers"]] == [(0, f"{host}:{port}")], meta
    topics = {t["topic"]: t for t in meta["topics"]}
    assert "kcat-meta" in topics, meta
    topic = topics["kcat-meta"]
    assert "error" not in topic, topic
    assert sorted(p["partition"] for p in topic["partitions"]) == [0, 1, 2]
    for p in topic["partitions"]:
        assert p["leader"] == 0, p
        assert [r["id"] for r in p["replicas"]] == [0], p
        assert [r["id"] for r in p["isrs"]] == [0], p

    # The plain-text listing, as a person would read it.
    text = run_kcat(kcat, "-b", broker.bootstrap, "-L", "-t", "kcat-meta")
    assert f"broker 0 at {broker.bootstrap}" in text, text
    assert 'topic "kcat-meta" with 3 partitions:' in text, text


def _records(seed: int) -> list[tuple[str, str]]:
    """Unique keys, values of varied length and compressibility (no ':' or newline)."""
    rnd = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,;!?=+/ "
    out = []
    for i in range(RECORDS):
        kind = i % 4
        if kind == 0:
            value = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 200)))
        elif kind == 1:
            value = "repeat-" * rnd.randint(1, 60)
        elif kind == 2:
            value = f"{i:08d}" + "x" * rnd.randint(0, 20)
        else:
            value = json.dumps({"n": i, "r": rnd.random()}).replace(":", "=")
        out.append((f"key-{i:05d}-{rnd.randrange(1 << 30):08x}", value))
    return out


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_produce_consume_every_codec(broker, kcat, tmp_path, codec):
    topic = f"kcat-{codec}"
    partitions = 3
    create_topic(broker.bootstrap, topic, partitions)
    records = _records(seed=zlib.crc32(codec.encode()))
    data = tmp_path / "input.txt"
    data.write_text("".join(f"{k}:{v}\n" for k, v in records))

    header_args = [arg for name, value in HEADERS for arg in ("-H", f"{name}={value}")]
    run_kcat(
        kcat, "-b", broker.bootstrap, "-P", "-t", topic, "-K", ":", *header_args,
        "-z", codec, "-X", "acks=all", "-l", str(data),
    )

    out = run_kcat(
        kcat, "-b", broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
        "-f", "%p\t%o\t%k\t%s\t%h\n",
    )
    lines = out.split("\n")
    assert lines[-1] == "", "output does not end with a newline"
    consumed = [line.split("\t") for line in lines[:-1]]
    assert all(len(c) == 5 for c in consumed), [c for c in consumed if len(c) != 5][:3]
    assert len(consumed) == RECORDS, f"consumed {len(consumed)} records, sent {RECORDS}"

    expected_headers = ",".join(f"{n}={v}" for n, v in HEADERS)
    by_key = {k: v for k, v in records}
    per_partition: dict[int, list[tuple[int, str]]] = {}
    for p, o, k, v, h in consumed:
        assert k in by_key, f"unknown key {k!r} at partition {p} offset {o}"
        assert v == by_key[k], f"value of {k} differs: got {v!r}, sent {by_key[k]!r}"
        assert h == expected_headers, f"headers of {k}: got {h!r}"
        per_partition.setdefault(int(p), []).append((int(o), k))
    assert sorted({k for _, _, k, _, _ in consumed}) == sorted(by_key), "missing or repeated keys"

    order = {k: i for i, (k, _) in enumerate(records)}
    for p, recs in per_partition.items():
        recs.sort()
        assert [o for o, _ in recs] == list(range(len(recs))), f"partition {p}: offsets not 0..n-1"
        sent_positions = [order[k] for _, k in recs]
        swapped = next(
            (i for i in range(len(recs) - 1) if sent_positions[i] > sent_positions[i + 1]), None
        )
        assert swapped is None, (
            f"partition {p}: stored out of send order: line {sent_positions[swapped]} of the "
            f"input is at offset {swapped}, before line {sent_positions[swapped + 1]} at offset "
            f"{swapped + 1}"
        )

    # The data came back; the batches must also be stored as sent: with the codec this
    # librdkafka really uses against the broker's advertised versions (helpers.
    # codec_on_the_wire: old librdkafka sends gzip, snappy and lz4 uncompressed to any broker
    # without Produce v0, Kafka 4.0 included).
    expected = codec_on_the_wire(codec, kcat_librdkafka_version(kcat), api_versions(broker.bootstrap))
    codecs = stored_codecs(broker.log_dir, topic, partitions)
    assert codec_mix_ok(codecs, expected), (
        f"kcat -z {codec}: stored batches by codec {codecs}, expected {expected}; the broker "
        f"advertises {_codec_relevant_versions(broker.bootstrap)}"
    )


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_consume_batches_compressed_by_confluent_kafka(broker, kcat, codec):
    """Batches compressed by a current librdkafka (confluent-kafka), stored and served by the
    broker, decompressed by kcat."""
    topic = f"kcat-read-{codec}"
    create_topic(broker.bootstrap, topic, 1)
    records = _records(seed=zlib.crc32(b"read-" + codec.encode()))[:5000]
    producer = Producer({
        "bootstrap.servers": broker.bootstrap, "acks": "all", "compression.type": codec,
        "linger.ms": 20, "enable.idempotence": False,
    })
    failures = []
    for k, v in records:
        producer.produce(topic, key=k.encode(), value=v.encode(), partition=0,
                         headers=[("codec", codec.encode())],
                         on_delivery=lambda err, _m: err and failures.append(err))
        producer.poll(0)
    assert producer.flush(30) == 0
    assert failures == []

    out = run_kcat(
        kcat, "-b", broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
        "-f", "%o\t%k\t%s\t%h\n",
    )
    expected = "".join(f"{i}\t{k}\t{v}\tcodec={codec}\n" for i, (k, v) in enumerate(records))
    assert out == expected, "kcat read back something else than was produced"
    librdkafka = tuple(int(x) for x in confluent_kafka.libversion()[0].split(".")[:3])
    expected = codec_on_the_wire(codec, librdkafka, api_versions(broker.bootstrap))
    codecs = stored_codecs(broker.log_dir, topic, 1)
    assert codec_mix_ok(codecs, expected), (
        f"confluent-kafka compression.type={codec}: stored batches by codec {codecs}, expected "
        f"{expected}; the broker advertises {_codec_relevant_versions(broker.bootstrap)}"
    )


def codec_mix_ok(codecs: dict[str, int], expected: str) -> bool:
    """Whether the stored batches are what librdkafka sends for `expected`: batches of that
    codec, plus possibly a few uncompressed ones, because librdkafka sends a batch
    uncompressed when compressing it does not make it smaller (small tail batches)."""
    if expected == "none":
        return set(codecs) == {"none"}
    return codecs.get(expected, 0) > 0 and set(codecs) <= {expected, "none"} and (
        codecs.get("none", 0) <= codecs[expected]
    )


def _codec_relevant_versions(bootstrap: str) -> str:
    """What librdkafka's codec checks look at in the broker's ApiVersions, for failure
    messages: the Produce and Fetch ranges and whether FindCoordinator is there."""
    versions = api_versions(bootstrap)
    return ", ".join(
        f"{name} v{versions[key][0]}-{versions[key][1]}" if key in versions
        else f"no {name}"
        for key, name in ((0, "Produce"), (1, "Fetch"), (10, "FindCoordinator"))
    )


def _query(kcat: str, bootstrap: str, topic: str, partition: int, ts: int) -> int:
    out = run_kcat(kcat, "-b", bootstrap, "-Q", "-t", f"{topic}:{partition}:{ts}")
    prefix = f"{topic} [{partition}] offset "
    lines = [line for line in out.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, out
    return int(lines[0][len(prefix):])


def _first_at_or_after(timestamps: list[int], ts: int) -> int:
    """Kafka's answer: the first offset whose timestamp is >= ts, or -1."""
    return next((o for o, t in enumerate(timestamps) if t >= ts), -1)


def test_offsets_for_explicit_timestamps(broker, kcat):
    """Records with known timestamps (set by the producer); kcat -Q before, on, between and
    after them."""
    topic = "kcat-times"
    create_topic(broker.bootstrap, topic, 2)
    base = int(time.time() * 1000) - 3_600_000
    # Partition 0: 300 records, 10 ms apart, in batches of varied size.
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 20})
    failures = []

    def on_delivery(err, _msg):
        if err is not None:
            failures.append(err)

    timestamps = [base + 10 * i for i in range(300)]
    for i, ts in enumerate(timestamps):
        producer.produce(topic, value=b"v%d" % i, partition=0, timestamp=ts, on_delivery=on_delivery)
        if i % 37 == 0:
            producer.flush(10)
    assert producer.flush(30) == 0
    assert failures == []

    cases = {
        "long before": base - 86_400_000,
        "just before": base - 1,
        "first": base,
        "between first and second": base + 5,
        "exactly a middle record": base + 10 * 150,
        "just after a middle record": base + 10 * 150 + 1,
        "last": timestamps[-1],
        "just after last": timestamps[-1] + 1,
        "far future": base + 365 * 86_400_000,
    }
    for name, ts in cases.items():
        got = _query(kcat, broker.bootstrap, topic, 0, ts)
        assert got == _first_at_or_after(timestamps, ts), f"{name} (ts={ts}): got offset {got}"
    # An empty partition has no record at or after any timestamp.
    assert _query(kcat, broker.bootstrap, topic, 1, base) == -1


def test_offsets_for_measured_timestamps(broker, kcat):
    """kcat cannot set timestamps, so produce three bursts with pauses in between, read the
    timestamps kcat's producer gave them, and query around them."""
    topic = "kcat-measured"
    create_topic(broker.bootstrap, topic, 1)
    for burst in range(3):
        payload = "".join(f"b{burst}-{i}\n" for i in range(100)).encode()
        run_kcat(kcat, "-b", broker.bootstrap, "-P", "-t", topic, "-p", "0", "-X", "acks=all",
                 stdin=payload)
        time.sleep(0.05)
    out = run_kcat(kcat, "-b", broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e",
                   "-q", "-f", "%o %T %s\n")
    rows = [line.split() for line in out.splitlines()]
    assert [int(o) for o, _, _ in rows] == list(range(300))
    assert [v for _, _, v in rows] == [f"b{b}-{i}" for b in range(3) for i in range(100)]
    timestamps = [int(t) for _, t, _ in rows]
    assert timestamps == sorted(timestamps), "kcat's create times are not monotonic"

    queries = {timestamps[0] - 60_000, timestamps[0], timestamps[-1], timestamps[-1] + 1}
    queries |= {timestamps[100], timestamps[100] - 1, timestamps[200], timestamps[200] + 1}
    queries |= {timestamps[99] + 1, timestamps[199] + 1}  # in the pauses between bursts
    for ts in sorted(queries):
        got = _query(kcat, broker.bootstrap, topic, 0, ts)
        assert got == _first_at_or_after(timestamps, ts), f"ts={ts}: got offset {got}"
