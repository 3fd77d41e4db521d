"""Kafka's own `kafka-leader-election.sh` (kafka-tools 4.4.0's LeaderElectionCommand) against
3 real weir-broker processes (issue 17): a partition whose preferred replica (the first of
its replicas) lost the leadership to a restart gets it back with `--election-type
preferred`, asked of a broker that does not lead it; asking again, or an UNCLEAN election
where a leader exists, says no election was needed, as Kafka's tool prints it."""

from __future__ import annotations

import time

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from cluster_fixture import Cluster
from java import TOOLS_VERSION, ToolShell
from kafka_peer import kafka_mode, weir_only


@pytest.fixture
def cluster(broker_factory):
    if kafka_mode():
        weir_only("a Weir cluster (--node-id, --peers)")
    # Leadership moves only when the tool asks.
    c = Cluster(broker_factory, extra=("--auto-leader-rebalance-enable", "false"))
    c.wait_formed()
    return c


@pytest.fixture
def tools(java_builds):
    shell = ToolShell(java_builds.classpath(TOOLS_VERSION, tools=True))
    yield shell
    shell.close()


def partitions(cluster: Cluster, node: int, topic: str) -> dict:
    return cluster.metadata(node, topic).topics[topic].partitions


def wait_for(what: str, check, timeout: float = 40.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            found = check()
            if found:
                return found
        except Exception as err:  # noqa: BLE001 - a node restarting
            last = err
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting until {what} ({last})")


def test_kafka_leader_election_moves_leadership_back_to_the_preferred_replica(cluster, tools):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap(1)})
    admin.create_topics([NewTopic("elected", 3, 3)], operation_timeout=10)["elected"].result(15)
    in_sync = lambda node: all(  # noqa: E731
        p.leader > 0 and len(p.isrs) == 3 for p in partitions(cluster, node, "elected").values()
    ) and len(partitions(cluster, node, "elected")) == 3
    wait_for("every partition has 3 in sync", lambda: in_sync(1))
    preferred = partitions(cluster, 1, "elected")[0].replicas[0]
    other = next(n for n in (1, 2, 3) if n != preferred)
    if partitions(cluster, other, "elected")[0].leader == preferred:
        cluster.brokers[preferred].kill9()
        wait_for("another replica leads partition 0",
                 lambda: partitions(cluster, other, "elected")[0].leader not in (-1, preferred))
        cluster.brokers[preferred].restart()
    wait_for("partition 0 has 3 in sync again", lambda: in_sync(other))
    led = partitions(cluster, other, "elected")[0].leader
    assert led != preferred
    asked = next(n for n in (1, 2, 3) if n not in (preferred, led))

    def elect(*args: str):
        return tools.run("kafka-leader-election", "--bootstrap-server", cluster.bootstrap(asked), *args)

    r = elect("--election-type", "preferred", "--topic", "elected", "--partition", "0").ok()
    assert "Successfully completed leader election (PREFERRED) for partitions elected-0" in r.stdout, r
    wait_for("every broker names the preferred replica",
             lambda: all(partitions(cluster, n, "elected")[0].leader == preferred for n in (1, 2, 3)),
             timeout=5)

    again = elect("--election-type", "preferred", "--topic", "elected", "--partition", "0").ok()
    assert "Valid replica already elected for partitions elected-0" in again.stdout, again
    unclean = elect("--election-type", "unclean", "--topic", "elected", "--partition", "0").ok()
    assert "Valid replica already elected for partitions elected-0" in unclean.stdout, unclean
    # Every partition: only those not led by their preferred replica are moved.
    elect("--election-type", "preferred", "--all-topic-partitions").ok()
    wait_for("every partition is led by its preferred replica",
             lambda: all(p.leader == p.replicas[0] for p in partitions(cluster, 1, "elected").values()),
             timeout=10)
