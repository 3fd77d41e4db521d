"""Kafka Connect (connect-runtime 4.4.0) against weir-broker, in both of its modes.

Standalone: a worker copies a file through a topic into another file exactly, and after a
restart carries on from its committed positions, neither repeating nor skipping a line.

Distributed: a worker keeps its connector configs, source offsets and statuses in three topics
it creates itself as compacted topics (`cleanup.policy=compact`, which it checks through
DescribeConfigs and refuses to start without) and coordinates through a group of protocol type
`connect`. The connectors are submitted through its REST API; the worker copies a file exactly,
is killed (SIGKILL, after its positions are committed) and started again, and the new worker
finds both connectors in the config topic and each task's position (the source's in the offsets
topic, the sink's in its consumer group), so the lines written meanwhile are copied once.

Kafka's FileStream connectors (org.apache.kafka:connect-file) are not served by the package
registry this project reaches, so the connectors are tests/java's own line-file pair
(`dev.weir.compat.connect`): what they exercise is Connect's worker against the broker — its
producer for the source, its consumer group for the sink, and the committed positions of both.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from conftest import free_port
from helpers import read_partitions
from java import JVM_FLAGS, TOOLS_VERSION

TOPIC = "connect-lines"


def lines(first: int, count: int) -> list[str]:
    return ["" if i % 50 == 0 else f"line {i}: ünïcødé\ttab, comma" for i in range(first, first + count)]


def _wait_for_copy(proc: subprocess.Popen, sink: Path, log: Path, want: list[str]) -> None:
    """Waits until `sink` holds as many lines as `want`, then asserts it holds exactly those."""
    deadline = time.monotonic() + 90
    while True:
        got = sink.read_text(encoding="utf-8").split("\n")[:-1] if sink.exists() else []
        if len(got) >= len(want):
            break
        assert proc.poll() is None, f"Connect exited ({proc.returncode}):\n{log.read_text()[-10000:]}"
        assert time.monotonic() < deadline, f"{len(got)} of {len(want)} lines copied:\n{log.read_text()[-10000:]}"
        time.sleep(0.2)
    time.sleep(1.0)  # a repeat would come right after
    got = sink.read_text(encoding="utf-8").split("\n")[:-1]
    assert got == want, f"{len(got)} lines copied, {len(want)} expected; first difference at " + str(
        next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    )


def _stop(proc: subprocess.Popen, log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"Connect did not stop within 30 s of SIGTERM:\n{log.read_text()[-10000:]}")


def _start_worker(classpath: str, main: str, args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        ["java", *JVM_FLAGS, "-cp", classpath, main, *args],
        stdin=subprocess.DEVNULL, stdout=open(log, "a"), stderr=subprocess.STDOUT,
    )


def test_connect_standalone_copies_a_file_and_resumes_after_a_restart(java_builds, broker_factory, tmp_path):
    classpath = java_builds.classpath(TOOLS_VERSION, tools=True)
    broker = broker_factory("--group-initial-rebalance-delay-ms", "0")
    source, sink = tmp_path / "input.txt", tmp_path / "output.txt"
    worker = tmp_path / "worker.properties"
    worker.write_text(
        f"bootstrap.servers={broker.bootstrap}\n"
        "key.converter=org.apache.kafka.connect.storage.StringConverter\n"
        "value.converter=org.apache.kafka.connect.storage.StringConverter\n"
        f"offset.storage.file.filename={tmp_path / 'connect.offsets'}\n"
        "offset.flush.interval.ms=200\n"
        # Plugins found through their ServiceLoader manifests (KIP-898), not by scanning every
        # class of the classpath: a much faster start.
        "plugin.discovery=service_load\n"
        f"listeners=http://127.0.0.1:{free_port()}\n"
    )
    (tmp_path / "source.properties").write_text(
        "name=lines-source\nconnector.class=dev.weir.compat.connect.LineSourceConnector\ntasks.max=1\n"
        f"file={source}\ntopic={TOPIC}\n"
    )
    (tmp_path / "sink.properties").write_text(
        "name=lines-sink\nconnector.class=dev.weir.compat.connect.LineSinkConnector\ntasks.max=1\n"
        f"file={sink}\ntopics={TOPIC}\n"
    )
    log = tmp_path / "connect.log"

    def start() -> subprocess.Popen:
        return _start_worker(
            classpath, "org.apache.kafka.connect.cli.ConnectStandalone",
            [str(worker), str(tmp_path / "source.properties"), str(tmp_path / "sink.properties")], log,
        )

    first = lines(0, 300)
    source.write_text("".join(f"{l}\n" for l in first), encoding="utf-8")
    proc = start()
    try:
        _wait_for_copy(proc, sink, log, first)
    finally:
        _stop(proc, log)

    # More lines while the worker is down; the restarted worker sends and copies only those.
    more = lines(300, 120)
    with source.open("a", encoding="utf-8") as f:
        f.write("".join(f"{l}\n" for l in more))
    proc = start()
    try:
        _wait_for_copy(proc, sink, log, first + more)
    finally:
        _stop(proc, log)

    stored = read_partitions(broker.bootstrap, TOPIC, 1)[0]
    assert [v.decode() for _o, _k, v, _h, _t in stored] == first + more, "the topic holds each line once, in order"


# Distributed mode's internal topics, with fewer partitions than Connect's defaults (25 for
# offsets, 5 for statuses) to keep the test quick; still more than one, so keys hash apart.
INTERNAL_TOPICS = {
    "config": ("weir-connect-configs", 1),
    "offset": ("weir-connect-offsets", 3),
    "status": ("weir-connect-status", 2),
}
CONNECT_GROUP = "weir-connect-cluster"


class Rest:
    """Connect's REST API on one worker, retried while the worker starts or rebalances."""

    def __init__(self, port: int, proc_log: Path):
        self.base = f"http://127.0.0.1:{port}"
        self.log = proc_log

    def call(self, method: str, path: str, body: dict | None = None, timeout: float = 60) -> object:
        deadline = time.monotonic() + timeout
        data = json.dumps(body).encode() if body is not None else None
        last = ""
        while time.monotonic() < deadline:
            req = urllib.request.Request(
                self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    text = resp.read().decode()
                    return json.loads(text) if text else None
            except urllib.error.HTTPError as err:
                # 409: a rebalance is under way; 404 before the worker has read its configs;
                # 500 "Request timed out" while it joins the group. All pass.
                last = f"{err.code} {err.read().decode(errors='replace')}"
                if err.code not in (404, 409, 500, 503):
                    raise AssertionError(f"{method} {path}: {last}") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
                last = str(err)
            time.sleep(0.5)
        raise AssertionError(f"{method} {path}: no answer within {timeout} s (last: {last})\n{self.log.read_text()[-10000:]}")

    def wait_running(self, name: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        status: object = None
        while time.monotonic() < deadline:
            status = self.call("GET", f"/connectors/{name}/status")
            if (
                isinstance(status, dict)
                and status.get("connector", {}).get("state") == "RUNNING"
                and [t.get("state") for t in status.get("tasks", [])] == ["RUNNING"]
            ):
                return
            time.sleep(0.5)
        raise AssertionError(f"{name} not running within {timeout} s: {status}\n{self.log.read_text()[-10000:]}")


def _source_position(bootstrap: str, source_file: Path) -> int | None:
    """The source task's last committed position: the newest value for its key in the offsets
    topic (key `["lines-source", {"file": ...}]`, value `{"line": N}`)."""
    name, partitions = INTERNAL_TOPICS["offset"]
    latest = None
    for records in read_partitions(bootstrap, name, partitions).values():
        for _o, key, value, _h, _t in records:
            if key is not None and json.loads(key) == ["lines-source", {"file": str(source_file)}]:
                latest = None if value is None else json.loads(value)["line"]
    return latest


def _sink_position(admin: AdminClient) -> int | None:
    listed = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions("connect-lines-sink", [TopicPartition(TOPIC, 0)])]
    )
    [tp] = listed["connect-lines-sink"].result(30).topic_partitions
    return tp.offset if tp.offset >= 0 else None


