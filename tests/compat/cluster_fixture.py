"""A Weir cluster of real `weir-broker` processes on loopback for the compatibility tests:
each node with its own data directory, Kafka port, cluster port and HTTP port, all started
through `broker_factory` (so teardown stops them and checks their exit)."""

from __future__ import annotations

import json
import time
import urllib.request

from confluent_kafka.admin import AdminClient

from conftest import free_port

# Short timeouts so failover tests finish quickly on a loaded 2-core machine.
FAST = [
    "--broker-session-timeout-ms", "3000",
    "--broker-heartbeat-interval-ms", "300",
    "--election-timeout-ms", "500",
]


class Cluster:
    def __init__(self, broker_factory, nodes: int = 3, extra: tuple[str, ...] = ()):
        self.cluster_ports = {i: free_port() for i in range(1, nodes + 1)}
        self.http_ports = {i: free_port() for i in range(1, nodes + 1)}
        peers = ",".join(f"{i}@127.0.0.1:{p}" for i, p in self.cluster_ports.items())
        self.brokers = {}
        for i in range(1, nodes + 1):
            self.brokers[i] = broker_factory(
                "--node-id", str(i),
                "--cluster-listen", f"127.0.0.1:{self.cluster_ports[i]}",
                "--peers", peers,
                "--http-listen", f"127.0.0.1:{self.http_ports[i]}",
                *FAST,
                *extra,
            )

    def bootstrap(self, node: int) -> str:
        return self.brokers[node].bootstrap

    def raft(self, node: int) -> dict:
        url = f"http://127.0.0.1:{self.http_ports[node]}/v1/cluster/raft"
        with urllib.request.urlopen(url, timeout=5) as answer:
            return json.load(answer)

    def running(self) -> list[int]:
        return [i for i, b in self.brokers.items() if b.is_running()]

    def metadata(self, node: int, topic: str | None = None):
        admin = AdminClient({"bootstrap.servers": self.bootstrap(node)})
        return admin.list_topics(topic=topic, timeout=10)

    def wait_formed(self, timeout: float = 30.0) -> int:
        """Waits until every running node agrees on the metadata leader (its /v1/cluster/raft)
        and lists every running broker as live; returns the leader's id."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                leaders = {self.raft(i)["leader"] for i in self.running()}
                brokers = [sorted(self.metadata(i).brokers) for i in self.running()]
                last = (leaders, brokers)
                if len(leaders) == 1 and None not in leaders and all(
                    b == self.running() for b in brokers
                ):
                    leader = leaders.pop()
                    if leader in self.running():
                        return leader
            except Exception as err:  # noqa: BLE001 - a node still starting
                last = err
            time.sleep(0.1)
        raise AssertionError(f"cluster did not form: {last}")

    def assert_no_divergence(self) -> None:
        """Every running node's applied metadata history is a prefix of the others': the
        digests of any index two nodes both report are equal."""
        seen: dict[int, tuple[int, str]] = {}
        for node in self.running():
            for index, digest in self.raft(node)["digests"]:
                if index in seen:
                    other, theirs = seen[index]
                    assert theirs == digest, (
                        f"metadata log diverged at index {index}: node {other} {theirs}, "
                        f"node {node} {digest}"
                    )
                else:
                    seen[index] = (node, digest)
