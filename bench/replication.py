#!/usr/bin/env python3
"""Replicated-partition figures on this machine, in one run (docs/benchmarks.md):

- produce throughput, `acks=all`, 1 KiB records, one partition (`weir perf produce`): a
  single broker against a 3-node cluster with replication factor 3 on the same machine,
  interleaved (single, cluster, single, cluster, ...), so every byte is written three times on
  the same disk and cores in the cluster case;
- produce latency at half of the cluster's measured throughput (`weir perf e2e
  --throughput`), p50 and p99;
- failover: the partition leader's process killed with SIGKILL while nothing else happens,
  then the time until a confluent-kafka producer (acks=all, idempotent, librdkafka's default
  retries) gets its next record acknowledged; the killed node is restarted and all three
  replicas back in sync between runs.

Beside them, this machine's own figure from the same run: a 4 KiB write + fdatasync median.

Usage: bench/replication.py [--runs 3] [--records 100000] [--failovers 20]
Needs target/release/weir-broker, target/release/weir and confluent-kafka (the compat .venv).
"""

import argparse
import json
import shutil
import statistics
import subprocess
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from broker import BROKER, ROOT, free_port, wait_listening
from cluster import fsync_latency_ms, three_nodes, wait_formed

WEIR = ROOT / "target" / "release" / "weir"


def perf(bootstrap, *args):
    out = subprocess.run([str(WEIR), "-b", bootstrap, "perf", *args, "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def single_broker(root):
    port = free_port()
    proc = subprocess.Popen([str(BROKER), "--listen", f"127.0.0.1:{port}",
                             "--data-dir", str(root / "single"), "--http-listen", "off"],
                            env={"WEIR_LOG": "warn", "PATH": "/usr/bin:/bin"})
    wait_listening(port, proc, timeout=60.0)
    return proc, f"127.0.0.1:{port}"


def create(node, topic):
    client = AdminClient({"bootstrap.servers": node.bootstrap})  # alive until the answer
    client.create_topics([NewTopic(topic, 1, 3)])[topic].result(30)


def leader_of(admin, topic):
    md = admin.list_topics(topic=topic, timeout=5)
    part = md.topics[topic].partitions[0]
    return part.leader, len(part.isrs)


def wait_leader(nodes, topic, isr=3, avoid=None, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for n in nodes:
            if n.proc.poll() is not None:
                continue
            try:
                leader, in_sync = leader_of(AdminClient({"bootstrap.servers": n.bootstrap}), topic)
            except Exception:  # noqa: BLE001 - a node starting
                continue
            if leader > 0 and leader != avoid and in_sync >= isr:
                return leader
        time.sleep(0.05)
    raise SystemExit(f"no leader for {topic}")


def agreed_leader(nodes, topic):
    """The leader every running node names with all replicas in sync, or None."""
    seen = set()
    for n in nodes:
        if n.proc.poll() is not None:
            continue
        try:
            leader, in_sync = leader_of(AdminClient({"bootstrap.servers": n.bootstrap}), topic)
        except Exception:  # noqa: BLE001 - a node starting
            return None
        if leader <= 0 or in_sync < 3:
            return None
        seen.add(leader)
    return seen.pop() if len(seen) == 1 else None


def wait_settled(nodes, topic, settle=3.0, timeout=120):
    """The partition's leader once every node has named the same one, all replicas in sync,
    for `settle` seconds: a failover measured against a leader that was already changing
    (a node that just restarted, an election under way) would time nothing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        first = agreed_leader(nodes, topic)
        if first is not None:
            time.sleep(settle)
            if agreed_leader(nodes, topic) == first:
                return first
        time.sleep(0.1)
    raise SystemExit(f"{topic} did not settle on a leader")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--failovers", type=int, default=20)
    parser.add_argument("--election-ms", type=int, default=500)
    parser.add_argument("--failover-only", action="store_true",
                        help="measure only the failovers (no throughput or latency runs)")
    args = parser.parse_args()
    if args.failover_only:
        args.runs = 0
    root, nodes = three_nodes("replication", args.election_ms)
    single_mbs, cluster_mbs = [], []
    try:
        fsync_ms = fsync_latency_ms(root)
        for run in range(args.runs):
            proc, bootstrap = single_broker(root)
            r = perf(bootstrap, "produce", "-t", f"single-{run}", "-n", str(args.records),
                     "-s", "1024", "--acks", "all", "--partitions", "1")
            single_mbs.append(r["mb_per_s"])
            proc.terminate()
            proc.wait(60)
            shutil.rmtree(root / "single", ignore_errors=True)
            for n in nodes:
                n.start()
            wait_formed(nodes)
            topic = f"rf3-{run}"
            create(nodes[0], topic)
            wait_leader(nodes, topic)
            r = perf(nodes[0].bootstrap, "produce", "-t", topic, "-n", str(args.records),
                     "-s", "1024", "--acks", "all", "--partitions", "1")
            cluster_mbs.append(r["mb_per_s"])
            print(f"run {run}: single {single_mbs[-1]:.1f} MB/s, RF=3 {cluster_mbs[-1]:.1f} MB/s", flush=True)
            if run < args.runs - 1:
                for n in nodes:
                    n.stop()
                for i in (1, 2, 3):
                    shutil.rmtree(root / f"node-{i}", ignore_errors=True)
        if args.failover_only:
            for n in nodes:
                n.start()
            wait_formed(nodes)
        else:
            half = int(statistics.median(cluster_mbs) * 1e6 / 1024 / 2)
            create(nodes[0], "half")
            wait_leader(nodes, "half")
            e2e = perf(nodes[0].bootstrap, "e2e", "-t", "half", "-n", str(max(half * 10, 1000)),
                       "-s", "1024", "--acks", "all", "--throughput", str(half))
        create(nodes[0], "failover")
        failovers = []
        bootstrap = ",".join(n.bootstrap for n in nodes)
        for run in range(args.failovers):
            leader = wait_settled(nodes, "failover")
            producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                                 "enable.idempotence": True, "linger.ms": 0})
            producer.produce("failover", value=b"warm", partition=0)
            assert producer.flush(30) == 0
            victim = next(n for n in nodes if n.id == leader)
            t0 = time.perf_counter()
            victim.kill9()
            done = []
            producer.produce("failover", value=b"after", partition=0,
                             on_delivery=lambda err, msg: done.append(err))
            while not done:
                producer.poll(0.005)
            assert done[0] is None, done[0]
            failovers.append((time.perf_counter() - t0) * 1000)
            print(f"failover {run}: {failovers[-1]:.0f} ms", flush=True)
            victim.start()
        print(f"machine: 4 KiB write + fdatasync median {fsync_ms:.2f} ms")
        if not args.failover_only:
            print(f"produce acks=all 1 KiB, 1 partition: single broker median {statistics.median(single_mbs):.1f} MB/s {sorted(single_mbs)}, "
                  f"RF=3 median {statistics.median(cluster_mbs):.1f} MB/s {sorted(cluster_mbs)}, "
                  f"ratio {statistics.median(cluster_mbs) / statistics.median(single_mbs):.2f}")
            lat = e2e.get("latency_ms", {})
            print(f"RF=3 acks=all at {half} records/s (half load): {json.dumps(lat)}")
        print(f"leader kill -9 -> next acknowledged produce: median {statistics.median(failovers):.0f} ms, "
              f"worst {max(failovers):.0f} ms (n={len(failovers)}, election timeout {args.election_ms} ms)")
    finally:
        for n in nodes:
            n.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
