"""Crash campaign with confluent-kafka (librdkafka): the weir-broker binary is killed with
SIGKILL at random moments (20 times, `WEIR_CAMPAIGN_KILLS` for more) and paused with
SIGSTOP/SIGCONT while an idempotent acks=all producer writes and a consumer group reads and
commits. Each restart is on the same data directory and port. The whole history is then
checked: every acknowledged record is in the log at its offset and was consumed, nothing
appears that was never produced, the producer's order holds in each partition, no record
appears twice, and committed offsets never go backwards (a commit acknowledged before a kill
is still there after it).

The schedule comes from a seed printed first; `WEIR_CAMPAIGN_SEED=<seed>` replays it. The
weir-client side of the campaign is tests/tests/campaign_kill.rs; scripts/campaign.sh runs
both for longer."""

from __future__ import annotations

import os
import random
import signal
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from helpers import assert_contiguous, create_topic, read_partitions

TOPIC = "campaign-py"
PARTITIONS = 3
GROUP = "campaign-py-group"
SETTLE_S = 150.0


def _seed() -> int:
    env = os.environ.get("WEIR_CAMPAIGN_SEED")
    return int(env) if env else time.time_ns() & ((1 << 63) - 1)


def _value(seq: int, pad: int) -> bytes:
    return b"c1-%010d-" % seq + b"x" * pad


def _seq(value: bytes) -> int:
    return int(value.split(b"-")[1])


class CampaignProducer(threading.Thread):
    """Produces until stopped; records every value handed to librdkafka and every ack."""

    def __init__(self, bootstrap: str, seed: int):
        super().__init__(daemon=True)
        self.producer = Producer({
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 2,
            "message.timeout.ms": 300_000,
            "queue.buffering.max.messages": 5_000,
            "reconnect.backoff.ms": 20,
            "reconnect.backoff.max.ms": 250,
            "log_level": 2,  # connection refused while the broker is down is the point
        })
        self.rnd = random.Random(seed)
        self.produced: set[bytes] = set()
        self.acked: list[tuple[int, int, bytes]] = []
        self.failed: list[tuple[str, bytes]] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def _on_delivery(self, err, msg):
        if err is None:
            self.acked.append((msg.partition(), msg.offset(), msg.value()))
        else:
            self.failed.append((str(err), msg.value()))

    def run(self):
        try:
            seq = 0
            while not self.stop.is_set():
                value = _value(seq, self.rnd.randint(0, 120))
                try:
                    self.producer.produce(TOPIC, value=value, partition=seq % PARTITIONS,
                                          on_delivery=self._on_delivery)
                except BufferError:
                    self.producer.poll(0.01)
                    continue
                self.produced.add(value)
                seq += 1
                self.producer.poll(0)
                if seq % 25 == 0:
                    time.sleep(0.01)  # about 2,000 records a second
            remaining = self.producer.flush(SETTLE_S)
            if remaining:
                self.failed.append((f"{remaining} records never acknowledged", b""))
        except BaseException as e:  # surfaced by the test
            self.error = e


class GroupReader(threading.Thread):
    """A consumer-group member that records what it reads and commits after every batch."""

    def __init__(self, bootstrap: str):
        super().__init__(daemon=True)
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": GROUP,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 1_000,
            "reconnect.backoff.ms": 20,
            "reconnect.backoff.max.ms": 250,
            "log_level": 2,
        })
        self.consumed: list[tuple[int, int, bytes]] = []
        self.commits: list[tuple[int, int]] = []
        self.commit_errors = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.lock = threading.Lock()

    def run(self):
        try:
            self.consumer.subscribe([TOPIC])
            while not self.stop.is_set():
                msgs = self.consumer.consume(num_messages=500, timeout=0.2)
                nxt: dict[int, int] = {}
                with self.lock:
                    for m in msgs:
                        if m.error() is not None:
                            continue  # transport errors while the broker is down
                        self.consumed.append((m.partition(), m.offset(), m.value()))
                        nxt[m.partition()] = max(nxt.get(m.partition(), 0), m.offset() + 1)
                if not nxt:
                    continue
                try:
                    self.consumer.commit(
                        offsets=[TopicPartition(TOPIC, p, o) for p, o in nxt.items()],
                        asynchronous=False,
                    )
                except KafkaException:
                    self.commit_errors += 1
                    continue
                with self.lock:
                    self.commits.extend(nxt.items())
            self.consumer.close()
        except BaseException as e:
            self.error = e

    def consumed_positions(self) -> set[tuple[int, int]]:
        with self.lock:
            return {(p, o) for p, o, _ in self.consumed}

    def highest_commits(self) -> dict[int, int]:
        with self.lock:
            out: dict[int, int] = {}
            for p, o in self.commits:
                out[p] = max(out.get(p, o), o)
            return out


