"""The Java side of the compatibility suite: builds tests/java with Maven and runs its programs.

`JavaBuilds.classpath(version, tools=...)` runs, once per Kafka version (and tool set) per
pytest session,

    mvn -B -q -Dmaven.repo.local=<repo>/.cache/m2 -Dkafka.version=V [-Ptools] \
        compile dependency:build-classpath

so Apache Kafka's jars (kafka-clients, kafka-streams, connect-api, and with `tools` kafka_2.13,
kafka-tools and connect-runtime) are fetched from Maven Central into the ignored `.cache/m2` the
first time and read from there afterwards, and the programs in tests/java/src are compiled into
`.cache/java/build-<version>[-tools]/classes`. A build whose command, pom and sources are
unchanged since the last one (a digest in `weir-stamp.txt`) is reused without starting Maven.
Any failure (no java, no mvn, a download refused, a compile error) fails the test that asked,
with Maven's output: never a skip.

`run_java(classpath, main, args)` starts one JVM; `parse_checks` reads the
`CHECK <name> OK|FAIL <detail>` lines that tests/java's `Check` runner prints. `ToolShell` keeps
one JVM running Kafka's command-line tools on request (tests/java's ToolShell).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
JAVA_PROJECT = REPO / "tests" / "java"
M2_REPO = REPO / ".cache" / "m2"
BUILD_ROOT = REPO / ".cache" / "java"

# The newest 4.x and the newest 3.x of Apache Kafka's Java client on Maven Central (checked
# 2026-12-07: 4.4.1, 4.5.0 and 3.9.3 are not published).
KAFKA_4 = "4.4.0"
KAFKA_3 = "3.9.2"
CLIENT_VERSIONS = (KAFKA_4, KAFKA_3)
# Kafka's command-line tools and Streams are run from the newest 4.x only.
TOOLS_VERSION = KAFKA_4

MVN_TIMEOUT_S = 600
# The JVMs log through slf4j-simple: warnings and errors only, on stderr.
JVM_FLAGS = [
    "-Xss1m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"`{name}` is not installed: the Java compatibility tests need a JDK 17 and Maven "
            "(Debian: apt-get install -y openjdk-17-jdk-headless maven; scripts/test.sh "
            "installs them)",
            pytrace=False,
        )
    return path


class JavaBuilds:
    """Maven builds of tests/java, one per (Kafka version, tools), made on first use."""

    def __init__(self) -> None:
        self._classpaths: dict[tuple[str, bool], str] = {}

    def classpath(self, version: str, tools: bool = False) -> str:
        key = (version, tools)
        if key not in self._classpaths:
            self._classpaths[key] = self._build(version, tools)
        return self._classpaths[key]

    def _build(self, version: str, tools: bool) -> str:
        _tool("java")
        mvn = _tool("mvn")
        build_dir = BUILD_ROOT / (f"build-{version}" + ("-tools" if tools else ""))
        cmd = [
            mvn, "-B", "-q",
            f"-Dmaven.repo.local={M2_REPO}",
            f"-Dkafka.version={version}",
            f"-Dweir.build.dir={build_dir}",
            *(["-Ptools"] if tools else []),
            "compile", "dependency:build-classpath",
        ]
        # Maven takes 5-8 s even with nothing to do: skip it when the same command already
        # built the same pom and sources and every jar it listed is still in the cache.
        stamp_file = build_dir / "weir-stamp.txt"
        stamp = _stamp(cmd)
        classpath_file = build_dir / "classpath.txt"
        if stamp_file.is_file() and stamp_file.read_text() == stamp and classpath_file.is_file():
            jars = classpath_file.read_text().strip()
            if all(Path(j).is_file() for j in jars.split(os.pathsep)) and (build_dir / "classes").is_dir():
                return f"{build_dir / 'classes'}{os.pathsep}{jars}"
        try:
            proc = subprocess.run(
                cmd, cwd=JAVA_PROJECT, capture_output=True, text=True, timeout=MVN_TIMEOUT_S
            )
        except subprocess.TimeoutExpired as err:
            pytest.fail(f"Maven did not finish within {MVN_TIMEOUT_S}s: {' '.join(cmd)}\n{err.stdout}", pytrace=False)
        if proc.returncode != 0:
            pytest.fail(
                f"Maven failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                f"{proc.stdout[-20000:]}\n{proc.stderr[-5000:]}",
                pytrace=False,
            )
        jars = classpath_file.read_text().strip()
        stamp_file.write_text(stamp)
        return f"{build_dir / 'classes'}{os.pathsep}{jars}"


def _stamp(cmd: list[str]) -> str:
    """A digest of the Maven command, the pom and every source file of tests/java."""
    import hashlib

    h = hashlib.sha256("\0".join(cmd[1:]).encode())
    for path in sorted([JAVA_PROJECT / "pom.xml", *(JAVA_PROJECT / "src").rglob("*")]):
        if path.is_file():
            h.update(str(path.relative_to(JAVA_PROJECT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@dataclass
class JavaRun:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def report(self) -> str:
        return (
            f"$ {' '.join(self.args[:2])} ... {' '.join(self.args[-8:])}\n(exit {self.returncode})\n"
            f"--- stdout ---\n{self.stdout[-15000:]}\n--- stderr ---\n{self.stderr[-15000:]}"
        )


def run_java(
    classpath: str,
    main: str,
    args: list[str],
    timeout: float = 120,
    stdin: str | None = None,
    jvm_flags: list[str] | None = None,
) -> JavaRun:
    """Runs `java -cp classpath main args...` and returns what it printed (does not assert)."""
    cmd = [_tool("java"), *JVM_FLAGS, *(jvm_flags or []), "-cp", classpath, main, *args]
    try:
        proc = subprocess.run(
            cmd,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode(errors="replace") if isinstance(err.stdout, bytes) else (err.stdout or "")
        errs = err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else (err.stderr or "")
        raise AssertionError(
            f"{main} did not finish within {timeout}s\n--- stdout ---\n{out[-10000:]}\n--- stderr ---\n{errs[-10000:]}"
        ) from None
    return JavaRun(cmd, proc.returncode, proc.stdout, proc.stderr)


def parse_checks(stdout: str) -> dict[str, tuple[bool, str]]:
    """{check name: (passed, detail)} from the `CHECK <name> OK|FAIL <detail>` lines."""
    results = {}
    for line in stdout.splitlines():
        parts = line.split(" ", 3)
        if len(parts) >= 3 and parts[0] == "CHECK" and parts[2] in ("OK", "FAIL"):
            results[parts[1]] = (parts[2] == "OK", parts[3] if len(parts) > 3 else "")
    return results


# The main classes behind Kafka's bin/kafka-*.sh scripts, as of Kafka 4.4.
TOOL_CLASSES = {
    "kafka-topics": "org.apache.kafka.tools.TopicCommand",
    "kafka-console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "kafka-console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "kafka-consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "kafka-get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "kafka-producer-perf-test": "org.apache.kafka.tools.ProducerPerformance",
    "kafka-consumer-perf-test": "org.apache.kafka.tools.ConsumerPerformance",
    "kafka-configs": "org.apache.kafka.tools.ConfigCommand",
    "kafka-delete-records": "org.apache.kafka.tools.DeleteRecordsCommand",
    "kafka-broker-api-versions": "org.apache.kafka.tools.BrokerApiVersionsCommand",
    "kafka-verifiable-producer": "org.apache.kafka.tools.VerifiableProducer",
    "kafka-verifiable-consumer": "org.apache.kafka.tools.VerifiableConsumer",
    "kafka-e2e-latency": "org.apache.kafka.tools.EndToEndLatency",
    "kafka-log-dirs": "org.apache.kafka.tools.LogDirsCommand",
    "kafka-leader-election": "org.apache.kafka.tools.LeaderElectionCommand",
}


@dataclass
class ToolResult:
    command: list[str]
    exit: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return (
            f"$ {' '.join(self.command)}\n(exit {self.exit})\n--- stdout ---\n{self.stdout[-10000:]}"
            f"\n--- stderr ---\n{self.stderr[-10000:]}"
        )

    def ok(self) -> "ToolResult":
        """Asserts the tool exited with 0 and printed no exception; returns self."""
        assert self.exit == 0, str(self)
        assert "Exception" not in self.stderr, str(self)
        return self


class ToolShell:
    """One JVM running Kafka's tools on request (tests/java's ToolShell): `run("kafka-topics",
    "--bootstrap-server", addr, "--list")`. Each command gets its own stdin, stdout and stderr."""

    def __init__(self, classpath: str):
        import base64

        self._b64 = base64
        self.classpath = classpath
        self._cmd = [_tool("java"), *JVM_FLAGS, "-cp", classpath, "dev.weir.compat.ToolShell"]
        self.proc = self._start()

    def _start(self) -> subprocess.Popen:
        return subprocess.Popen(
            self._cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def run(self, tool: str, *args: str, stdin: str = "", timeout: float = 60, own_jvm: bool = False) -> ToolResult:
        """Runs the tool in the shared JVM, or with `own_jvm` in a JVM of its own: for the
        tools that close their clients in a JVM shutdown hook of their own (VerifiableProducer),
        which only a real process exit runs."""
        import select

        if own_jvm:
            r = run_java(self.classpath, TOOL_CLASSES[tool], list(args), timeout=timeout, stdin=stdin)
            return ToolResult([tool, *args], r.returncode, r.stdout, r.stderr)

        enc = lambda s: self._b64.b64encode(s.encode()).decode()  # noqa: E731
        fields = [TOOL_CLASSES[tool], stdin, str(int(timeout * 1000)), *args]
        if self.proc.poll() is not None:
            # A command that timed out ends the JVM (a stuck tool cannot be stopped): start anew.
            self.proc = self._start()
        self.proc.stdin.write("\t".join(enc(f) for f in fields) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout + 30)
        assert ready, f"{tool} {' '.join(args)}: no answer from the tool JVM within {timeout + 30}s"
        line = self.proc.stdout.readline()
        parts = line.split(" ")
        if len(parts) != 4 or parts[0] != "RESULT":
            rest = self.proc.stderr.read() if self.proc.poll() is not None else ""
            raise AssertionError(f"{tool} {' '.join(args)}: bad answer from the tool JVM: {line!r} {rest}")
        dec = lambda s: self._b64.b64decode(s).decode(errors="replace")  # noqa: E731
        if parts[1] == "TIMEOUT":
            raise AssertionError(
                f"{tool} {' '.join(args)} did not finish within {timeout}s\n--- stdout ---\n"
                f"{dec(parts[2])}\n--- stderr ---\n{dec(parts[3].strip())}"
            )
        return ToolResult([tool, *args], int(parts[1]), dec(parts[2]), dec(parts[3].strip()))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
