"""Kafka's own command-line tools (kafka-tools 4.4.0, the classes behind bin/kafka-*.sh) against
weir-broker.

The tools run in one JVM for the whole module (tests/java's ToolShell; see java.py), against one
broker: each test uses its own topic and group names. Each command's exit status, stdout and
stderr are checked as an operator would read them, and what the tools wrote is read back with
confluent-kafka where it matters.

Commands that need an API the broker does not advertise (IncrementalAlterConfigs for
kafka-configs --alter, DeleteRecords for kafka-delete-records, OffsetDelete for
kafka-consumer-groups --delete-offsets) are expected failures, decided from the broker's own
ApiVersions answer: once the API is served, the command must work.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from confluent_kafka import Consumer

from conftest import start_module_broker
from helpers import api_versions, read_partitions
from java import TOOLS_VERSION, ToolShell


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("java-tools")
    b = start_module_broker(tmp, ["--group-initial-rebalance-delay-ms", "0"])
    yield b
    rc = b.stop()
    assert rc == 0, f"weir-broker exited with status {rc} after SIGTERM\n{b.log_text()[-5000:]}"


@pytest.fixture(scope="module")
def tools(java_builds, broker):
    shell = ToolShell(java_builds.classpath(TOOLS_VERSION, tools=True))
    yield shell
    shell.close()


@pytest.fixture
def kafka(tools, broker):
    """`kafka("topics", "--create", ...)`: runs bin/kafka-<name>.sh's class with
    --bootstrap-server pointing at the broker."""

    def run(name: str, *args: str, stdin: str = "", timeout: float = 60, own_jvm: bool = False):
        return tools.run(
            f"kafka-{name}", "--bootstrap-server", broker.bootstrap, *args, stdin=stdin, timeout=timeout, own_jvm=own_jvm
        )

    return run




def table(stdout: str) -> list[dict[str, str]]:
    """The rows of a kafka-consumer-groups table (header line, then rows split on spaces)."""
    lines = [l for l in stdout.splitlines() if l.strip()]
    header = lines[0].split()
    return [dict(zip(header, l.split())) for l in lines[1:]]


def test_kafka_topics(kafka):
    r = kafka("topics", "--create", "--topic", "tools-topics", "--partitions", "3").ok()
    assert "Created topic tools-topics." in r.stdout, r
    again = kafka("topics", "--create", "--topic", "tools-topics", "--partitions", "3")
    assert again.exit == 1 and "already exists" in again.stdout, again
    kafka("topics", "--create", "--if-not-exists", "--topic", "tools-topics", "--partitions", "3").ok()

    assert "tools-topics" in kafka("topics", "--list").ok().stdout.split()

    d = kafka("topics", "--describe", "--topic", "tools-topics").ok().stdout
    # No TopicId column on Weir: topic ids come with Metadata v10, above the served range
    # (Kafka prints one).
    assert re.search(r"^Topic: tools-topics\t(TopicId: \S+\t)?PartitionCount: 3\tReplicationFactor: 1\tConfigs: ", d, re.M), d
    for p in range(3):
        assert re.search(rf"Partition: {p}\tLeader: 0\tReplicas: 0\tIsr: 0", d), d

    kafka("topics", "--alter", "--topic", "tools-topics", "--partitions", "5").ok()
    d = kafka("topics", "--describe", "--topic", "tools-topics").ok().stdout
    assert "PartitionCount: 5" in d and "Partition: 4\tLeader: 0" in d, d
    shrink = kafka("topics", "--alter", "--topic", "tools-topics", "--partitions", "2")
    # Weir says "has 5 partitions", Kafka "currently has 5 partition(s)".
    assert shrink.exit == 1 and re.search(r"has 5 partition(s|\(s\))", shrink.stdout), shrink

    kafka("topics", "--delete", "--topic", "tools-topics").ok()
    deadline = time.monotonic() + 10
    while "tools-topics" in kafka("topics", "--list").ok().stdout.split():
        assert time.monotonic() < deadline, "tools-topics still listed after --delete"
        time.sleep(0.1)
    gone = kafka("topics", "--delete", "--topic", "tools-topics")
    assert gone.exit == 1 and "does not exist" in gone.stdout, gone


FORMAT = [
    "--formatter-property", "print.key=true",
    "--formatter-property", "print.headers=true",
    "--formatter-property", "print.partition=true",
    "--formatter-property", "print.offset=true",
]


def test_console_producer_and_consumer(kafka, broker):
    """Keys and headers in, read back from the beginning with and without a group; the group's
    commits make a second run read only what came after."""
    topic = "tools-console"
    kafka("topics", "--create", "--topic", topic, "--partitions", "2").ok()
    lines = "".join(f"source:console,n:{i}\tkey-{i % 4}\tvalue number {i}\n" for i in range(40))
    kafka(
        "console-producer", "--topic", topic,
        "--reader-property", "parse.key=true", "--reader-property", "parse.headers=true",
        "--producer-property", "acks=all",
        stdin=lines,
    ).ok()

    # What the producer wrote, read with another client: keys, values and headers exact.
    stored = read_partitions(broker.bootstrap, topic, 2)
    records = [r for p in stored.values() for r in p]
    assert len(records) == 40, {p: len(v) for p, v in stored.items()}
    for _offset, key, value, headers, _ts in records:
        n = int(value.decode().rsplit(" ", 1)[1])
        assert key == f"key-{n % 4}".encode(), (key, value)
        assert headers == [("source", b"console"), ("n", str(n).encode())], (value, headers)
    # The default partitioner keeps each key on one partition.
    keys_by_partition = [{k for _, k, _, _, _ in recs} for recs in stored.values()]
    assert not keys_by_partition[0] & keys_by_partition[1], keys_by_partition

    def consume(*args: str) -> list[str]:
        r = kafka("console-consumer", "--topic", topic, *FORMAT, *args, timeout=60)
        assert r.exit == 0, r
        return [l for l in r.stdout.splitlines() if l]

    got = consume("--from-beginning", "--max-messages", "40")
    expected = set()
    for p, recs in stored.items():
        for offset, key, value, _h, _ts in recs:
            n = int(value.decode().rsplit(" ", 1)[1])
            expected.add(f"Partition:{p}\tOffset:{offset}\tsource:console,n:{n}\t{key.decode()}\t{value.decode()}")
    assert sorted(got) == sorted(expected)

    # With a group: all 40, committed; a second run of the group sees only the 3 new ones.
    got = consume("--group", "tools-console-group", "--from-beginning", "--max-messages", "40")
    assert sorted(got) == sorted(expected)
    kafka(
        "console-producer", "--topic", topic, "--reader-property", "parse.key=true",
        stdin="".join(f"late-{i}\tlate value {i}\n" for i in range(3)),
    ).ok()
    got = consume("--group", "tools-console-group", "--max-messages", "3")
    assert sorted(l.split("\t", 3)[3] for l in got) == [f"late-{i}\tlate value {i}" for i in range(3)], got
    # Nothing left for the group: the tool times out with nothing printed.
    r = kafka("console-consumer", "--topic", topic, "--group", "tools-console-group", "--timeout-ms", "1500")
    assert r.exit == 0 and r.stdout.strip() == "" and "Processed a total of 0 messages" in r.stderr, r


def test_kafka_consumer_groups(kafka, broker):
    topic, group = "tools-groups", "tools-groups-g"
    kafka("topics", "--create", "--topic", topic, "--partitions", "2").ok()
    kafka("console-producer", "--topic", topic, "--reader-property", "parse.key=true",
          stdin="".join(f"k{i}\tv{i}\n" for i in range(20))).ok()
    ends = {int(l.split(":")[1]): int(l.split(":")[2]) for l in kafka("get-offsets", "--topic", topic).ok().stdout.split()}
    assert sum(ends.values()) == 20, ends

    # Offsets set for a group that does not exist yet (simple commits), then described with lag.
    r = kafka("consumer-groups", "--reset-offsets", "--group", group, "--topic", f"{topic}:0", "--to-offset", "1", "--execute").ok()
    assert table(r.stdout) == [{"GROUP": group, "TOPIC": topic, "PARTITION": "0", "NEW-OFFSET": "1"}], r
    r = kafka("consumer-groups", "--reset-offsets", "--group", group, "--topic", f"{topic}:1", "--to-latest", "--execute").ok()
    assert table(r.stdout)[0]["NEW-OFFSET"] == str(ends[1]), r
    rows = {row["PARTITION"]: row for row in table(kafka("consumer-groups", "--describe", "--group", group).ok().stdout)}
    assert rows["0"]["CURRENT-OFFSET"] == "1" and rows["0"]["LOG-END-OFFSET"] == str(ends[0]), rows
    assert rows["0"]["LAG"] == str(ends[0] - 1) and rows["1"]["LAG"] == "0", rows
    assert group in kafka("consumer-groups", "--list").ok().stdout.split()

    # Dry run changes nothing; execute does.
    r = kafka("consumer-groups", "--reset-offsets", "--group", group, "--all-topics", "--to-earliest", "--dry-run").ok()
    assert {row["PARTITION"]: row["NEW-OFFSET"] for row in table(r.stdout)} == {"0": "0", "1": "0"}, r
    rows = {row["PARTITION"]: row for row in table(kafka("consumer-groups", "--describe", "--group", group).ok().stdout)}
    assert rows["0"]["CURRENT-OFFSET"] == "1", ("--dry-run changed the offsets", rows)
    kafka("consumer-groups", "--reset-offsets", "--group", group, "--all-topics", "--to-datetime", "2000-01-01T00:00:00.000", "--execute").ok()
    rows = {row["PARTITION"]: row for row in table(kafka("consumer-groups", "--describe", "--group", group).ok().stdout)}
    assert (rows["0"]["CURRENT-OFFSET"], rows["1"]["CURRENT-OFFSET"]) == ("0", "0"), rows
    assert (rows["0"]["LAG"], rows["1"]["LAG"]) == (str(ends[0]), str(ends[1])), rows

    # With a live member: described as Stable with its partitions; reset refused while active.
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        while len(consumer.assignment()) != 2:
            assert time.monotonic() < deadline, "the confluent-kafka member never got its partitions"
            consumer.poll(0.2)
        state = table(kafka("consumer-groups", "--describe", "--group", group, "--state").ok().stdout)
        assert state[0]["STATE"] == "Stable" and state[0]["#MEMBERS"] == "1", state
        # Listing filtered by state (ListGroups v4) and type (v5), on the broker.
        r = kafka("consumer-groups", "--list", "--state", "Stable").ok()
        assert {"GROUP": group, "STATE": "Stable"} in table(r.stdout), r
        r = kafka("consumer-groups", "--list", "--state", "Empty").ok()
        assert group not in r.stdout.split(), r
        r = kafka("consumer-groups", "--list", "--type", "classic").ok()
        assert {"GROUP": group, "TYPE": "Classic"} in table(r.stdout), r
        r = kafka("consumer-groups", "--list", "--type", "consumer").ok()
        assert group not in r.stdout.split(), r
        members = table(kafka("consumer-groups", "--describe", "--group", group, "--members").ok().stdout)
        assert len(members) == 1 and members[0]["#PARTITIONS"] == "2", members
        busy = kafka("consumer-groups", "--reset-offsets", "--group", group, "--all-topics", "--to-earliest", "--execute")
        assert "can only be reset if the group" in busy.stdout + busy.stderr and "Stable" in busy.stdout + busy.stderr, busy
        refused = kafka("consumer-groups", "--delete", "--group", group)
        assert "NON_EMPTY_GROUP" in refused.stdout + refused.stderr or "not empty" in refused.stdout + refused.stderr, refused
    finally:
        consumer.close()

    r = kafka("consumer-groups", "--delete", "--group", group).ok()
    assert f"Deletion of requested consumer groups ('{group}') was successful." in r.stdout, r
    assert group not in kafka("consumer-groups", "--list").ok().stdout.split()


def test_kafka_consumer_groups_delete_offsets(kafka, broker):
    topic, group = "tools-delete-offsets", "tools-delete-offsets-g"
    kafka("topics", "--create", "--topic", topic, "--partitions", "1").ok()
    kafka("consumer-groups", "--reset-offsets", "--group", group, "--topic", topic, "--to-offset", "0", "--execute").ok()
    r = kafka("consumer-groups", "--delete-offsets", "--group", group, "--topic", topic)
    r.ok()
    assert re.search(rf"{topic}\s+0\s+Successful", r.stdout), r
    described = kafka("consumer-groups", "--describe", "--group", group, "--offsets")
    # Either the group is gone with its last offsets, or it is listed without this topic.
    assert not re.search(rf"\s{re.escape(topic)}\s+0\s", described.stdout), described


def test_kafka_get_offsets(kafka, broker):
    topic = "tools-offsets"
    kafka("topics", "--create", "--topic", topic, "--partitions", "2").ok()
    kafka("console-producer", "--topic", topic, "--reader-property", "parse.key=true",
          stdin="".join(f"k{i}\tv{i}\n" for i in range(30))).ok()
    latest = kafka("get-offsets", "--topic", topic, "--time", "-1").ok().stdout.split()
    earliest = kafka("get-offsets", "--topic", topic, "--time", "-2").ok().stdout.split()
    assert earliest == [f"{topic}:0:0", f"{topic}:1:0"], earliest
    ends = [int(l.rsplit(":", 1)[1]) for l in latest]
    assert [l.rsplit(":", 1)[0] for l in latest] == [f"{topic}:0", f"{topic}:1"] and sum(ends) == 30, latest
    one = kafka("get-offsets", "--topic-partitions", f"{topic}:1", "--time", "-1").ok().stdout.split()
    assert one == [f"{topic}:1:{ends[1]}"], one
    # A timestamp before everything: the first offset of each partition.
    assert kafka("get-offsets", "--topic", topic, "--time", "1000").ok().stdout.split() == earliest
    # -3 (max timestamp) needs ListOffsets v7: without it the tool skips the partitions and
    # says why; with it, each partition's record with the greatest timestamp (decided from the
    # broker's own ApiVersions answer).
    r = kafka("get-offsets", "--topic", topic, "--time", "-3")
    if api_versions(broker.bootstrap)[2][1] >= 7:
        got = [l.rsplit(":", 1) for l in r.ok().stdout.split()]
        assert [t for t, _o in got] == [f"{topic}:0", f"{topic}:1"], r
        assert all(0 <= int(o) < end for (_t, o), end in zip(got, ends)), (r, ends)
    else:
        assert r.stdout.strip() == "" and "does not support LIST_OFFSETS with version in range [7" in r.stderr, r


def test_perf_tests(tools, kafka, broker):
    """kafka-producer-perf-test and kafka-consumer-perf-test, small counts: every record sent is
    acknowledged and consumed (their figures are in the output, for the record)."""
    topic = "tools-perf"
    kafka("topics", "--create", "--topic", topic, "--partitions", "2").ok()
    p = tools.run(
        "kafka-producer-perf-test", "--topic", topic, "--num-records", "5000", "--record-size", "100",
        "--throughput", "-1", "--command-property", f"bootstrap.servers={broker.bootstrap}",
        "acks=all", "enable.idempotence=true",
        timeout=120,
    ).ok()
    m = re.search(r"^5000 records sent, ([\d.]+) records/sec", p.stdout, re.M)
    assert m, p
    c = kafka("consumer-perf-test", "--topic", topic, "--num-records", "5000", "--timeout", "30000", timeout=120).ok()
    row = c.stdout.strip().splitlines()[-1].split(", ")
    header = c.stdout.strip().splitlines()[-2].split(", ")
    fields = dict(zip(header, row))
    assert fields["data.consumed.in.nMsg"] == "5000", c
    print(f"kafka-producer-perf-test: {p.stdout.strip().splitlines()[-1]}")
    print(f"kafka-consumer-perf-test: {fields}")


def test_kafka_configs(kafka, broker):
    topic = "tools-configs"
    kafka("topics", "--create", "--topic", topic, "--partitions", "1").ok()
    d = kafka("configs", "--describe", "--all", "--entity-type", "topics", "--entity-name", topic).ok().stdout
    assert d.startswith(f"All configs for topic {topic} are:"), d
    for name in ("cleanup.policy=delete", "retention.ms=", "segment.bytes="):
        assert f"\n  {name}" in d, (name, d)
    b = kafka("configs", "--describe", "--all", "--entity-type", "brokers", "--entity-name", "0").ok().stdout
    assert b.startswith("All configs for broker 0 are:") and "log.retention.ms=" in b, b

    alter = kafka("configs", "--alter", "--entity-type", "topics", "--entity-name", topic, "--add-config", "retention.ms=1234567")
    alter.ok()
    d = kafka("configs", "--describe", "--entity-type", "topics", "--entity-name", topic).ok().stdout
    assert "retention.ms=1234567" in d, d
    kafka("configs", "--alter", "--entity-type", "topics", "--entity-name", topic, "--delete-config", "retention.ms").ok()
    d = kafka("configs", "--describe", "--entity-type", "topics", "--entity-name", topic).ok().stdout
    assert "retention.ms" not in d, d


def test_kafka_delete_records(kafka, broker, tmp_path):
    topic = "tools-delete-records"
    kafka("topics", "--create", "--topic", topic, "--partitions", "1").ok()
    kafka("console-producer", "--topic", topic, stdin="".join(f"v{i}\n" for i in range(10))).ok()
    spec = tmp_path / "offsets.json"
    spec.write_text(f'{{"partitions":[{{"topic":"{topic}","partition":0,"offset":4}}],"version":1}}')
    r = kafka("delete-records", "--offset-json-file", str(spec)).ok()
    assert re.search(rf"partition: {topic}-0\tlow_watermark: 4", r.stdout), r
    assert kafka("get-offsets", "--topic", topic, "--time", "-2").ok().stdout.split() == [f"{topic}:0:4"]


def test_kafka_broker_api_versions(kafka, broker):
    """Every API the broker advertises, with its range, as the tool prints it."""
    r = kafka("broker-api-versions").ok()
    for key, (lo, hi) in api_versions(broker.bootstrap).items():
        # The tool prints a one-version range as that version alone.
        shown = f"{lo} to {hi}" if lo != hi else f"{lo}"
        assert re.search(rf"\w+\({key}\): {shown} \[usable: \d+\]", r.stdout), (key, lo, hi, r.stdout)


def test_verifiable_producer_and_consumer_and_e2e_latency(kafka):
    """Kafka's system-test clients: every value 0..N-1 acknowledged once by VerifiableProducer,
    consumed once and committed by VerifiableConsumer (in a group); EndToEndLatency completes."""
    topic, n = "tools-verifiable", 300
    kafka("topics", "--create", "--topic", topic, "--partitions", "3").ok()
    # VerifiableProducer flushes and reports in a JVM shutdown hook: it needs a JVM of its own.
    p = kafka("verifiable-producer", "--topic", topic, "--max-messages", str(n), "--acks", "-1", "--repeating-keys", "7",
              own_jvm=True).ok()
    events = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    acked = [e for e in events if e["name"] == "producer_send_success"]
    assert sorted(int(e["value"]) for e in acked) == list(range(n)), p
    assert {e["partition"] for e in acked} == {0, 1, 2}, "keyed records should reach every partition"
    per_partition = {}
    for e in acked:
        per_partition.setdefault(e["partition"], []).append(e["offset"])
    for part, offsets in per_partition.items():
        assert sorted(offsets) == list(range(len(offsets))), (part, offsets)

    c = kafka("verifiable-consumer", "--topic", topic, "--group-id", "tools-verifiable-g", "--max-messages", str(n),
              "--reset-policy", "earliest").ok()
    events = [json.loads(l) for l in c.stdout.splitlines() if l.startswith("{")]
    consumed = sum(part["count"] for e in events if e["name"] == "records_consumed" for part in e["partitions"])
    assert consumed == n, c
    commits = [e for e in events if e["name"] == "offsets_committed"]
    assert commits and all(e["success"] for e in commits), c
    final = {}
    for e in commits:
        for o in e["offsets"]:
            final[o["partition"]] = o["offset"]
    assert final == {part: len(offsets) for part, offsets in per_partition.items()}, (final, c)

    e2e = kafka("e2e-latency", "--topic", topic, "--num-records", "50", "--producer-acks", "all", "--record-size", "100").ok()
    assert "Avg latency:" in e2e.stdout, e2e


def test_kafka_log_dirs(kafka, broker):
    topic = "tools-log-dirs"
    kafka("topics", "--create", "--topic", topic, "--partitions", "2").ok()
    # Kafka's broker creates a new topic's partition directories a moment after CreateTopics
    # answers (when it applies the metadata record); Weir's are there before the answer.
    deadline = time.monotonic() + 10
    while True:
        r = kafka("log-dirs", "--describe", "--topic-list", topic)
        r.ok()
        report = json.loads(r.stdout.strip().splitlines()[-1])
        [b] = report["brokers"]
        assert b["broker"] == 0, report
        partitions = {p["partition"] for d in b["logDirs"] for p in d["partitions"]}
        if partitions == {f"{topic}-0", f"{topic}-1"} or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert partitions == {f"{topic}-0", f"{topic}-1"}, report
