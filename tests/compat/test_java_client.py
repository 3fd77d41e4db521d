"""Apache Kafka's Java client (kafka-clients, the newest 4.x and 3.x) against weir-broker.

One JVM per client version runs every check of tests/java's `ClientChecks` against one fresh
broker (a JVM start costs about a second, so the checks are batched); each check is then its
own test here. The checks: idempotent `acks=all` produce under each codec, read back exactly;
two-member groups with the range and cooperative-sticky assignors (each record once, commits,
take-over after a member leaves); `group.protocol=consumer` (KIP-848) refused with a clear error;
`offsetsForTimes` and `seek`; the Admin client (topics, cluster, configs, groups, offsets,
records). After the run, the codec of every stored batch is checked on disk, so a client that
silently stopped compressing would be caught.

A check of an API the broker does not advertise (IncrementalAlterConfigs, DeleteRecords) is an
expected failure, decided from the broker's own ApiVersions answer: once the API is served, the
check must pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from conftest import start_module_broker
from kafka_peer import kafka_mode, weir_only
from helpers import api_versions, stored_codecs
from java import CLIENT_VERSIONS, JavaRun, parse_checks, run_java

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
CHECKS = (
    [f"produce_idempotent_{c}" for c in CODECS]
    + [
        "group_range",
        "group_cooperative_sticky",
        "group_protocol_consumer",
        "offsets_for_times_and_seek",
        "read_committed_small_fetches",
        "group_static_membership",
        "transactions_refused",
        "offset_out_of_range",
        "pattern_subscription_auto_commit",
        "admin_topics",
        "admin_describe_cluster",
        "admin_describe_configs",
        "admin_alter_configs",
        "admin_groups",
        "admin_list_offsets",
        "admin_delete_records",
    ]
)
# Checks that need an API another part of issue 15 adds: expected to fail while the broker does
# not advertise it (ApiVersions), required to pass once it does.
NEEDS_API = {
    "admin_alter_configs": (44, "IncrementalAlterConfigs"),
    "admin_delete_records": (21, "DeleteRecords"),
}
# Checks that expect a refusal of what Weir does not have and Apache Kafka does: skipped in
# Kafka mode (WEIR_COMPAT_BROKER=kafka), where the client rightly succeeds.
REFUSALS = {
    "group_protocol_consumer": "a broker without KIP-848 consumer groups (the check expects the refusal)",
    "transactions_refused": "a broker without transactions (the check expects initTransactions to fail)",
}


@dataclass
class ClientRun:
    run: JavaRun
    checks: dict[str, tuple[bool, str]]
    apis: dict[int, tuple[int, int]]
    stored: dict[str, dict[str, int]]
    broker_log: str


@pytest.fixture(scope="module")
def client_runs(java_builds, tmp_path_factory):
    """{kafka version: ClientRun}. On first use every client version runs at once, each JVM
    against its own broker (the checks mostly wait on the broker, so this halves the time)."""
    runs: dict[str, ClientRun] = {}

    def run_one(version: str, classpath: str) -> ClientRun:
        tmp = tmp_path_factory.mktemp(f"java-client-{version}")
        broker = start_module_broker(tmp, ["--group-initial-rebalance-delay-ms", "0"])
        try:
            apis = api_versions(broker.bootstrap)
            run = run_java(classpath, "dev.weir.compat.ClientChecks", [broker.bootstrap], timeout=150)
        finally:
            rc = broker.stop()
        assert rc == 0, f"weir-broker exited with status {rc} after SIGTERM\n{broker.log_text()[-5000:]}"
        stored = {}
        for codec in CODECS:
            try:
                stored[codec] = stored_codecs(broker.log_dir, f"java-codec-{codec}", 3)
            except AssertionError as err:
                stored[codec] = {"error": str(err)}
        return ClientRun(run, parse_checks(run.stdout), apis, stored, broker.log_text())

    def get(version: str) -> ClientRun:
        if not runs:
            from concurrent.futures import ThreadPoolExecutor

            # Maven one build at a time; then the JVMs side by side.
            classpaths = {v: java_builds.classpath(v) for v in CLIENT_VERSIONS}
            with ThreadPoolExecutor(len(CLIENT_VERSIONS)) as pool:
                futures = {v: pool.submit(run_one, v, cp) for v, cp in classpaths.items()}
                for v, f in futures.items():
                    runs[v] = f.result()
        return runs[version]

    return get


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("version", CLIENT_VERSIONS)
def test_java_client(client_runs, version, check):
    if check in REFUSALS and kafka_mode():
        weir_only(REFUSALS[check])
    r = client_runs(version)
    if check not in r.checks:
        raise AssertionError(
            f"kafka-clients {version}: check {check} reported nothing (the JVM died?)\n{r.run.report()}\n"
            f"--- broker log ---\n{r.broker_log[-5000:]}"
        )
    passed, detail = r.checks[check]
    if check in NEEDS_API:
        key, name = NEEDS_API[check]
        assert key in r.apis, f"{check} needs {name} ({key}), which the broker does not advertise"
    if not passed:
        stderr = r.run.stderr
        start = stderr.find(f"----- check {check} failed")
        mine = stderr[start:stderr.find(f"----- end of check {check}", start)][:8000]
        raise AssertionError(
            f"kafka-clients {version}: {check} failed: {detail}\n--- its stack trace ---\n{mine}\n"
            f"--- broker log (tail) ---\n{r.broker_log[-5000:]}"
        )


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("version", CLIENT_VERSIONS)
def test_java_client_stores_the_codec_it_sent(client_runs, version, codec):
    """Every batch of the codec's topic is on disk with that codec: the Java producer really
    compressed (it decides from the advertised Produce versions, as librdkafka does)."""
    r = client_runs(version)
    assert r.checks.get(f"produce_idempotent_{codec}", (False,))[0], "the produce check failed"
    stored = r.stored[codec]
    assert set(stored) == {codec} and stored[codec] > 0, f"batches by codec on disk: {stored}"


@pytest.mark.parametrize("version", CLIENT_VERSIONS)
def test_java_idempotent_producer_across_broker_kill(java_builds, broker_factory, version):
    """The Java idempotent producer (acks=all, 5 in flight) keeps sending while the broker is
    killed with SIGKILL and started again: every record is acknowledged, and read back exactly
    once, in order, at its acknowledged offset (tests/java's RestartChecks)."""
    import subprocess

    from java import JVM_FLAGS, parse_checks

    classpath = java_builds.classpath(version)
    broker = broker_factory()
    proc = subprocess.Popen(
        ["java", *JVM_FLAGS, "-cp", classpath, "dev.weir.compat.RestartChecks", broker.bootstrap],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        out = []
        for line in proc.stdout:
            out.append(line)
            if line.startswith("KILL_NOW") or line.startswith("CHECK"):
                break
        assert out and out[-1].startswith("KILL_NOW"), "".join(out) + proc.stderr.read()
        broker.kill9()
        broker.restart()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    checks = parse_checks("".join(out) + stdout)
    passed, detail = checks.get("idempotent_produce_across_broker_kill", (False, "no result"))
    print(detail)
    assert passed, f"{detail}\n--- stdout ---\n{''.join(out)}{stdout}\n--- stderr ---\n{stderr[-10000:]}"
