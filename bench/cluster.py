#!/usr/bin/env python3
"""Cluster metadata figures on this machine: a 3-node cluster of release brokers on loopback.

- create-to-visible: CreateTopics through node 1, then the time until all three nodes list the
  topic in their Metadata (each commit waits for a majority's fsync);
- controller failover: kill -9 of the controller, then the time until a topic creation
  through a survivor succeeds (election plus one commit); the killed node is restarted and
  the cluster re-formed between runs.

Each is measured RUNS times (20 by default); the median and worst are printed, beside this
machine's own figure from the same run: the median latency of a 4 KiB write + fdatasync in
the same directory (what every commit waits for, at least twice per majority).

Usage: bench/cluster.py [--runs 20] [--election-ms 500]
Needs target/release/weir-broker and confluent-kafka (the compat suite's .venv).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import time
import urllib.request

from confluent_kafka.admin import AdminClient, NewTopic

from broker import BROKER, TMP, free_port, wait_listening

DEBUG = os.environ.get("BENCH_DEBUG") == "1"


def fsync_latency_ms(directory, count=200):
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    samples = []
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            os.write(fd, b"x" * 4096)
            os.fdatasync(fd)
            samples.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
        os.unlink(path)
    return statistics.median(samples)


class Node:
    def __init__(self, root, node_id, ports, peers, election_ms):
        self.id = node_id
        self.kafka, self.cluster, self.http = ports
        self.args = [
            str(BROKER), "--node-id", str(node_id),
            "--listen", f"127.0.0.1:{self.kafka}",
            "--data-dir", str(root / f"node-{node_id}"),
            "--cluster-listen", f"127.0.0.1:{self.cluster}",
            "--peers", peers, "--http-listen", f"127.0.0.1:{self.http}",
            "--election-timeout-ms", str(election_ms),
        ]
        self.proc = None

    def start(self):
        log = os.environ.get("BENCH_NODE_LOG")
        out = open(f"{log}.{self.id}", "a") if log else None
        self.proc = subprocess.Popen(self.args, env={"WEIR_LOG": os.environ.get("BENCH_WEIR_LOG", "warn"), "PATH": "/usr/bin:/bin"}, stderr=out)
        wait_listening(self.kafka, self.proc, timeout=60.0)

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.kafka}"


def three_nodes(name, election_ms):
    """A fresh directory under TMP and three (not yet started) nodes with their ports."""
    root = TMP / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    ports = {i: (free_port(), free_port(), free_port()) for i in (1, 2, 3)}
    peers = ",".join(f"{i}@127.0.0.1:{p[1]}" for i, p in ports.items())
    return root, [Node(root, i, ports[i], peers, election_ms) for i in (1, 2, 3)]


def admin(node):
    return AdminClient({"bootstrap.servers": node.bootstrap})


def raft(node):
    url = f"http://127.0.0.1:{node.http}/v1/cluster/raft"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.load(answer)


def controller(nodes):
    """The metadata leader every running node agrees on, once every running broker is listed
    as live; None before."""
    running = [n for n in nodes if n.proc.poll() is None]
    try:
        statuses = [raft(n) for n in running]
        leaders = {st["leader"] for st in statuses}
        # Every node caught up: a node still catching up cannot win an election, and a
        # failover right after a restart measures that, not the steady state.
        if len({st["last_applied"] for st in statuses}) != 1:
            return None
        live = [sorted(admin(n).list_topics(timeout=5).brokers) for n in running]
    except Exception as err:  # noqa: BLE001 - a node still starting
        print("not yet:", err) if DEBUG else None
        return None
    ids = sorted(n.id for n in running)
    if len(leaders) != 1 or None in leaders or any(b != ids for b in live):
        return None
    leader = leaders.pop()
    return leader if leader in ids else None


def wait_formed(nodes, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = controller(nodes)
        if c is not None:
            return c
        time.sleep(0.05)
    raise SystemExit("cluster did not form")


def create(node, name, timeout=30):
    client = admin(node)  # kept alive until the answer: a dropped client fails its futures
    futures = client.create_topics([NewTopic(name, 1, 1)], operation_timeout=10)
    futures[name].result(timeout=timeout)


def visible_everywhere(clients, name):
    for client in clients:
        md = client.list_topics(topic=name, timeout=5)
        if name not in md.topics or md.topics[name].error is not None:
            return False
    return True


def summary(label, samples):
    return f"{label}: median {statistics.median(samples):.1f} ms, worst {max(samples):.1f} ms (n={len(samples)})"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--election-ms", type=int, default=500)
    args = parser.parse_args()
    root, nodes = three_nodes("cluster", args.election_ms)
    try:
        for n in nodes:
            n.start()
        wait_formed(nodes)
        fsync_ms = fsync_latency_ms(root)
        visible = []
        clients = [admin(n) for n in nodes]
        for run in range(args.runs):
            name = f"latency-{run}"
            t0 = time.perf_counter()
            create(nodes[0], name)
            while not visible_everywhere(clients, name):
                time.sleep(0.002)
            visible.append((time.perf_counter() - t0) * 1000)
        failover = []
        for run in range(args.runs):
            leader_id = wait_formed(nodes)
            leader = next(n for n in nodes if n.id == leader_id)
            survivor = next(n for n in nodes if n.id != leader_id)
            t0 = time.perf_counter()
            print(f"kill {leader_id} at {time.strftime('%H:%M:%S', time.gmtime())}.{int(time.time() * 1000) % 1000:03d}") if DEBUG else None
            leader.kill9()
            while True:
                try:
                    create(survivor, f"failover-{run}", timeout=15)
                    break
                except Exception as err:  # noqa: BLE001 - no controller yet
                    print(f"  {(time.perf_counter() - t0) * 1000:.0f} ms: {err}") if DEBUG else None
                    time.sleep(0.01)
            failover.append((time.perf_counter() - t0) * 1000)
            print(f"failover run {run}: killed {leader_id}, {failover[-1]:.0f} ms") if DEBUG else None
            leader.start()
        print(f"machine: 4 KiB write + fdatasync median {fsync_ms:.2f} ms")
        print(summary("create topic -> visible on all 3 nodes", visible))
        print(summary(f"controller kill -9 -> next topic created (election timeout {args.election_ms} ms)", failover))
    finally:
        for n in nodes:
            n.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
