"""The broker's /metrics, read as Prometheus reads it (the `prometheus_client` parser), after
real clients worked against the Kafka port: exact record and byte counts for a topic produced
with confluent-kafka, a consumer group's lag equal to high watermark minus its committed
offset, request counters that move, /health and /ready, and bad HTTP answered with 4xx while
the Kafka port keeps serving.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port
from helpers import consumer_config, create_topic

RECORDS = 50
VALUE = b"x" * 100


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample as {(name, sorted labels): value}."""
    status, text = http_get(port, "/metrics")
    assert status == 200, text
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def start(broker_factory, *flags):
    port = free_port()
    broker = broker_factory("--http-listen", f"127.0.0.1:{port}", *flags)
    return broker, port


def test_topic_counts_and_group_lag_match_what_clients_did(broker_factory):
    broker, port = start(broker_factory)
    create_topic(broker.bootstrap, "metered", 1)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    for i in range(RECORDS):
        producer.produce("metered", key=f"k{i}".encode(), value=VALUE, partition=0)
    assert producer.flush(30) == 0

    m = scrape(port)
    topic = (("topic", "metered"),)
    part = (("partition", "0"), ("topic", "metered"))
    assert m[("weir_topic_records_in_total", topic)] == RECORDS
    assert m[("weir_partition_high_watermark", part)] == RECORDS
    # Every byte appended is in the partition's one segment.
    assert m[("weir_topic_bytes_in_total", topic)] == m[("weir_partition_size_bytes", part)]
    assert m[("weir_topic_bytes_in_total", topic)] > RECORDS * len(VALUE)
    produces = m[("weir_requests_total", (("api", "Produce"),))]
    assert produces >= 1

    consumer = Consumer(consumer_config(broker.bootstrap, **{"group.id": "lagging", "enable.auto.commit": False}))
    consumer.assign([TopicPartition("metered", 0, 0)])
    taken = 0
    while taken < 30:
        msgs = consumer.consume(30 - taken, timeout=10)
        assert msgs, "no records within 10 s"
        taken += len([msg for msg in msgs if msg.error() is None])
    consumer.commit(offsets=[TopicPartition("metered", 0, 30)], asynchronous=False)
    consumer.close()

    m = scrape(port)
    lag = (("group", "lagging"), ("partition", "0"), ("topic", "metered"))
    assert m[("weir_consumer_group_lag", lag)] == RECORDS - 30
    assert m[("weir_topic_records_out_total", topic)] >= 30
    assert m[("weir_requests_total", (("api", "OffsetCommit"),))] >= 1
    assert m[("weir_requests_total", (("api", "Produce"),))] == produces


def test_a_joined_group_reports_members_and_its_generation(broker_factory):
    broker, port = start(broker_factory, "--group-initial-rebalance-delay-ms", "0")
    create_topic(broker.bootstrap, "joined-topic", 2)
    consumer = Consumer(consumer_config(broker.bootstrap, **{"group.id": "joined"}))
    consumer.subscribe(["joined-topic"])
    deadline = time.monotonic() + 30
    while not consumer.assignment():
        assert time.monotonic() < deadline, "no assignment within 30 s"
        consumer.poll(0.2)
    m = scrape(port)
    assert m[("weir_consumer_group_members", (("group", "joined"), ("state", "Stable")))] == 1
    assert m[("weir_consumer_group_generation", (("group", "joined"),))] >= 1
    consumer.close()


def test_health_ready_and_bad_http(broker_factory):
    broker, port = start(broker_factory)
    assert http_get(port, "/health")[0] == 200
    assert http_get(port, "/ready")[0] == 200
    assert http_get(port, "/no-such-page")[0] == 404
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01 not http\r\n\r\n")
        answer = s.recv(100)
    assert answer.startswith(b"HTTP/1.1 400"), answer
    # The Kafka port is untouched.
    create_topic(broker.bootstrap, "after-bad-http", 1)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    producer.produce("after-bad-http", value=b"fine")
    assert producer.flush(30) == 0
