"""Kafka Connect (connect-runtime 4.4.0) against weir-broker: a standalone worker copies a file
through a topic into another file exactly, and after a restart carries on from its committed
positions, neither repeating nor skipping a line.

Kafka's FileStream connectors (org.apache.kafka:connect-file) are not served by the package
registry this project reaches, so the connectors are tests/java's own line-file pair
(`dev.weir.compat.connect`): what they exercise is Connect's worker against the broker — its
producer for the source, its consumer group for the sink, and the committed positions of both.
Distributed mode keeps its configs, offsets and status in compacted topics, which the broker
does not have yet (issue 15), so it is not run here.
"""

from __future__ import annotations

import signal
import subprocess
import time

from conftest import free_port
from helpers import read_partitions
from java import JVM_FLAGS, TOOLS_VERSION

TOPIC = "connect-lines"


def lines(first: int, count: int) -> list[str]:
    return ["" if i % 50 == 0 else f"line {i}: ünïcødé\ttab, comma" for i in range(first, first + count)]


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
        return subprocess.Popen(
            ["java", *JVM_FLAGS, "-cp", classpath, "org.apache.kafka.connect.cli.ConnectStandalone",
             str(worker), str(tmp_path / "source.properties"), str(tmp_path / "sink.properties")],
            stdin=subprocess.DEVNULL, stdout=open(log, "a"), stderr=subprocess.STDOUT,
        )

    def wait_for(proc: subprocess.Popen, want: list[str]) -> None:
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

    def stop(proc: subprocess.Popen) -> None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"Connect did not stop within 30 s of SIGTERM:\n{log.read_text()[-10000:]}")

    first = lines(0, 300)
    source.write_text("".join(f"{l}\n" for l in first), encoding="utf-8")
    proc = start()
    try:
        wait_for(proc, first)
    finally:
        stop(proc)

    # More lines while the worker is down; the restarted worker sends and copies only those.
    more = lines(300, 120)
    with source.open("a", encoding="utf-8") as f:
        f.write("".join(f"{l}\n" for l in more))
    proc = start()
    try:
        wait_for(proc, first + more)
    finally:
        stop(proc)

    stored = read_partitions(broker.bootstrap, TOPIC, 1)[0]
    assert [v.decode() for _o, _k, v, _h, _t in stored] == first + more, "the topic holds each line once, in order"
