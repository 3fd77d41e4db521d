"""Durability seen through a real client: what a broker acknowledged at acks=all survives a
clean restart (SIGTERM) and a crash (kill -9) at the offset it was acknowledged at."""

from __future__ import annotations

import random
import threading
import time

import pytest
from confluent_kafka import Producer

from helpers import assert_contiguous, create_topic, read_partitions

SMALL_SEGMENTS = 1 << 20  # so that the data crosses segment rolls


def _produce_all(bootstrap: str, topic: str, records: list[tuple[int, bytes, bytes, int]]):
    """Produces (partition, key, value, timestamp) at acks=all; returns [(partition, offset)]
    in the order given, failing on any delivery error."""
    producer = Producer({
        "bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
        "enable.idempotence": False,
    })
    results: dict[int, tuple] = {}

    def report(i):
        def cb(err, msg):
            results[i] = (err, msg.partition(), msg.offset())
        return cb

    for i, (p, k, v, ts) in enumerate(records):
        while True:
            try:
                producer.produce(topic, key=k, value=v, partition=p, timestamp=ts,
                                 on_delivery=report(i))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0, "records left unacknowledged"
    errors = [(i, r[0]) for i, r in results.items() if r[0] is not None]
    assert errors == [], f"delivery failures: {errors[:5]}"
    return [(results[i][1], results[i][2]) for i in range(len(records))]


def _records(start: int, n: int, partitions: int, ts0: int):
    rnd = random.Random(start)
    return [
        (i % partitions, b"key-%d" % i,
         b"value-%d-" % i + bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 300))),
         ts0 + i)
        for i in range(start, start + n)
    ]


def _check_exact(bootstrap, topic, partitions, records, acks):
    """The topic holds exactly `records`, each at its acknowledged offset, nothing else."""
    got = read_partitions(bootstrap, topic, partitions)
    expected: dict[int, list] = {p: [] for p in range(partitions)}
    for (p, k, v, ts), (ap, ao) in zip(records, acks):
        assert ap == p
        expected[p].append((ao, k, v, None, ts))
    for p in range(partitions):
        assert_contiguous(got[p])
        want = sorted(expected[p])
        assert len(got[p]) == len(want), f"partition {p}: read {len(got[p])}, expected {len(want)}"
        for a, e in zip(got[p], want):
            assert a == e, f"partition {p}: read {a[:3]}..., expected {e[:3]}..."


def test_restart_keeps_everything(broker_factory):
    broker = broker_factory(segment_bytes=SMALL_SEGMENTS)
    topic, partitions = "restart", 3
    create_topic(broker.bootstrap, topic, partitions)
    ts0 = int(time.time() * 1000) - 1_000_000

    first = _records(0, 15_000, partitions, ts0)
    first_acks = _produce_all(broker.bootstrap, topic, first)
    broker.stop_clean()
    broker.restart()
    _check_exact(broker.bootstrap, topic, partitions, first, first_acks)

    # Appends after the restart continue the offsets; a second restart keeps both parts.
    second = _records(15_000, 3_000, partitions, ts0)
    second_acks = _produce_all(broker.bootstrap, topic, second)
    broker.stop_clean()
    broker.restart()
    _check_exact(broker.bootstrap, topic, partitions, first + second, first_acks + second_acks)


