"""The web console in a real headless browser (Debian's chromium through chromedriver, see
webdriver.py) against the real broker: the topics page lists the topics, the record browser
shows a produced record's key, value (JSON pretty-printed) and headers, and the group page
shows the lag that /metrics reports. Each page is screenshot (into docs/console/, the
pictures in docs/console.md, when WEIR_CONSOLE_SHOTS=docs/console). A second test measures how long each page takes to load with
1,000 partitions.

Chromium and chromedriver are installed by scripts/test.sh; missing, the tests fail.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from conftest import REPO, free_port
from helpers import create_topic
from webdriver import CHROMEDRIVER, CHROMIUM, Browser

# Where screenshots go: the pictures in docs/console.md are refreshed with
# WEIR_CONSOLE_SHOTS=docs/console; otherwise a temporary directory, so a test run leaves the
# tree as it was.
SHOTS_ENV = "WEIR_CONSOLE_SHOTS"
ORDER_VALUE = b'{"id": 1, "item": "book", "qty": 2}'


@pytest.fixture
def browser():
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(tool) and os.access(tool, os.X_OK)):
            pytest.fail(f"{tool} is missing: apt-get install -y chromium chromium-driver "
                        "(scripts/test.sh installs them)", pytrace=False)
    b = Browser()
    yield b
    b.close()


def start(broker_factory, **kwargs):
    port = free_port()
    broker = broker_factory("--http-listen", f"127.0.0.1:{port}", **kwargs)
    return broker, port


def lag_metric(port: int, group: str, topic: str, partition: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "weir_consumer_group_lag" and s.labels == {
                "group": group, "topic": topic, "partition": str(partition)
            }:
                return s.value
    raise AssertionError(f"no lag metric for {group} {topic}/{partition}")


def join(bootstrap: str, group: str, topic: str, client_id: str) -> Consumer:
    """A member of `group` subscribed to `topic`, once it has its assignment."""
    member = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": client_id,
                       "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    member.subscribe([topic])
    deadline = time.monotonic() + 30
    while not member.assignment():
        assert time.monotonic() < deadline, "no assignment within 30 s"
        member.poll(0.2)
    return member


def stay(member: Consumer, seconds: float) -> None:
    """Keeps `member` in its group (polling) for `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        member.poll(0.1)


def shoot(browser: Browser, shots: Path, name: str) -> None:
    shots.mkdir(parents=True, exist_ok=True)
    browser.screenshot(shots / f"{name}.png")
    assert (shots / f"{name}.png").read_bytes().startswith(b"\x89PNG"), name


def test_console_pages_show_topics_records_and_group_lag(broker_factory, browser, tmp_path):
    shots = REPO / os.environ[SHOTS_ENV] if os.environ.get(SHOTS_ENV) else tmp_path / "shots"
    broker, port = start(broker_factory)
    base = f"http://127.0.0.1:{port}/"
    create_topic(broker.bootstrap, "orders", 3)
    create_topic(broker.bootstrap, "events", 1)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    producer.produce("orders", key=b"order-1", value=ORDER_VALUE, partition=0,
                     headers=[("source", b"console-test"), ("trace", b"7f3a")])
    producer.produce("orders", key=b"bin", value=bytes([0, 1, 0xFE, 0xFF]), partition=0)
    for i in range(40):
        producer.produce("events", key=f"e{i}".encode(), value=f"event number {i}".encode(), partition=0)
    assert producer.flush(30) == 0
    member = join(broker.bootstrap, "billing", "events", "billing-worker-1")
    member.commit(offsets=[TopicPartition("events", 0, 10)], asynchronous=False)
    end = 40 + 16  # the overview below produces 16 more

    # Overview.
    browser.get(base)
    assert browser.text("#overview-topics", contains="/") == "2 / 4"
    # Traffic over a few polls, for the throughput chart.
    for i in range(16):
        producer.produce("events", value=b"x" * (200 * (i % 5 + 1)), partition=0)
        producer.flush(10)
        stay(member, 0.5)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "readers", "enable.auto.commit": False})
    consumer.assign([TopicPartition("events", 0, 0)])
    assert len(consumer.consume(56, timeout=10)) > 0
    consumer.close()
    stay(member, 2.5)
    shoot(browser, shots, "overview")

    # Topics: every topic listed, with its partitions.
    browser.get(base + "#/topics")
    table = browser.text("#topics-table", contains="events")
    assert "orders" in table
    rows = browser.texts("#topics-table tbody tr")
    assert [r.split("\t")[0] for r in rows] == ["events", "orders"]
    assert rows[1].split("\t")[1] == "3"
    shoot(browser, shots, "topics")
    browser.get(base + "#/topics/orders")
    browser.text("#partitions-table")
    cells = [row.split("\t") for row in browser.texts("#partitions-table tbody tr")]
    # Partition, leader, log start, log end, high watermark.
    assert [c[:5] for c in cells] == [["0", "0", "0", "2", "2"], ["1", "0", "0", "0", "0"], ["2", "0", "0", "0", "0"]]
    shoot(browser, shots, "topic")

    # Record browser: the produced record's key, value and headers.
    browser.get(base + "#/records?topic=orders&partition=0&offset=0")
    key = browser.text("#records-table tr[data-offset='0'] td.key", contains="order-1")
    assert key.endswith("order-1")
    value = browser.text("#records-table tr[data-offset='0'] td.value")
    assert '"item": "book"' in value and '"id": 1,' in value, value
    headers = browser.text("#records-table tr[data-offset='0'] td.headers")
    assert "source: console-test" in headers and "trace: 7f3a" in headers, headers
    binary = browser.text("#records-table tr[data-offset='1'] td.value")
    assert "00 01 fe ff" in binary, binary
    shoot(browser, shots, "records")

    # Group page: the lag /metrics reports, closing as the group commits.
    browser.get(base + "#/groups/billing")
    browser.text("#group-total-lag", contains=str(end - 10))
    stay(member, 0.5)
    members = browser.text("#members-table", contains="billing-worker-1")
    assert "events [0]" in members and "127.0.0.1" in members, members
    for offset in (16, 22, 28):
        stay(member, 2.1)
        member.commit(offsets=[TopicPartition("events", 0, offset)], asynchronous=False)
    expected = lag_metric(port, "billing", "events", 0)
    assert expected == end - 28
    cell = "#offsets-table td.lag[data-topic='events'][data-partition='0']"
    assert browser.text(cell, contains=str(int(expected))) == str(int(expected))
    assert browser.text("#group-total-lag") == str(int(expected))
    browser.text("#group-lag-rate", contains="rec/s")
    shoot(browser, shots, "group")
    browser.get(base + "#/groups")
    assert "billing" in browser.text("#groups-table", contains="billing")
    shoot(browser, shots, "groups")
    member.close()


PAGES = {
    "overview": ("", "#overview-topics"),
    "topics": ("#/topics", "#topics-table"),
    "topic (1,000 partitions)": ("#/topics/wide", "#partitions-table"),
    "records": ("#/records?topic=wide&partition=0&offset=0", "#records-table"),
    "groups": ("#/groups", "#groups-table"),
    "group (1,000 partitions)": ("#/groups/wide-readers", "#offsets-table"),
}


def test_every_page_loads_fast_with_1000_partitions(broker_factory, browser):
    # Small segments: each partition preallocates one.
    broker, port = start(broker_factory, segment_bytes=64 << 10)
    base = f"http://127.0.0.1:{port}/"
    create_topic(broker.bootstrap, "wide", 1000)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20})
    for p in range(1000):
        producer.produce("wide", key=f"k{p}".encode(), value=b'{"n": 1}', partition=p)
    assert producer.flush(60) == 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "wide-readers", "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition("wide", p, 0) for p in range(1000)], asynchronous=False)
    consumer.close()

    timings = {}
    for name, (fragment, ready) in PAGES.items():
        samples = []
        for _ in range(3):
            browser.get("about:blank")
            browser.get(base + fragment)
            browser.text(ready)
            deadline = time.monotonic() + 15
            while (ms := browser.script("return document.body.dataset.renderedMs")) is None:
                assert time.monotonic() < deadline, f"{name} never rendered"
                time.sleep(0.05)
            samples.append(int(ms))
        timings[name] = min(samples)
    print("page load, ms from navigation start to drawn (best of 3):", json.dumps(timings))
    # 200 ms is the target (docs/console.md has the figures measured); the bound here is
    # looser because this machine's cores are shared with the rest of the suite.
    slow = {name: ms for name, ms in timings.items() if ms > 1000}
    assert not slow, f"pages slower than 1 s: {slow} (all: {timings})"
    # Closing 1,000 logs (a sync each) takes longer than the fixture's stop allows here.
    assert broker.stop(timeout=180) == 0
