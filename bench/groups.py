#!/usr/bin/env python3
"""Consumer-group benchmark against the release broker, with confluent-kafka (librdkafka).

Measures, in one run:
  - rebalance time for 3 members on a 12-partition topic after one member leaves cleanly
    (close() sends LeaveGroup): from the close to the moment the two others own all 12
    partitions again;
  - the same after a member dies (SIGKILL of its process, no LeaveGroup), which the broker
    notices at the session timeout;
  - offset commits per second with sync-before-ack: N threads each committing synchronously
    in a loop (simple commits), so commits from all of them share fsyncs (group commit).

Usage: .venv/bin/python bench/groups.py [--write]   (--write updates docs/benchmarks.md)
Needs the compat suite's .venv (scripts/test.sh creates it).
"""

import argparse
import datetime
import multiprocessing
import os
import pathlib
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

import confluent_kafka
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = pathlib.Path(__file__).resolve().parent.parent
TMP = ROOT / "target" / "bench-tmp"
BROKER = ROOT / "target" / "release" / "weir-broker"
PARTITIONS = 12
SESSION_MS = 6000
DELAY_MS = 3000  # the broker's default initial rebalance delay


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(data, port):
    proc = subprocess.Popen(
        [str(BROKER), "--data-dir", str(data), "--listen", f"127.0.0.1:{port}"],
        env=dict(os.environ, WEIR_LOG="warn"),
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return proc
        except OSError:
            time.sleep(0.01)
    sys.exit("broker did not start")


def consumer_conf(bootstrap, group, **extra):
    conf = {
        "bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": SESSION_MS,
        "heartbeat.interval.ms": 500, "enable.auto.commit": False, "auto.offset.reset": "earliest",
    }
    conf.update(extra)
    return conf


def member_process(bootstrap, group, topic, ready):
    """A member in its own process, so that it can be killed without a LeaveGroup."""
    c = Consumer(consumer_conf(bootstrap, group))
    c.subscribe([topic], on_assign=lambda _c, parts: ready.set() if parts else None)
    while True:
        c.poll(0.1)


class Member:
    """A member in this process that records its assignment."""

    def __init__(self, bootstrap, group, topic):
        self.owned = set()
        self.lock = threading.Lock()
        self.stop = False
        self.consumer = Consumer(consumer_conf(bootstrap, group))
        self.consumer.subscribe([topic], on_assign=self._assign, on_revoke=self._revoke)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _assign(self, _c, parts):
        with self.lock:
            self.owned = {p.partition for p in parts}

    def _revoke(self, _c, _parts):
        with self.lock:
            self.owned = set()

    def _run(self):
        while not self.stop:
            self.consumer.poll(0.05)

    def partitions(self):
        with self.lock:
            return set(self.owned)

    def close(self):
        self.stop = True
        self.thread.join()
        self.consumer.close()


def wait_until(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.005)
    sys.exit("timed out waiting for the group to settle")


def covers_all(members):
    owned = [m.partitions() for m in members]
    union = set().union(*owned)
    return union == set(range(PARTITIONS)) and sum(len(o) for o in owned) == PARTITIONS


def rebalance_after_leave(bootstrap, topic, run):
    group = f"leave-{run}"
    members = [Member(bootstrap, group, topic) for _ in range(3)]
    wait_until(lambda: covers_all(members) and all(m.partitions() for m in members), 60)
    leaving, rest = members[0], members[1:]
    start = time.monotonic()
    leaving.close()
    done = wait_until(lambda: covers_all(rest), 60)
    for m in rest:
        m.close()
    return done - start


def rebalance_after_death(bootstrap, topic, run):
    group = f"death-{run}"
    ready = multiprocessing.Event()
    victim = multiprocessing.Process(target=member_process, args=(bootstrap, group, topic, ready))
    victim.start()
    members = [Member(bootstrap, group, topic) for _ in range(2)]
    wait_until(lambda: ready.is_set() and all(m.partitions() for m in members), 60)
    start = time.monotonic()
    os.kill(victim.pid, signal.SIGKILL)
    victim.join()
    done = wait_until(lambda: covers_all(members), 60)
    for m in members:
        m.close()
    return done - start


def commits_per_second(bootstrap, topic, threads=16, per_thread=300):
    def worker(i, counts):
        c = Consumer(consumer_conf(bootstrap, f"committer-{i}"))
        for n in range(per_thread):
            c.commit(offsets=[TopicPartition(topic, n % PARTITIONS, n)], asynchronous=False)
        counts[i] = per_thread
        c.close()

    counts = [0] * threads
    workers = [threading.Thread(target=worker, args=(i, counts)) for i in range(threads)]
    start = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) / (time.monotonic() - start), threads


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-p", "weir-broker"], check=True, cwd=ROOT)
    TMP.mkdir(parents=True, exist_ok=True)
    data = TMP / "groups-data"
    shutil.rmtree(data, ignore_errors=True)
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    proc = start_broker(data, port)
    try:
        topic = "bench-groups"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(10)
        leave = [rebalance_after_leave(bootstrap, topic, r) for r in range(args.runs)]
        death = [rebalance_after_death(bootstrap, topic, r) for r in range(args.runs)]
        rate, threads = commits_per_second(bootstrap, topic)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        shutil.rmtree(data, ignore_errors=True)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT).stdout.strip()
    ms = lambda xs: ", ".join(f"{x * 1000:,.0f}" for x in xs)
    table = "\n".join([
        f"Measured {datetime.date.today()} at commit `{commit}` with `bench/groups.py --runs {args.runs}` "
        f"(confluent-kafka {confluent_kafka.__version__} with librdkafka {confluent_kafka.libversion()[0]}, eager `range` assignor, "
        f"session.timeout.ms={SESSION_MS}, heartbeat.interval.ms=500, broker defaults).",
        "",
        "| Run | Median | All runs |",
        "|---|---|---|",
        f"| Rebalance after a clean leave (3 -> 2 members, 12 partitions) | {statistics.median(leave) * 1000:,.0f} ms | {ms(leave)} ms |",
        f"| Rebalance after a member dies (SIGKILL, session timeout {SESSION_MS} ms) | {statistics.median(death) * 1000:,.0f} ms | {ms(death)} ms |",
        f"| Offset commits, sync before ack, {threads} committers | {rate:,.0f} commits/s | |",
    ])
    print(table)
    if args.write:
        doc = ROOT / "docs" / "benchmarks.md"
        text = doc.read_text()
        start, end = "<!-- groups:begin -->", "<!-- groups:end -->"
        a, b = text.index(start), text.index(end) + len(end)
        doc.write_text(text[:a] + f"{start}\n{table}\n{end}" + text[b:])


if __name__ == "__main__":
    main()
