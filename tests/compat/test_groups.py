"""Consumer groups through real clients: confluent-kafka members in their own processes (one is
SIGKILLed: no LeaveGroup), eager, cooperative-sticky and static membership; committed offsets
across a clean restart and a kill -9; kafka-python's range and round-robin assignors; kcat's
balanced consumer; the AdminClient's group APIs.

The confluent-kafka members run tests/compat/group_member.py and report every assignment,
revocation and record on stdout (see that file); `Member` below follows them.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, ConsumerGroupType
from confluent_kafka.admin import AdminClient

from helpers import create_topic

HERE = Path(__file__).resolve().parent
MEMBER_SCRIPT = HERE / "group_member.py"

SESSION_TIMEOUT_MS = 6000
HEARTBEAT_MS = 1000
# The first rebalance of an empty group waits this long for more members (Kafka: 3 s).
GROUP_FLAGS = ("--group-initial-rebalance-delay-ms", "500")
KEYS = 5000


# -- producing -----------------------------------------------------------------------------


def produce(bootstrap: str, topic: str, ids, partition_of=None) -> dict[tuple[int, int], int]:
    """Produces record `i` for each i in `ids` (key b"key-<i % KEYS>", value b"<i>") at
    acks=all, to partition_of(i) or by the default (key hash) partitioner. Returns
    {(partition, offset): i} from the delivery reports; fails on any delivery error."""
    producer = Producer({
        "bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 10,
        "enable.idempotence": False,
    })
    placed: dict[tuple[int, int], int] = {}
    errors = []

    def report(err, msg):
        i = int(msg.value())
        if err is not None:
            errors.append((i, err))
        else:
            placed[(msg.partition(), msg.offset())] = i

    for i in ids:
        kwargs = {} if partition_of is None else {"partition": partition_of(i)}
        while True:
            try:
                producer.produce(topic, key=b"key-%d" % (i % KEYS), value=b"%d" % i,
                                 on_delivery=report, **kwargs)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0, "records left unacknowledged"
    assert errors == [], f"{len(errors)} delivery failures, first: {errors[:3]}"
    assert len(placed) == len(ids), f"{len(ids)} records produced, {len(placed)} distinct offsets"
    return placed


def high_watermarks(placed: dict[tuple[int, int], int], partitions: int) -> dict[int, int]:
    """The log end offset of each partition after the records in `placed` (all from 0)."""
    ends = {p: 0 for p in range(partitions)}
    for p, o in placed:
        ends[p] = max(ends[p], o + 1)
    return ends


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offsets read back with Consumer.committed() (OffsetFetch) by a
    consumer that never joins the group. -1001 stands for "none committed"."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
    })
    try:
        tps = consumer.committed(
            [TopicPartition(topic, p) for p in range(partitions)], timeout=15
        )
    finally:
        consumer.close()
    errors = [(tp.partition, tp.error) for tp in tps if tp.error is not None]
    assert errors == [], f"committed() errors: {errors}"
    return {tp.partition: tp.offset for tp in tps}


# -- members in their own processes --------------------------------------------------------


class Member:
    """One group_member.py process and everything it reported so far."""

    def __init__(self, name: str, bootstrap: str, group: str, topic: str, log_dir: Path,
                 extra: dict | None = None, wait_for_go: bool = False):
        self.name = name
        config = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": name,
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": HEARTBEAT_MS,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 1000,
        }
        config.update(extra or {})
        spec = {"config": config, "topics": [topic], "wait_for_go": wait_for_go, "keys": KEYS}
        self.stderr_path = log_dir / f"member-{name}.stderr"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(MEMBER_SCRIPT), json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
        )
        self.cond = threading.Condition()
        self.ready = False
        self.closed = False
        self.eof = False
        self.member_id: str | None = None
        self.assignment: set[int] = set()
        # (monotonic time, "assign" | "revoke" | "lost", [partitions])
        self.changes: list[tuple[float, str, list[int]]] = []
        self.records: list[tuple[int, int, int]] = []
        # Assignment epochs: (time assigned, partition, first offset read or None).
        self.epochs: list[list] = []
        self._open_epoch: dict[int, list] = {}
        self._last: dict[int, int] = {}
        self.problems: list[str] = []  # errors, order violations, records from elsewhere
        self.client_errors: list[str] = []
        self.commits: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    # ---- stdout of the child

    def _read(self) -> None:
        for raw in self.proc.stdout:
            try:
                ev = json.loads(raw)
            except ValueError:
                with self.cond:
                    self.problems.append(f"unparsable output: {raw[:200]!r}")
                continue
            now = time.monotonic()
            with self.cond:
                self._handle(now, ev)
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def _handle(self, now: float, ev: dict) -> None:
        kind = ev["ev"]
        if kind == "ready":
            self.ready = True
        elif kind == "assign":
            self.member_id = ev.get("member") or self.member_id
            self.changes.append((now, "assign", ev["parts"]))
            for p in ev["parts"]:
                if p in self.assignment:
                    self.problems.append(f"partition {p} assigned twice without a revoke")
                self.assignment.add(p)
                epoch = [now, p, None]
                self.epochs.append(epoch)
                self._open_epoch[p] = epoch
                self._last.pop(p, None)
        elif kind in ("revoke", "lost"):
            self.changes.append((now, kind, ev["parts"]))
            for p in ev["parts"]:
                if p not in self.assignment:
                    self.problems.append(f"{kind} of partition {p} that was not assigned")
                self.assignment.discard(p)
                self._open_epoch.pop(p, None)
                self._last.pop(p, None)
        elif kind == "recs":
            for p, o, ident in ev["r"]:
                if p not in self.assignment:
                    self.problems.append(f"record {p}@{o} from a partition not assigned")
                last = self._last.get(p)
                if last is not None and o != last + 1:
                    self.problems.append(
                        f"partition {p}: offset {o} after {last} in one assignment"
                    )
                self._last[p] = o
                epoch = self._open_epoch.get(p)
                if epoch is not None and epoch[2] is None:
                    epoch[2] = o
                self.records.append((p, o, ident))
        elif kind == "committed":
            self.commits.append(ev)
        elif kind == "closed":
            self.closed = True
        elif kind == "client_error":
            self.client_errors.append(ev["msg"])
        else:
            self.problems.append(f"{kind}: {ev.get('msg')}")

    # ---- control

    def _send(self, command: str) -> None:
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()

    def wait_ready(self, timeout: float = 30) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: self.ready or self.eof, timeout)
        assert ok and self.ready, f"member {self.name} did not start: {self.stderr_tail()}"

    def go(self) -> None:
        self._send("go")

    def commit(self, timeout: float = 20) -> dict[int, int]:
        """Synchronous commit in the child; returns the committed offsets of its assignment."""
        with self.cond:
            before = len(self.commits)
        self._send("commit")
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.commits) > before or self.eof, timeout)
            assert ok and len(self.commits) > before, f"member {self.name}: no commit answer"
            ev = self.commits[-1]
        assert ev["errors"] == [], f"member {self.name}: committed() errors {ev['errors']}"
        return {int(p): o for p, o in ev["offsets"].items()}

    def close(self, timeout: float = 30) -> None:
        self._send("close")
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"member {self.name} did not close within {timeout}s")
        self._reader.join(5)
        assert rc == 0 and self.closed, (
            f"member {self.name} exited with {rc} (closed={self.closed}): {self.stderr_tail()}"
        )

    def kill9(self) -> float:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        return time.monotonic()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._stderr.close()

    def stderr_tail(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return ""

    # ---- views (take the lock)

    def snapshot(self) -> dict:
        with self.cond:
            return {
                "assignment": sorted(self.assignment),
                "changes": len(self.changes),
                "records": len(self.records),
                "problems": list(self.problems[:5]),
            }

    def changes_since(self, t: float) -> list[tuple[str, list[int]]]:
        """Assignment changes from `t` on (callbacks with no partitions left out: librdkafka
        may call on_assign with an empty list in cooperative mode)."""
        with self.cond:
            return [(kind, parts) for when, kind, parts in self.changes if when >= t and parts]

    def first_offsets_since(self, t: float) -> dict[int, int | None]:
        """For each partition assigned at or after `t`: the first offset read in its first
        such assignment."""
        with self.cond:
            out: dict[int, int | None] = {}
            for when, p, first in self.epochs:
                if when >= t and p not in out:
                    out[p] = first
            return out


@pytest.fixture
def members(tmp_path):
    """Starts Member processes; every one still running at the end is SIGKILLed."""
    started: list[Member] = []

    def start(name, bootstrap, group, topic, **kwargs) -> Member:
        m = Member(name, bootstrap, group, topic, tmp_path, **kwargs)
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()


def wait_until(predicate, timeout: float, what) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what()}")
        time.sleep(0.05)


def wait_assignment(group: list[Member], partitions: int, timeout: float,
                    quiet: float = 1.5) -> dict[str, set[int]]:
    """Waits until the members' assignments are disjoint, non-empty, cover every partition,
    and have not changed for `quiet` seconds. Returns {member name: partitions}."""
    state = {"sig": None, "since": 0.0}

    def settled() -> bool:
        snaps = [m.snapshot() for m in group]
        sig = tuple((tuple(s["assignment"]), s["changes"]) for s in snaps)
        now = time.monotonic()
        if sig != state["sig"]:
            state["sig"], state["since"] = sig, now
        owned = [p for s in snaps for p in s["assignment"]]
        complete = (
            sorted(owned) == list(range(partitions))
            and all(s["assignment"] for s in snaps)
        )
        return complete and now - state["since"] >= quiet

    def describe() -> str:
        return "a settled assignment; now: " + "; ".join(
            f"{m.name}: {m.snapshot()}" for m in group
        )

    wait_until(settled, timeout, describe)
    return {m.name: set(m.snapshot()["assignment"]) for m in group}


def assert_exclusive(assignment: dict[str, set[int]], partitions: int) -> None:
    owners = {p: [name for name, parts in assignment.items() if p in parts]
              for p in range(partitions)}
    bad = {p: o for p, o in owners.items() if len(o) != 1}
    assert bad == {}, f"partitions not owned by exactly one member: {bad} ({assignment})"


def wait_consumed(group: list[Member], expected: dict[tuple[int, int], int],
                  timeout: float) -> None:
    """Waits until the members together consumed every record of `expected`."""
    def missing() -> int:
        seen = set()
        for m in group:
            with m.cond:
                seen.update((p, o) for p, o, _ in m.records)
        return sum(1 for k in expected if k not in seen)

    wait_until(lambda: missing() == 0, timeout,
               lambda: f"every record consumed: {missing()} of {len(expected)} missing; "
               + "; ".join(f"{m.name}: {m.snapshot()}" for m in group))


def check_records(group: list[Member], expected: dict[tuple[int, int], int]) -> int:
    """Every record consumed is one that was produced, at the offset it was acknowledged at;
    every member saw offsets in order within each assignment; no errors. Returns the number
    of records consumed more than once."""
    problems = {m.name: m.problems[:10] for m in group if m.problems}
    assert problems == {}, f"members reported problems: {problems}"
    client_errors = {m.name: m.client_errors[:5] for m in group if m.client_errors}
    assert client_errors == {}, f"client errors: {client_errors}"
    seen: dict[tuple[int, int], int] = {}
    duplicates = 0
    for m in group:
        for p, o, ident in m.records:
            want = expected.get((p, o))
            assert want == ident, f"{m.name} read record {ident} at {p}@{o}, produced: {want}"
            if (p, o) in seen:
                duplicates += 1
            seen[(p, o)] = ident
    lost = sorted(set(expected) - set(seen))
    assert lost == [], f"{len(lost)} records never consumed, first {lost[:10]}"
    return duplicates


def consume_as_new_member(bootstrap: str, group: str, topic: str, partitions: int,
                          want: int, timeout: float = 40) -> tuple[dict, list]:
    """A fresh in-process consumer joins `group` (subscribe), reports what committed() says
    once it has its assignment, reads `want` records (and waits a little for any extra),
    commits and leaves. auto.offset.reset=earliest: lost offsets would mean reading from 0.
    Returns ({partition: committed offset at assignment}, [(partition, offset, id)])."""
    assigned = []
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "client.id": "new-member",
        "session.timeout.ms": SESSION_TIMEOUT_MS, "heartbeat.interval.ms": HEARTBEAT_MS,
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
    })
    try:
        consumer.subscribe([topic], on_assign=lambda c, ps: assigned.extend(ps))
        got: list[tuple[int, int, int]] = []
        deadline = time.monotonic() + timeout
        extra_until = None
        while True:
            now = time.monotonic()
            if extra_until is None and len(got) >= want:
                extra_until = now + 1.0
            if extra_until is not None and now > extra_until:
                break
            assert now < deadline, f"read {len(got)} of {want} records in {timeout}s"
            for msg in consumer.consume(num_messages=1000, timeout=0.2):
                assert msg.error() is None, f"consumer error: {msg.error()}"
                got.append((msg.partition(), msg.offset(), int(msg.value())))
        assert sorted(tp.partition for tp in assigned) == list(range(partitions)), assigned
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)],
                                 timeout=15)
        committed_at_start = {tp.partition: tp.offset for tp in tps}
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return committed_at_start, got


def assert_reads_exactly(got: list, new: dict[tuple[int, int], int], partitions: int,
                         starts: dict[int, int]) -> None:
    """`got` is exactly the records in `new`, each partition read in order from `starts`."""
    per_partition: dict[int, list[int]] = {p: [] for p in range(partitions)}
    for p, o, ident in got:
        assert new.get((p, o)) == ident, (
            f"read record {ident} at {p}@{o}, which is not one of the new records "
            f"(re-read from before the committed offset {starts.get(p)}?)"
        )
        per_partition[p].append(o)
    ends = {p: starts[p] for p in range(partitions)}
    for p, o in new:
        ends[p] = max(ends[p], o + 1)
    for p in range(partitions):
        assert per_partition[p] == list(range(starts[p], ends[p])), (
            f"partition {p}: read offsets {per_partition[p][:5]}..{per_partition[p][-5:]} "
            f"({len(per_partition[p])}), expected {starts[p]}..{ends[p] - 1}"
        )


# -- 1. confluent-kafka, eager (range) ------------------------------------------------------


def test_confluent_group_kill_member_and_offsets_survive_restarts(broker_factory, members):
    broker = broker_factory(*GROUP_FLAGS)
    topic, group, partitions = "grp-eager", "grp-eager-g", 12
    create_topic(broker.bootstrap, topic, partitions)
    first = produce(broker.bootstrap, topic, range(50_000))
    first_ends = high_watermarks(first, partitions)
    assert all(first_ends[p] > 0 for p in range(partitions)), first_ends

    group_members = [members(f"m{i}", broker.bootstrap, group, topic) for i in range(3)]
    assignment = wait_assignment(group_members, partitions, timeout=30)
    assert_exclusive(assignment, partitions)
    # librdkafka's default strategy list is "range,roundrobin": the group must use range,
    # the first protocol every member supports (contiguous blocks of 4).
    assert sorted(sorted(a) for a in assignment.values()) == [
        list(range(0, 4)), list(range(4, 8)), list(range(8, 12))
    ], assignment

    wait_consumed(group_members, first, timeout=60)
    committed_before_kill = {}
    for m in group_members:
        offsets = m.commit()
        assert offsets == {p: first_ends[p] for p in assignment[m.name]}, (
            f"{m.name} committed {offsets}, consumed up to {first_ends}"
        )
        committed_before_kill.update(offsets)

    victim, survivors = group_members[2], group_members[:2]
    victim_parts = assignment[victim.name]
    killed_at = victim.kill9()
    second = produce(broker.bootstrap, topic, range(50_000, 100_000))
    after = wait_assignment(survivors, partitions, timeout=SESSION_TIMEOUT_MS / 1000 + 20)
    # When the last survivor got its new assignment (the group's takeover was complete).
    took_over_at = max(when for m in survivors for when, kind, _ in m.changes if kind == "assign")
    elapsed = took_over_at - killed_at
    print(f"takeover {elapsed:.2f}s after SIGKILL: {after}")
    # ... and not before the session timeout: the dead member's last heartbeat was at most one
    # heartbeat interval before the kill, so its session cannot expire much sooner than
    # session timeout - heartbeat interval after it.
    first_change = min(when for m in survivors for when, _, parts in m.changes
                       if when >= killed_at and parts)
    assert first_change - killed_at >= (SESSION_TIMEOUT_MS - HEARTBEAT_MS) / 1000 - 0.5, (
        f"the group rebalanced {first_change - killed_at:.1f}s after the member died, before "
        f"its {SESSION_TIMEOUT_MS} ms session could have expired"
    )
    assert elapsed <= SESSION_TIMEOUT_MS / 1000 + 2 * HEARTBEAT_MS / 1000 + 2, (
        f"the dead member's partitions moved {elapsed:.1f}s after SIGKILL "
        f"(session timeout {SESSION_TIMEOUT_MS} ms)"
    )
    assert_exclusive(after, partitions)
    assert sorted(sorted(a) for a in after.values()) == [
        list(range(0, 6)), list(range(6, 12))
    ], after
    # The dead member's partitions continue exactly where it had committed.
    for m in survivors:
        firsts = m.first_offsets_since(killed_at)
        for p in victim_parts & after[m.name]:
            assert firsts.get(p) == committed_before_kill[p], (
                f"{m.name} took over partition {p} at offset {firsts.get(p)}, "
                f"the dead member had committed {committed_before_kill[p]}"
            )

    everything = {**first, **second}
    wait_consumed(group_members, everything, timeout=90)
    check_records(group_members, everything)
    ends = high_watermarks(everything, partitions)
    assert sum(ends.values()) == 100_000
    # Commit everywhere first: once one member leaves, the other gets its partitions.
    for m in survivors:
        assert m.commit() == {p: ends[p] for p in after[m.name]}
    for m in survivors:
        m.close()
    assert committed_offsets(broker.bootstrap, group, topic, partitions) == ends

    # Clean restart: the offsets are still there, and a new member starts from them.
    broker.stop_clean()
    broker.restart()
    assert committed_offsets(broker.bootstrap, group, topic, partitions) == ends
    more = produce(broker.bootstrap, topic, range(100_000, 101_200),
                   partition_of=lambda i: i % partitions)
    at_start, got = consume_as_new_member(broker.bootstrap, group, topic, partitions, len(more))
    assert at_start == ends, f"committed() after a clean restart: {at_start}, expected {ends}"
    assert_reads_exactly(got, more, partitions, ends)
    ends = high_watermarks({**everything, **more}, partitions)
    assert committed_offsets(broker.bootstrap, group, topic, partitions) == ends

    # Crash: kill -9 right after the commits were acknowledged.
    broker.kill9()
    broker.restart()
    assert committed_offsets(broker.bootstrap, group, topic, partitions) == ends
    last = produce(broker.bootstrap, topic, range(101_200, 102_400),
                   partition_of=lambda i: (i * 7) % partitions)
    at_start, got = consume_as_new_member(broker.bootstrap, group, topic, partitions, len(last))
    assert at_start == ends, f"committed() after kill -9: {at_start}, expected {ends}"
    assert_reads_exactly(got, last, partitions, ends)


# -- 1b. cooperative-sticky ------------------------------------------------------------------


def test_confluent_cooperative_sticky(broker_factory, members):
    broker = broker_factory(*GROUP_FLAGS)
    topic, group, partitions = "grp-coop", "grp-coop-g", 12
    create_topic(broker.bootstrap, topic, partitions)
    first = produce(broker.bootstrap, topic, range(6000))
    extra = {"partition.assignment.strategy": "cooperative-sticky"}

    a = members("a", broker.bootstrap, group, topic, extra=extra)
    b = members("b", broker.bootstrap, group, topic, extra=extra)
    two = wait_assignment([a, b], partitions, timeout=30)
    assert_exclusive(two, partitions)
    assert sorted(len(p) for p in two.values()) == [6, 6], two

    c_started = time.monotonic()
    c = members("c", broker.bootstrap, group, topic, extra=extra)
    three = wait_assignment([a, b, c], partitions, timeout=30)
    assert_exclusive(three, partitions)
    assert sorted(len(p) for p in three.values()) == [4, 4, 4], three
    print(f"two members {two}, three {three}; a: {a.changes_since(c_started)}, "
          f"b: {b.changes_since(c_started)}, c: {c.changes_since(c_started)}")
    for m in (a, b):
        # Sticky: a and b keep 4 of their 6 partitions, and cooperative: they give up only
        # the ones that move to c, never all of them.
        assert three[m.name] <= two[m.name], (m.name, two, three)
        changes = m.changes_since(c_started)
        revoked = {p for kind, parts in changes if kind == "revoke" for p in parts}
        assert revoked == two[m.name] - three[m.name], (
            f"{m.name} revoked {sorted(revoked)} when c joined; it kept "
            f"{sorted(three[m.name])} and gave {sorted(two[m.name] - three[m.name])} to c; "
            f"its callbacks: {changes}"
        )
        assert all(kind != "lost" for kind, _ in changes), changes

    wait_consumed([a, b, c], first, timeout=60)
    committed = {}
    for m in (a, b, c):
        committed.update(m.commit())
    ends = high_watermarks(first, partitions)
    assert committed == ends, committed

    killed_at = c.kill9()
    second = produce(broker.bootstrap, topic, range(6000, 12_000))
    after = wait_assignment([a, b], partitions, timeout=SESSION_TIMEOUT_MS / 1000 + 20)
    assert_exclusive(after, partitions)
    for m in (a, b):
        # Survivors only gain partitions: nothing revoked, nothing lost.
        changes = m.changes_since(killed_at)
        assert [kind for kind, _ in changes] == ["assign"], (m.name, changes)
        assert after[m.name] >= three[m.name], (m.name, three, after)
        firsts = m.first_offsets_since(killed_at)
        for p in after[m.name] - three[m.name]:
            assert firsts.get(p) == committed[p], (
                f"{m.name} took over partition {p} at {firsts.get(p)}, committed {committed[p]}"
            )

    everything = {**first, **second}
    wait_consumed([a, b, c], everything, timeout=60)
    check_records([a, b, c], everything)
    ends = high_watermarks(everything, partitions)
    for m in (a, b):
        assert m.commit() == {p: ends[p] for p in after[m.name]}
    for m in (a, b):
        m.close()
    assert committed_offsets(broker.bootstrap, group, topic, partitions) == ends


# -- 1c. static membership -------------------------------------------------------------------


def test_confluent_static_member_restart_keeps_assignment(broker_factory, members):
    broker = broker_factory(*GROUP_FLAGS)
    topic, group, partitions = "grp-static", "grp-static-g", 12
    create_topic(broker.bootstrap, topic, partitions)
    first = produce(broker.bootstrap, topic, range(6000))

    def static(i, name=None, **kwargs):
        return members(name or f"s{i}", broker.bootstrap, group, topic,
                       extra={"group.instance.id": f"instance-{i}"}, **kwargs)

    originals = [static(i) for i in range(3)]
    before = wait_assignment(originals, partitions, timeout=30)
    assert_exclusive(before, partitions)
    wait_consumed(originals, first, timeout=60)
    committed = {}
    for m in originals:
        committed.update(m.commit())
    assert committed == high_watermarks(first, partitions)

    # Every member is restarted in turn (so the group's leader is too): SIGKILL, and the same
    # instance id is back at once. The replacement process is started (and has imported the
    # client) before the old one dies, so that it rejoins well within the session timeout.
    current = list(originals)
    replacements = []
    first_kill = None
    for i, old in enumerate(originals):
        replacement = static(i, name=f"s{i}-restarted", wait_for_go=True)
        replacement.wait_ready()
        killed_at = old.kill9()
        first_kill = first_kill or killed_at
        replacement.go()
        wait_until(lambda r=replacement: r.snapshot()["assignment"], SESSION_TIMEOUT_MS / 1000,
                   lambda r=replacement: f"restarted static member {i} to get partitions: "
                   f"{r.snapshot()}")
        with replacement.cond:
            rejoined_after = replacement.changes[0][0] - killed_at
        print(f"static member {i} back {rejoined_after:.2f}s after SIGKILL")
        assert rejoined_after < SESSION_TIMEOUT_MS / 1000, rejoined_after
        assert set(replacement.snapshot()["assignment"]) == before[old.name], (
            f"restarted static member {i} got {replacement.snapshot()['assignment']}, "
            f"had {sorted(before[old.name])}"
        )
        assert replacement.member_id and replacement.member_id != old.member_id
        time.sleep(0.5)  # a rebalance the restart started would reach the others by now
        for m in current:
            if m is not old:
                assert m.changes_since(killed_at) == [], (
                    f"{m.name} saw a rebalance when static member {i} restarted: "
                    f"{m.changes_since(killed_at)}"
                )
        current[i] = replacement
        replacements.append(replacement)

    second = produce(broker.bootstrap, topic, range(6000, 12_000))
    # Long enough for every killed member's session to have expired had it not been replaced.
    time.sleep(max(0.0, killed_at + SESSION_TIMEOUT_MS / 1000 + 2.5 - time.monotonic()))
    wait_consumed(replacements, second, timeout=60)
    for old, new in zip(originals, replacements):
        # One assignment each, never revoked, and the originals never saw a rebalance.
        assert new.changes_since(0) == [("assign", sorted(before[old.name]))], (
            f"{new.name}: {new.changes}"
        )
        assert old.changes_since(first_kill) == [], f"{old.name}: {old.changes}"
        # The restarted member continues from its committed offsets.
        firsts = new.first_offsets_since(0)
        assert firsts == {p: committed[p] for p in before[old.name]}, (new.name, firsts)
    check_records([*originals, *replacements], {**first, **second})

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    desc = admin.describe_consumer_groups([group])[group].result(timeout=15)
    assert desc.state == ConsumerGroupState.STABLE, desc.state
    described = sorted((m.group_instance_id, m.member_id) for m in desc.members)
    assert described == [(f"instance-{i}", r.member_id) for i, r in enumerate(replacements)], (
        described
    )

    ends = high_watermarks({**first, **second}, partitions)
    for old, new in zip(originals, replacements):
        assert new.commit() == {p: ends[p] for p in before[old.name]}
    for m in replacements:
        m.close()
    assert committed_offsets(broker.bootstrap, group, topic, partitions) == ends


# -- 2. kafka-python -------------------------------------------------------------------------


def _kp_member(bootstrap, topic, group, assignor, commit_now, stop, state, name, errors):
    from kafka import KafkaConsumer

    try:
        consumer = KafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=group, client_id=name,
            partition_assignment_strategy=[assignor], auto_offset_reset="earliest",
            enable_auto_commit=True, auto_commit_interval_ms=1000,
            session_timeout_ms=10000, heartbeat_interval_ms=1000,
        )
        try:
            while not stop.is_set():
                for _tp, msgs in consumer.poll(timeout_ms=200).items():
                    state[name]["records"].extend((m.partition, m.offset, m.value) for m in msgs)
                state[name]["assignment"] = {tp.partition for tp in consumer.assignment()}
                if commit_now.is_set() and state[name]["committed"] is None:
                    consumer.commit()
                    state[name]["committed"] = {
                        tp.partition: consumer.committed(tp) for tp in consumer.assignment()
                    }
        finally:
            consumer.close()
    except Exception as err:  # noqa: BLE001 - re-raised by the test
        errors.append((name, err))


def _kp_run(bootstrap, topic, group, assignor, partitions, produce_fn):
    """Two kafka-python consumers in threads: waits for their assignment, then produces with
    `produce_fn` and waits until they read that many records; commits and closes."""
    commit_now, stop = threading.Event(), threading.Event()
    state = {n: {"records": [], "assignment": set(), "committed": None} for n in ("k0", "k1")}
    errors: list = []
    threads = [
        threading.Thread(target=_kp_member, daemon=True,
                         args=(bootstrap, topic, group, assignor, commit_now, stop, state, n,
                               errors))
        for n in state
    ]
    for t in threads:
        t.start()
    try:
        def settled():
            a0, a1 = state["k0"]["assignment"], state["k1"]["assignment"]
            return a0 and a1 and sorted(a0 | a1) == list(range(partitions)) and not a0 & a1

        wait_until(lambda: settled() or errors, 40,
                   lambda: f"both consumers assigned: {[s['assignment'] for s in state.values()]}")
        assert errors == [], errors
        time.sleep(1.0)
        assert settled(), [s["assignment"] for s in state.values()]
        assignment = {n: set(s["assignment"]) for n, s in state.items()}
        expected = produce_fn()
        wait_until(lambda: sum(len(s["records"]) for s in state.values()) >= len(expected)
                   or errors, 40,
                   lambda: f"{len(expected)} records: {[len(s['records']) for s in state.values()]}")
        time.sleep(0.5)  # anything beyond the expected records would show up now
        # Nobody's assignment changed while reading.
        assert {n: set(s["assignment"]) for n, s in state.items()} == assignment
        commit_now.set()
        wait_until(lambda: all(s["committed"] is not None for s in state.values()) or errors,
                   30, lambda: f"both consumers to commit: {state}")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert errors == [], errors
    assert not any(t.is_alive() for t in threads), "a kafka-python consumer did not close"
    return assignment, state, expected


@pytest.mark.parametrize("assignor_name", ["range", "roundrobin"])
def test_kafka_python_group_assignors_and_resume(broker_factory, assignor_name):
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

    assignor = {"range": RangePartitionAssignor,
                "roundrobin": RoundRobinPartitionAssignor}[assignor_name]
    broker = broker_factory(*GROUP_FLAGS)
    topic, group, partitions = f"kp-grp-{assignor_name}", f"kp-grp-{assignor_name}-g", 6
    create_topic(broker.bootstrap, topic, partitions)
    # Range gives each member a contiguous block; round-robin deals partitions alternately.
    shapes = {
        "range": [[0, 1, 2], [3, 4, 5]],
        "roundrobin": [[0, 2, 4], [1, 3, 5]],
    }

    def produce_batch(start, n):
        return lambda: produce(broker.bootstrap, topic, range(start, start + n),
                               partition_of=lambda i: (i * 5) % partitions)

    assignment, state, first = _kp_run(broker.bootstrap, topic, group, assignor, partitions,
                                       produce_batch(0, 3000))
    assert sorted(sorted(a) for a in assignment.values()) == shapes[assignor_name], assignment
    got = [(p, o, int(v)) for s in state.values() for p, o, v in s["records"]]
    assert sorted(got) == sorted((p, o, i) for (p, o), i in first.items()), (
        f"first run read {len(got)} records, produced {len(first)}"
    )
    ends = high_watermarks(first, partitions)
    for name, s in state.items():
        assert s["committed"] == {p: ends[p] for p in assignment[name]}, (name, s["committed"])
    assert committed_offsets(broker.bootstrap, group, topic, partitions) == ends

    # Start again: both resume from the committed offsets (nothing re-read, nothing skipped).
    assignment2, state2, second = _kp_run(broker.bootstrap, topic, group, assignor, partitions,
                                          produce_batch(3000, 1800))
    assert sorted(sorted(a) for a in assignment2.values()) == shapes[assignor_name]
    got = [(p, o, int(v)) for s in state2.values() for p, o, v in s["records"]]
    assert_reads_exactly(got, second, partitions, ends)
    ends = high_watermarks({**first, **second}, partitions)
    assert committed_offsets(broker.bootstrap, group, topic, partitions) == ends


# -- 3. kcat balanced consumer ---------------------------------------------------------------


def test_kcat_group_mode_commits(broker_factory, kcat):
    broker = broker_factory(*GROUP_FLAGS)
    topic, group, partitions = "kcat-grp", "kcat-grp-g", 3
    create_topic(broker.bootstrap, topic, partitions)

    def run_group() -> list[tuple[int, int, int]]:
        proc = subprocess.run(
            [kcat, "-b", broker.bootstrap, "-G", group, "-X", "auto.offset.reset=earliest",
             "-X", "session.timeout.ms=6000", "-e", "-q", "-f", "%p %o %s\\n", topic],
            capture_output=True, timeout=60, check=False,
        )
        assert proc.returncode == 0, (
            f"kcat exited with {proc.returncode}: {proc.stderr.decode(errors='replace')[-3000:]}"
        )
        return [tuple(int(x) for x in line.split())
                for line in proc.stdout.decode().splitlines() if line]

    first = produce(broker.bootstrap, topic, range(900), partition_of=lambda i: i % partitions)
    got = run_group()
    assert sorted(got) == sorted((p, o, i) for (p, o), i in first.items()), (
        f"first run read {len(got)} records (distinct {len(set(got))}), produced {len(first)}"
    )
    ends = high_watermarks(first, partitions)
    assert committed_offsets(broker.bootstrap, group, topic, partitions) == ends

    got = run_group()
    assert got == [], f"second run of the same group read {len(got)} records: {got[:5]}"

    second = produce(broker.bootstrap, topic, range(900, 1350),
                     partition_of=lambda i: (i // 7) % partitions)
    got = run_group()
    assert_reads_exactly(got, second, partitions, ends)
    assert committed_offsets(broker.bootstrap, group, topic, partitions) == high_watermarks(
        {**first, **second}, partitions)


# -- 4. AdminClient ------------------------------------------------------------------------


def _listed(admin: AdminClient) -> dict:
    result = admin.list_consumer_groups(request_timeout=15).result(timeout=20)
    assert result.errors == [], result.errors
    return {g.group_id: g for g in result.valid}


def test_admin_consumer_group_apis(broker_factory, members):
    broker = broker_factory(*GROUP_FLAGS)
    topic, group, partitions = "adm-grp", "adm-grp-g", 4
    create_topic(broker.bootstrap, topic, partitions)
    produced = produce(broker.bootstrap, topic, range(400), partition_of=lambda i: i % partitions)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})

    running = [
        members(f"adm{i}", broker.bootstrap, group, topic, extra={"enable.auto.commit": False})
        for i in range(2)
    ]
    assignment = wait_assignment(running, partitions, timeout=30)
    wait_consumed(running, produced, timeout=30)

    # The states ListGroups reports are checked at the end, so that a wrong state does not
    # hide what the rest of this test finds.
    listed_states = {}
    listed = _listed(admin)
    assert group in listed, sorted(listed)
    listed_states["while members run"] = (listed[group].state, ConsumerGroupState.STABLE)
    assert listed[group].is_simple_consumer_group is False
    # Filtered on the broker: ListGroups v4's states and v5's types (every Weir group is a
    # classic group: no KIP-848 `consumer` groups).
    def listed_with(**filters) -> set:
        result = admin.list_consumer_groups(request_timeout=15, **filters).result(timeout=20)
        assert result.errors == [], result.errors
        return {g.group_id for g in result.valid}

    assert group in listed_with(states={ConsumerGroupState.STABLE})
    assert group not in listed_with(states={ConsumerGroupState.EMPTY})
    assert group in listed_with(types={ConsumerGroupType.CLASSIC})
    assert group not in listed_with(types={ConsumerGroupType.CONSUMER})

    desc = admin.describe_consumer_groups([group], request_timeout=15)[group].result(timeout=20)
    assert desc.group_id == group
    assert desc.state == ConsumerGroupState.STABLE, desc.state
    assert desc.is_simple_consumer_group is False
    assert desc.partition_assignor == "range", desc.partition_assignor
    assert desc.coordinator is not None and desc.coordinator.id == 0, desc.coordinator
    described = {m.client_id: m for m in desc.members}
    assert sorted(described) == ["adm0", "adm1"], described
    for m in running:
        d = described[m.name]
        assert d.member_id == m.member_id, (d.member_id, m.member_id)
        assert d.host, d
        tps = d.assignment.topic_partitions
        assert sorted((tp.topic, tp.partition) for tp in tps) == sorted(
            (topic, p) for p in assignment[m.name]
        ), (m.name, tps, assignment)

    # A group with members cannot be deleted.
    future = admin.delete_consumer_groups([group], request_timeout=15)[group]
    with pytest.raises(KafkaException) as failed:
        future.result(timeout=20)
    assert failed.value.args[0].code() == KafkaError.NON_EMPTY_GROUP, failed.value

    for m in running:
        m.commit()
    ends = high_watermarks(produced, partitions)
    offsets = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group)], request_timeout=15)[group].result(timeout=20)
    assert offsets.group_id == group
    assert sorted((tp.topic, tp.partition, tp.offset) for tp in offsets.topic_partitions) == [
        (topic, p, ends[p]) for p in range(partitions)
    ], offsets.topic_partitions
    assert all(tp.error is None for tp in offsets.topic_partitions), offsets.topic_partitions
    # Asking for named partitions, one of which never had a commit.
    create_topic(broker.bootstrap, "adm-other", 1)
    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, 2), TopicPartition("adm-other", 0)])],
        request_timeout=15)[group].result(timeout=20)
    assert sorted((tp.topic, tp.partition, tp.offset) for tp in offsets.topic_partitions) == sorted([
        ("adm-other", 0, -1001), (topic, 2, ends[2])
    ]), offsets.topic_partitions

    for m in running:
        m.close()
    listed = _listed(admin)
    assert group in listed, sorted(listed)
    listed_states["after the members left"] = (listed[group].state, ConsumerGroupState.EMPTY)
    desc = admin.describe_consumer_groups([group], request_timeout=15)[group].result(timeout=20)
    assert desc.state == ConsumerGroupState.EMPTY and desc.members == [], desc

    admin.delete_consumer_groups([group], request_timeout=15)[group].result(timeout=20)
    listed = _listed(admin)
    assert group not in listed, sorted(listed)
    offsets = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group)], request_timeout=15)[group].result(timeout=20)
    assert offsets.topic_partitions == [], offsets.topic_partitions
    assert committed_offsets(broker.bootstrap, group, topic, partitions) == {
        p: -1001 for p in range(partitions)
    }

    # Deleting it again: it no longer exists.
    future = admin.delete_consumer_groups([group], request_timeout=15)[group]
    with pytest.raises(KafkaException) as failed:
        future.result(timeout=20)
    assert failed.value.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND, failed.value

    # ListGroups carries the group state from v4 (librdkafka reports UNKNOWN from older
    # versions); Weir serves v0-5.
    wrong = {when: f"{got.name}, expected {want.name}"
             for when, (got, want) in listed_states.items() if got != want}
    assert wrong == {}, f"list_consumer_groups reported the wrong group state: {wrong}"