def test_connect_distributed_copies_a_file_and_keeps_connectors_and_positions_across_a_kill(
    java_builds, broker_factory, tmp_path
):
    classpath = java_builds.classpath(TOOLS_VERSION, tools=True)
    broker = broker_factory("--group-initial-rebalance-delay-ms", "0")
    source, sink = tmp_path / "input.txt", tmp_path / "output.txt"
    rest_port = free_port()
    worker = tmp_path / "worker.properties"
    worker.write_text(
        f"bootstrap.servers={broker.bootstrap}\n"
        f"group.id={CONNECT_GROUP}\n"
        "key.converter=org.apache.kafka.connect.storage.StringConverter\n"
        "value.converter=org.apache.kafka.connect.storage.StringConverter\n"
        + "".join(
            f"{kind}.storage.topic={name}\n{kind}.storage.replication.factor=1\n"
            + (f"{kind}.storage.partitions={n}\n" if kind != "config" else "")
            for kind, (name, n) in INTERNAL_TOPICS.items()
        )
        + "offset.flush.interval.ms=200\n"
        # A killed worker's tasks go to the next one to join at once, not after the default
        # five minutes Connect waits for the same worker to come back.
        "scheduled.rebalance.max.delay.ms=0\n"
        "session.timeout.ms=6000\nheartbeat.interval.ms=1000\n"
        "plugin.discovery=service_load\n"
        f"listeners=http://127.0.0.1:{rest_port}\n"
    )
    log = tmp_path / "connect.log"
    rest = Rest(rest_port, log)
    connectors = {
        "lines-source": {
            "connector.class": "dev.weir.compat.connect.LineSourceConnector",
            "tasks.max": "1", "file": str(source), "topic": TOPIC,
        },
        "lines-sink": {
            "connector.class": "dev.weir.compat.connect.LineSinkConnector",
            "tasks.max": "1", "file": str(sink), "topics": TOPIC,
        },
    }

    def start() -> subprocess.Popen:
        return _start_worker(classpath, "org.apache.kafka.connect.cli.ConnectDistributed", [str(worker)], log)

    first = lines(0, 300)
    source.write_text("".join(f"{l}\n" for l in first), encoding="utf-8")
    proc = start()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    try:
        for name, config in connectors.items():
            rest.call("POST", "/connectors", {"name": name, "config": config})
        for name in connectors:
            rest.wait_running(name)
        _wait_for_copy(proc, sink, log, first)

        # The worker made its three topics compacted (it would not have started otherwise).
        resources = [ConfigResource("topic", name) for name, _n in INTERNAL_TOPICS.values()]
        for resource, future in admin.describe_configs(resources).items():
            assert future.result(30)["cleanup.policy"].value == "compact", resource

        # Both positions committed before the kill, so nothing is owed to the next worker.
        deadline = time.monotonic() + 30
        while (_source_position(broker.bootstrap, source), _sink_position(admin)) != (len(first), len(first)):
            assert time.monotonic() < deadline, (
                f"positions not committed: source {_source_position(broker.bootstrap, source)}, "
                f"sink {_sink_position(admin)} of {len(first)}"
            )
            time.sleep(0.5)
    finally:
        proc.kill()
        proc.wait()

    more = lines(300, 120)
    with source.open("a", encoding="utf-8") as f:
        f.write("".join(f"{l}\n" for l in more))
    proc = start()
    try:
        # Nothing submitted again: the connectors come back from the config topic.
        deadline = time.monotonic() + 60
        while (listed := sorted(rest.call("GET", "/connectors"))) != sorted(connectors):
            assert time.monotonic() < deadline, f"the restarted worker lists {listed}"
            time.sleep(0.5)
        for name, config in connectors.items():
            assert rest.call("GET", f"/connectors/{name}/config") == {**config, "name": name}
            rest.wait_running(name)
        _wait_for_copy(proc, sink, log, first + more)
    finally:
        _stop(proc, log)

    stored = read_partitions(broker.bootstrap, TOPIC, 1)[0]
    assert [v.decode() for _o, _k, v, _h, _t in stored] == first + more, "the topic holds each line once, in order"