def _read_committed(bootstrap: str) -> dict[int, int]:
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP,
                       "enable.auto.commit": False, "log_level": 2})
    try:
        deadline = time.monotonic() + SETTLE_S
        while True:
            try:
                tps = reader.committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)],
                                       timeout=10)
                return {tp.partition: tp.offset for tp in tps if tp.offset >= 0}
            except KafkaException as err:
                assert time.monotonic() < deadline, f"OffsetFetch keeps failing: {err}"
                time.sleep(0.1)
    finally:
        reader.close()


def check_history(produced, acked, consumed, commit_checks, final) -> list[str]:
    """Every violation of the campaign's promises (empty when all hold)."""
    errors: list[str] = []
    at = {}
    seen: dict[bytes, tuple[int, int]] = {}
    for p, records in final.items():
        try:
            assert_contiguous(records)
        except AssertionError as e:
            errors.append(f"partition {p}: {e}")
        last = -1
        for o, _k, v, _h, _ts in records:
            at[(p, o)] = v
            if v not in produced:
                errors.append(f"partition {p} offset {o}: {v[:30]!r} was never produced")
                continue
            if v in seen:
                errors.append(f"duplicate {v[:30]!r} at {seen[v]} and {(p, o)}")
            seen[v] = (p, o)
            if _seq(v) <= last:
                errors.append(f"partition {p} offset {o}: sequence {_seq(v)} after {last}")
            last = _seq(v)
    for p, o, v in acked:
        if at.get((p, o)) != v:
            errors.append(f"acknowledged {v[:30]!r} at {p}/{o} lost or changed")
    positions = set()
    for p, o, v in consumed:
        positions.add((p, o))
        if at.get((p, o)) != v:
            errors.append(f"consumed {v[:30]!r} at {p}/{o}, the log holds {at.get((p, o))!r}")
    for p, o, v in acked:
        if (p, o) not in positions:
            errors.append(f"acknowledged {v[:30]!r} at {p}/{o} was never consumed")
    previous: dict[int, int] = {}
    for i, (acknowledged, read_back) in enumerate(commit_checks):
        for p, o in acknowledged.items():
            if read_back.get(p, -1) < o:
                errors.append(f"restart {i}: partition {p} committed {read_back.get(p)} < acked {o}")
        for p, o in read_back.items():
            if o < previous.get(p, -1):
                errors.append(f"restart {i}: partition {p} committed {o} < earlier {previous[p]}")
            previous[p] = o
    return errors


def test_check_history_reports_each_kind_of_violation():
    """The checker itself: a consistent history passes, and each broken promise is caught."""
    v = [_value(i, 2) for i in range(4)]
    final = {0: [(i, None, v[i], None, 0) for i in range(4)]}
    acked = [(0, i, v[i]) for i in range(4)]
    good = (set(v), acked, list(acked), [({0: 2}, {0: 3})], final)
    assert check_history(*good) == []
    lost = {0: final[0][:3]}
    assert any("lost" in e for e in check_history(set(v), acked, acked, [], lost))
    dup = {0: final[0] + [(4, None, v[1], None, 0)]}
    assert any("duplicate" in e for e in check_history(set(v), [], [], [], dup))
    swapped = {0: [(0, None, v[1], None, 0), (1, None, v[0], None, 0)]}
    assert any("sequence" in e for e in check_history(set(v), [], [], [], swapped))
    phantom = {0: [(0, None, _value(99, 0), None, 0)]}
    assert any("never produced" in e for e in check_history(set(v), [], [], [], phantom))
    assert any("never consumed" in e for e in check_history(set(v), acked, acked[:3], [], final))
    backwards = [({}, {0: 3}), ({}, {0: 2})]
    assert any("earlier" in e for e in check_history(set(v), [], [], backwards, final))
    assert any("acked" in e for e in check_history(set(v), [], [], [({0: 3}, {0: 2})], final))


