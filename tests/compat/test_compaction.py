"""Log compaction against the real weir-broker with kcat: many versions per key and `-Z`
tombstones, a broker restart in between, then `kcat -C -e` reads exactly the last record of
each key at its original offset; and a keyless record refused on a compacted topic."""

from __future__ import annotations

import json
import subprocess
import time

from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

TOPIC = "compacted"
KEYS = 40


def kcat_produce(kcat: str, bootstrap: str, lines: list[str]) -> None:
    proc = subprocess.run(
        [kcat, "-b", bootstrap, "-P", "-t", TOPIC, "-p", "0", "-K:", "-Z",
         "-X", "enable.idempotence=true"],
        input="".join(f"{line}\n" for line in lines).encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-4000:]


def kcat_read(kcat: str, bootstrap: str) -> list[dict]:
    proc = subprocess.run(
        [kcat, "-b", bootstrap, "-C", "-t", TOPIC, "-p", "0", "-o", "beginning", "-e", "-J"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-4000:]
    return [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]


def test_kcat_reads_the_latest_record_of_each_key_after_compaction(broker_factory, kcat):
    broker = broker_factory(
        "--log-cleanup-policy", "compact",
        "--log-cleaner-backoff-ms", "200",
        "--log-cleaner-min-cleanable-ratio", "0.01",
        "--segment-ms", "1000",
        segment_bytes=4096,
    )
    sent: list[tuple[str, str | None]] = []

    def produce(lines: list[str]) -> None:
        kcat_produce(kcat, broker.bootstrap, lines)
        for line in lines:
            key, value = line.split(":", 1)
            sent.append((key, value or None))

    # Many versions of every key, some of them tombstones (empty value with -Z).
    for version in range(12):
        produce([
            f"key-{k}:" if (k + version) % 9 == 0 else f"key-{k}:v{version}-{'x' * (k % 13)}"
            for k in range(KEYS)
        ])
    broker.stop_clean()
    broker.restart()
    for version in range(12, 20):
        produce([f"key-{k}:v{version}" for k in range(0, KEYS, 3)])
    # Past segment.ms, so the next append rolls: the last round starts a segment.
    time.sleep(1.5)
    produce([f"key-{k}:" if k % 10 == 0 else f"key-{k}:final" for k in range(0, KEYS, 5)])
    # The cleaner maps sealed segments only: seal the last round with one more roll.
    time.sleep(1.5)
    produce(["sentinel:end"])

    latest: dict[str, tuple[int, str | None]] = {}
    for offset, (key, value) in enumerate(sent):
        latest[key] = (offset, value)
    expected = sorted((o, k, v) for k, (o, v) in latest.items())
    assert len(sent) > 3 * len(expected)

    deadline = time.monotonic() + 60
    while True:
        got = sorted((r["offset"], r["key"], r["payload"]) for r in kcat_read(kcat, broker.bootstrap))
        if got == expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert got == expected, (
        f"{len(got)} records read, {len(expected)} expected; "
        f"extra {sorted(set(got) - set(expected))}, missing {sorted(set(expected) - set(got))}"
    )
    assert "compacted log" in broker.log_text()

    # The compacted log survives another restart as it is, and takes appends after it.
    broker.stop_clean()
    broker.restart()
    got = sorted((r["offset"], r["key"], r["payload"]) for r in kcat_read(kcat, broker.bootstrap))
    assert got == expected


def test_a_keyless_record_is_refused_on_a_compacted_topic(broker_factory):
    broker = broker_factory("--log-cleanup-policy", "compact")
    results: list = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": "lz4",
                         "message.send.max.retries": 0})
    producer.produce(TOPIC, key=b"k", value=b"keyed", on_delivery=lambda e, m: results.append(e))
    producer.flush(30)
    producer.produce(TOPIC, value=b"keyless", on_delivery=lambda e, m: results.append(e))
    producer.flush(30)
    assert results[0] is None, results
    assert results[1] is not None and results[1].code() == KafkaError.INVALID_RECORD, results


def test_describe_configs_reports_the_broker_cleanup_policy(broker_factory):
    broker = broker_factory("--log-cleanup-policy", "compact", "--log-cleaner-threads", "2")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    # A topic asking for the policy in force is accepted.
    admin.create_topics([NewTopic("asks-compact", 1, config={"cleanup.policy": "compact"})])[
        "asks-compact"
    ].result(30)
    topic = ConfigResource(ConfigResource.Type.TOPIC, "asks-compact")
    configs = admin.describe_configs([topic])[topic].result(30)
    assert configs["cleanup.policy"].value == "compact"
    node = ConfigResource(ConfigResource.Type.BROKER, "0")
    configs = admin.describe_configs([node])[node].result(30)
    assert configs["log.cleanup.policy"].value == "compact"
    assert configs["log.cleaner.threads"].value == "2"
    assert configs["log.cleaner.backoff.ms"].value == "15000"
