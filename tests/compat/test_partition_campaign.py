"""The partition fault campaign with confluent-kafka (librdkafka) clients, judged by the same
checker as the Rust campaign (`weir_tests::jepsen`, through its `weir-jepsen-check` binary).

On a 3-node cluster, an idempotent producer (`enable.idempotence`, `acks=all`) writes unique
values `py-<seq>` to partition `seq % 4` of a topic of `WEIR_CAMPAIGN_RF` replicas (default
3) and a group consumer reads and commits as it goes, while the seeded faults run: kill -9 of
a partition's leader or of any node, SIGSTOP of a leader past the election timeout, every
node killed at once. After healing, a consumer in assign mode reads everything from offset
0, the group's committed offsets are read back, and the history (JSON lines, one operation a
line: the format `weir_tests::jepsen::read_history` reads) goes to the checker: no
acknowledged record lost, no offset holding two values, no reordering, no phantom, no
duplicate, no committed offset going back.

A send is `ok` when its delivery report has no error, `fail` when `produce()` refused it
(never queued), `info` (indeterminate) when its delivery report has an error or it had none
by the end. `WEIR_PY_PARTITION_FAULTS` (default 5) and `WEIR_PARTITION_SEED` (default: the
time, printed) set the run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cluster_fixture import Cluster
from conftest import REPO
from kafka_peer import kafka_mode, weir_only

TOPIC = "py-jepsen"
PARTITIONS = 4
GROUP = "py-jepsen-group"
RATE = 150  # values a second


def checker_binary() -> Path:
    """`$WEIR_JEPSEN_CHECK_BIN`, else built with cargo into this checkout's target directory."""
    if os.environ.get("WEIR_JEPSEN_CHECK_BIN"):
        return Path(os.environ["WEIR_JEPSEN_CHECK_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if not target.is_absolute():
        target = REPO / target
    built = subprocess.run(
        ["cargo", "build", "--quiet", "-p", "weir-tests", "--bin", "weir-jepsen-check"],
        cwd=REPO, capture_output=True, text=True,
    )
    if built.returncode != 0:
        pytest.fail(f"cargo build of weir-jepsen-check failed:\n{built.stderr}", pytrace=False)
    return target / "debug" / "weir-jepsen-check"


class History:
    """The operations, appended from the client threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ops: list[dict] = []

    def add(self, op: dict) -> None:
        with self.lock:
            self.ops.append(op)

    def send(self, producer: str, seq: int, partition: int, value: str, outcome: str,
             offset: int | None = None) -> None:
        op = {"op": "send", "producer": producer, "seq": seq, "partition": partition,
              "value": value, "outcome": outcome}
        if offset is not None:
            op["offset"] = offset
        self.add(op)

    def read(self, reader: str, partition: int, offset: int, value: str,
             final: bool = False) -> None:
        op = {"op": "read", "reader": reader, "partition": partition, "offset": offset,
              "value": value}
        if final:
            op["final"] = True  # the reads after healing: what is missing there is lost
        self.add(op)

    def commit(self, partition: int, offset: int, by: str) -> None:
        self.add({"op": "commit", "group": GROUP, "partition": partition, "offset": offset,
                  "by": by})

    def acknowledged(self) -> int:
        with self.lock:
            return sum(1 for op in self.ops if op.get("outcome") == "ok")

    def group_caught_up(self) -> bool:
        """Whether the group consumer has read every acknowledged value (and one at least)."""
        with self.lock:
            acked = {op["value"] for op in self.ops if op.get("outcome") == "ok"}
            read = {op["value"] for op in self.ops
                    if op["op"] == "read" and op["reader"] == "group"}
        return bool(read) and acked <= read

    def write(self, path: Path) -> None:
        with self.lock, open(path, "w") as f:
            for op in self.ops:
                f.write(json.dumps(op) + "\n")


def produce(bootstrap: str, name: str, history: History, stop: threading.Event,
            errors: list) -> None:
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "message.timeout.ms": 20000,
        "retry.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "topic.metadata.refresh.interval.ms": 1000,
        "error_cb": lambda err: errors.append(err) if err.fatal() else None,
    })
    pending: dict[int, tuple[int, str]] = {}
    seq = 0
    while not stop.is_set():
        partition = seq % PARTITIONS
        value = f"{name}-{seq}"

        def delivered(err, msg, seq=seq, partition=partition, value=value):
            pending.pop(seq, None)
            if err is None:
                history.send(name, seq, partition, value, "ok", msg.offset())
            else:
                history.send(name, seq, partition, value, "info")

        try:
            producer.produce(TOPIC, value=value.encode(), partition=partition,
                             on_delivery=delivered)
            pending[seq] = (partition, value)
        except (BufferError, KafkaException):
            history.send(name, seq, partition, value, "fail")
        seq += 1
        producer.poll(0)
        time.sleep(1 / RATE)
    producer.flush(60)
    for seq, (partition, value) in sorted(pending.items()):
        history.send(name, seq, partition, value, "info")


def consume_group(bootstrap: str, history: History, stop: threading.Event) -> None:
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": GROUP,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000,
    })
    consumer.subscribe([TOPIC])
    while not stop.is_set():
        messages = consumer.consume(num_messages=200, timeout=0.2)
        upto: dict[int, int] = {}
        for m in messages:
            if m.error():
                continue
            history.read("group", m.partition(), m.offset(), m.value().decode())
            upto[m.partition()] = max(upto.get(m.partition(), 0), m.offset() + 1)
        if not upto:
            continue
        try:
            done = consumer.commit(
                offsets=[TopicPartition(TOPIC, p, o) for p, o in sorted(upto.items())],
                asynchronous=False,
            )
        except KafkaException:
            continue  # a rebalance or the coordinator away: retried by the next commit
        for tp in done:
            if tp.error is None:
                history.commit(tp.partition, tp.offset, "member")
    consumer.close()


def read_committed(bootstrap: str, history: History) -> None:
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP,
                       "enable.auto.commit": False})
    try:
        for tp in reader.committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)],
                                   timeout=10):
            if tp.error is None and tp.offset >= 0:
                history.commit(tp.partition, tp.offset, "fetch")
    finally:
        reader.close()


def read_assigned(bootstrap: str, history: History) -> int:
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "py-jepsen-reader",
                       "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    ends = {p: reader.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1]
            for p in range(PARTITIONS)}
    reader.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    reached = {p: 0 for p in range(PARTITIONS)}
    count = 0
    deadline = time.monotonic() + 60
    while any(reached[p] < ends[p] for p in ends):
        assert time.monotonic() < deadline, f"assign-mode read reached {reached} of {ends}"
        for m in reader.consume(num_messages=500, timeout=0.5):
            if m.error():
                continue
            history.read("assign", m.partition(), m.offset(), m.value().decode(), final=True)
            reached[m.partition()] = m.offset() + 1
            count += 1
    reader.close()
    return count


def leader_of(cluster: Cluster, partition: int) -> int | None:
    for node in cluster.running():
        try:
            return cluster.metadata(node, TOPIC).topics[TOPIC].partitions[partition].leader
        except Exception:  # noqa: BLE001 - that node is paused or starting
            continue
    return None


def restart_all(cluster: Cluster) -> None:
    """Every stopped node at once: a node may wait for its peers before it listens."""
    threads = [threading.Thread(target=b.restart) for b in cluster.brokers.values()
               if not b.is_running()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def fault(cluster: Cluster, rng: random.Random) -> str:
    kind = rng.choice(["kill-leader", "kill-any", "pause-leader", "kill-all"])
    partition = rng.randrange(PARTITIONS)
    leader = leader_of(cluster, partition)
    victim = leader if leader in cluster.brokers else rng.choice(list(cluster.brokers))
    hold = rng.uniform(0.3, 1.5)
    if kind == "kill-any":
        victim = rng.choice(list(cluster.brokers))
    if kind in ("kill-leader", "kill-any"):
        cluster.brokers[victim].kill9()
        time.sleep(hold)
        cluster.brokers[victim].restart()
        return f"kill -9 node {victim} for {hold:.1f}s"
    if kind == "pause-leader":
        hold = rng.uniform(0.8, 3.0)
        cluster.brokers[victim].proc.send_signal(signal.SIGSTOP)
        time.sleep(hold)
        cluster.brokers[victim].proc.send_signal(signal.SIGCONT)
        return f"SIGSTOP node {victim} (leads {partition}) for {hold:.1f}s"
    for b in cluster.brokers.values():
        b.kill9()
    time.sleep(hold)
    restart_all(cluster)
    return f"kill -9 every node for {hold:.1f}s"


def wait_led(cluster: Cluster, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leaders = [leader_of(cluster, p) for p in range(PARTITIONS)]
        if all(leader in cluster.running() for leader in leaders):
            return
        time.sleep(0.1)
    raise AssertionError(f"partitions without a live leader: {leaders}")


@pytest.fixture
def cluster(broker_factory):
    if kafka_mode():
        weir_only("a Weir cluster (--node-id, --peers)")
    c = Cluster(broker_factory)
    c.wait_formed()
    return c


def test_confluent_partition_campaign_history_is_valid(cluster, tmp_path):
    checker = checker_binary()
    seed = int(os.environ.get("WEIR_PARTITION_SEED", time.time_ns() // 1_000_000))
    faults = int(os.environ.get("WEIR_PY_PARTITION_FAULTS", "5"))
    rf = int(os.environ.get("WEIR_CAMPAIGN_RF", "3"))
    print(f"confluent-kafka partition campaign: seed {seed}, {faults} faults, "
          f"replication factor {rf} (WEIR_PARTITION_SEED={seed} replays it)")
    rng = random.Random(seed)
    bootstrap = ",".join(cluster.bootstrap(i) for i in cluster.brokers)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, rf)])[TOPIC].result(timeout=30)
    wait_led(cluster)
    history = History()
    stop_producing, stop_consuming = threading.Event(), threading.Event()
    fatal: list = []
    producer = threading.Thread(target=produce, args=(bootstrap, "py", history, stop_producing,
                                                      fatal))
    consumer = threading.Thread(target=consume_group, args=(bootstrap, history, stop_consuming))
    producer.start()
    consumer.start()
    try:
        deadline = time.monotonic() + 60
        while not (history.acknowledged() > 0 and history.group_caught_up()):
            assert time.monotonic() < deadline, "the producer or the group consumer never started"
            time.sleep(0.1)
        started = time.monotonic()
        for n in range(faults):
            what = fault(cluster, rng)
            cluster.wait_formed(timeout=60)
            wait_led(cluster)
            print(f"fault {n}: {what}; healed at {time.monotonic() - started:.1f}s, "
                  f"{history.acknowledged()} acknowledged")
        time.sleep(1)
    finally:
        stop_producing.set()
        producer.join(90)
        # The group reads what was acknowledged before it stops (bounded: it may not).
        deadline = time.monotonic() + 60
        while not history.group_caught_up() and time.monotonic() < deadline:
            time.sleep(0.2)
        stop_consuming.set()
        consumer.join(60)
    assert not producer.is_alive() and not consumer.is_alive(), "a client did not stop"
    assert not fatal, f"the idempotent producer hit a fatal error: {fatal}"
    assert history.group_caught_up(), "the group consumer did not read every acknowledged value"
    read = read_assigned(bootstrap, history)
    read_committed(bootstrap, history)
    path = tmp_path / "history.jsonl"
    history.write(path)
    result = subprocess.run([str(checker), str(path)], capture_output=True, text=True)
    print(result.stdout, result.stderr)
    assert result.returncode == 0, (
        f"anomalies (WEIR_PARTITION_SEED={seed}, replication factor {rf}), history in "
        f"{path}:\n{result.stdout}{result.stderr}"
    )
    assert history.acknowledged() > 0 and read > 0