def test_confluent_campaign_survives_kills_and_pauses(broker_factory):
    seed = _seed()
    kills = max(20, int(os.environ.get("WEIR_CAMPAIGN_KILLS", "20")))
    print(f"campaign seed {seed}, {kills} kills (replay: WEIR_CAMPAIGN_SEED={seed})")
    rnd = random.Random(seed)
    broker = broker_factory("--group-initial-rebalance-delay-ms", "0", segment_bytes=256 << 10)
    create_topic(broker.bootstrap, TOPIC, PARTITIONS)
    producer = CampaignProducer(broker.bootstrap, rnd.getrandbits(63))
    reader = GroupReader(broker.bootstrap)
    producer.start()
    reader.start()
    commit_checks = []
    pauses = killed_paused = 0
    try:
        for _ in range(kills):
            time.sleep(rnd.uniform(0.15, 1.2))
            paused = False
            if rnd.randrange(3) == 0:
                os.kill(broker.proc.pid, signal.SIGSTOP)
                pauses += 1
                paused = True
                time.sleep(rnd.uniform(0.1, 1.5))
                if rnd.randrange(2) == 0:
                    os.kill(broker.proc.pid, signal.SIGCONT)
                    paused = False
                    time.sleep(rnd.uniform(0, 0.4))
            killed_paused += paused
            broker.kill9()
            acknowledged = reader.highest_commits()
            time.sleep(rnd.uniform(0, 0.3))
            broker.restart()
            commit_checks.append((acknowledged, _read_committed(broker.bootstrap)))
            assert producer.error is None and reader.error is None, (producer.error, reader.error)
        time.sleep(1)
    finally:
        producer.stop.set()
        producer.join(SETTLE_S + 30)
    assert not producer.is_alive(), "the producer did not finish"
    assert producer.error is None, f"producer thread failed: {producer.error!r}"
    wanted = {(p, o) for p, o, _ in producer.acked}
    deadline = time.monotonic() + SETTLE_S
    while not wanted <= reader.consumed_positions() and time.monotonic() < deadline:
        time.sleep(0.1)
    reader.stop.set()
    reader.join(60)
    assert not reader.is_alive(), "the group reader did not finish"
    assert reader.error is None, f"group reader failed: {reader.error!r}"

    # A clean stop and restart after all that; then read and check everything.
    broker.stop_clean()
    broker.restart()
    commit_checks.append((reader.highest_commits(), _read_committed(broker.bootstrap)))
    final = read_partitions(broker.bootstrap, TOPIC, PARTITIONS)
    errors = check_history(producer.produced, producer.acked, reader.consumed, commit_checks,
                           final)
    assert not errors, (f"campaign seed {seed} (replay: WEIR_CAMPAIGN_SEED={seed}): "
                        f"{len(errors)} violations: " + "; ".join(errors[:10]))
    assert producer.failed == [], f"{len(producer.failed)} deliveries failed: {producer.failed[:3]}"
    assert producer.acked and reader.commits, "nothing acknowledged or committed"
    records = sum(len(r) for r in final.values())
    print(f"campaign seed {seed}: {kills} kills survived ({killed_paused} while paused), "
          f"{pauses} pauses; {len(producer.produced)} records produced, {len(producer.acked)} "
          f"acknowledged, {records} in the log checked, {len(reader.consumed)} consumed; "
          f"{len(reader.commits)} commits acknowledged, {len(commit_checks)} commit read-backs, "
          f"{reader.commit_errors} commit errors retried")
