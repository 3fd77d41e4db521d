"""Kafka Streams (kafka-streams 4.4.0) against weir-broker: a word count with a RocksDB state
store, so a repartition topic and a changelog topic, at-least-once, from a known input to the
exact expected output (each word's counts 1..n in order, nothing else), the changelog ending
with each final count, and the store's interactive query agreeing (tests/java's StreamsChecks).

Streams creates its internal topics with per-topic configs (changelog `cleanup.policy=compact`;
repartition `retention.ms=-1`, `segment.bytes=52428800`). Until the broker takes per-topic
configs (issue 15's topic-configuration part), CreateTopics refuses them with INVALID_CONFIG
and the standard app cannot start: that check is then an expected failure, recognised by the
broker's refusal message, and must pass once the broker accepts the configs.
`streams_word_count_broker_defaults` runs the same app with its internal topics set to the
broker's own settings, which works today and must keep working. An `exactly_once_v2` app must
stop at once with a clear error (Weir has no transactions).
"""

from __future__ import annotations

import pytest

from conftest import start_module_broker
from kafka_peer import kafka_mode, weir_only
from java import TOOLS_VERSION, parse_checks, run_java


@pytest.fixture(scope="module")
def streams_run(java_builds, tmp_path_factory):
    classpath = java_builds.classpath(TOOLS_VERSION)
    tmp = tmp_path_factory.mktemp("java-streams")
    broker = start_module_broker(tmp, ["--group-initial-rebalance-delay-ms", "0"])
    try:
        run = run_java(
            classpath,
            "dev.weir.compat.StreamsChecks",
            [broker.bootstrap, str(tmp / "streams-state")],
            timeout=150,
            # RocksDB's native library is unpacked here rather than in the shared /tmp.
            jvm_flags=[f"-Djava.io.tmpdir={tmp}"],
        )
    finally:
        rc = broker.stop()
    assert rc == 0, f"weir-broker exited with status {rc} after SIGTERM\n{broker.log_text()[-5000:]}"
    return run, parse_checks(run.stdout), broker.log_text()


def _result(streams_run, check):
    run, checks, log = streams_run
    if check not in checks:
        raise AssertionError(f"{check} reported nothing (the JVM died?)\n{run.report()}\n--- broker log ---\n{log[-5000:]}")
    passed, detail = checks[check]
    return passed, detail, f"{check}: {detail}\n{run.report()}"


def test_streams_word_count(streams_run):
    passed, detail, report = _result(streams_run, "streams_word_count")
    assert passed, report


def test_streams_word_count_broker_defaults(streams_run):
    passed, _detail, report = _result(streams_run, "streams_word_count_broker_defaults")
    assert passed, report


def test_streams_exactly_once_is_refused_clearly(streams_run):
    """exactly_once_v2 needs transactions, which Weir does not have: the app stops
    at once with the client's explanation instead of hanging."""
    if kafka_mode():
        weir_only("a broker without transactions (the check expects exactly_once_v2 to be refused)")
    passed, detail, report = _result(streams_run, "streams_exactly_once_refused")
    assert passed, report
    print(detail)