class LoadProducer(threading.Thread):
    """Produces continuously at acks=all; records every acknowledged (partition, offset,
    value) from the delivery reports. `pause()` stops producing and waits until every record
    sent so far is acknowledged or failed."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, idempotent: bool):
        super().__init__(daemon=True)
        self.topic, self.partitions = topic, partitions
        self.producer = Producer({
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": idempotent,
            "linger.ms": 2,
            "message.timeout.ms": 120_000,
            "queue.buffering.max.messages": 5_000,
            "reconnect.backoff.ms": 20,
            "reconnect.backoff.max.ms": 200,
        })
        self.acked: list[tuple[int, int, bytes]] = []
        self.failed: list[tuple[str, bytes]] = []
        self.seq = 0
        self._finish = threading.Event()
        self._paused = threading.Event()
        self._idle = threading.Event()
        self.error: BaseException | None = None

    def _on_delivery(self, err, msg):
        if err is None:
            self.acked.append((msg.partition(), msg.offset(), msg.value()))
        else:
            self.failed.append((str(err), msg.value()))

    def run(self):
        try:
            rnd = random.Random(7)
            while not self._finish.is_set():
                if self._paused.is_set():
                    self.producer.flush(0.1)
                    if len(self.producer) == 0:
                        self._idle.set()
                    continue
                self._idle.clear()
                value = b"rec-%09d-" % self.seq + b"z" * rnd.randint(0, 200)
                try:
                    self.producer.produce(self.topic, value=value,
                                          partition=self.seq % self.partitions,
                                          on_delivery=self._on_delivery)
                    self.seq += 1
                except BufferError:
                    self.producer.poll(0.01)
                self.producer.poll(0)
            self.producer.flush(60)
        except BaseException as e:  # surfaced by the test
            self.error = e

    def wait_acks(self, at_least: int, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while len(self.acked) < at_least:
            assert self.error is None, f"producer thread failed: {self.error!r}"
            assert time.monotonic() < deadline, (
                f"only {len(self.acked)} of {at_least} acks after {timeout}s; "
                f"failures: {self.failed[:3]}"
            )
            time.sleep(0.01)

    def pause(self, timeout: float = 60.0):
        self._paused.set()
        assert self._idle.wait(timeout), f"{len(self.producer)} records still unacknowledged"

    def resume(self):
        self._idle.clear()
        self._paused.clear()

    def finish(self):
        self._finish.set()
        self.join(90)
        assert not self.is_alive(), "producer thread did not finish"
        assert self.error is None, f"producer thread failed: {self.error!r}"


def _check_acked(bootstrap, topic, partitions, acked, idempotent):
    got = read_partitions(bootstrap, topic, partitions)
    logs = {}
    for p in range(partitions):
        assert_contiguous(got[p])
        logs[p] = [v for _, _, v, _, _ in got[p]]
    missing = []
    for p, o, v in acked:
        if o >= len(logs[p]) or logs[p][o] != v:
            found = logs[p][o][:20] if o < len(logs[p]) else "(beyond the end)"
            missing.append(f"partition {p} offset {o}: acked {v[:20]!r}, found {found!r}")
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged records lost or moved: " + (
        "; ".join(missing[:5])
    )
    if idempotent:
        # An idempotent producer's retries never write a record twice.
        for p, values in logs.items():
            dupes = len(values) - len(set(values))
            assert dupes == 0, f"partition {p}: {dupes} duplicated records"


@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotent"])
def test_kill9_loses_no_acknowledged_record(broker_factory, idempotent):
    broker = broker_factory(segment_bytes=SMALL_SEGMENTS)
    topic, partitions = "crash", 3
    create_topic(broker.bootstrap, topic, partitions)
    rnd = random.Random(1234 + idempotent)
    load = LoadProducer(broker.bootstrap, topic, partitions, idempotent)
    load.start()
    try:
        for _round in range(3):
            load.wait_acks(len(load.acked) + 3_000)
            time.sleep(rnd.uniform(0, 0.3))  # mid-load: requests are in flight
            broker.kill9()
            time.sleep(rnd.uniform(0, 0.5))
            broker.restart()
            # The producer reconnects and its acknowledgements resume.
            load.wait_acks(len(load.acked) + 1_000)
            load.pause()
            _check_acked(broker.bootstrap, topic, partitions, list(load.acked), idempotent)
            load.resume()
    finally:
        load.finish()
    assert load.failed == [], f"{len(load.failed)} records failed: {load.failed[:3]}"
    _check_acked(broker.bootstrap, topic, partitions, list(load.acked), idempotent)
