"""Apache Kafka as the broker of the compatibility suite (`WEIR_COMPAT_BROKER=kafka`).

`KafkaBroker` has the part of `conftest.WeirBroker`'s interface that a test of the wire
protocol uses (`bootstrap`, `port`, `stop`, `stop_clean`, `is_running`, `log_text`): it starts a
single-node KRaft Kafka with bench/peers/kafka.sh (jars from Maven Central, cached in .cache/)
in the test's temporary directory. What only Weir has (its flags, its data files, a restart on
the same data directory, a crash by SIGKILL) skips the test with the reason, so a run against
Kafka tells which client tests pass on the reference broker: a test that fails there too is a
client or test issue, not Weir's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "bench" / "peers" / "kafka.sh"
START_TIMEOUT_S = 180.0


def kafka_mode() -> bool:
    """True when the suite runs against Apache Kafka instead of weir-broker."""
    return os.environ.get("WEIR_COMPAT_BROKER", "weir") == "kafka"


def weir_only(what: str) -> None:
    """Skips the current test in Kafka mode: it needs something only Weir has."""
    pytest.skip(f"WEIR_COMPAT_BROKER=kafka: the test needs {what}, which only weir-broker has")


class KafkaBroker:
    """One Apache Kafka process (KRaft, broker and controller in one) in its own directory."""

    def __init__(self, directory: Path, settings: list[str] | None = None):
        self.directory = directory
        # KEY=VALUE lines added to its server.properties (kafka.sh start DIR KEY=VALUE...).
        self.settings = list(settings or [])
        self.log_path = directory / "kafka.log"
        self.port: int | None = None
        self.pid: int | None = None

    @property
    def bootstrap(self) -> str:
        assert self.port is not None, "broker was never started"
        return f"127.0.0.1:{self.port}"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> None:
        run = subprocess.run(
            [str(KAFKA_SH), "start", str(self.directory), *self.settings],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
        )
        if run.returncode != 0:
            raise RuntimeError(f"bench/peers/kafka.sh start failed:\n{run.stderr[-5000:]}")
        fields = dict(
            line.split("=", 1) for line in run.stdout.splitlines() if "=" in line
        )
        self.port = int(fields["bootstrap"].rsplit(":", 1)[1])
        self.pid = int(fields["pid"])

    def is_running(self) -> bool:
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        # Not our child (kafka.sh started it), so a zombie cannot linger here; still, a
        # process that is exiting counts as stopped.
        try:
            state = Path(f"/proc/{self.pid}/stat").read_text().split(")")[-1].split()[0]
        except FileNotFoundError:
            return False
        return state != "Z"

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM; waits until the process is gone. Returns 0 once it is (Kafka is not our
        child, so its exit status cannot be read)."""
        if self.pid is not None and self.is_running():
            os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.is_running():
                if time.monotonic() > deadline:
                    os.kill(self.pid, signal.SIGKILL)
                    raise RuntimeError(f"Kafka did not exit within {timeout}s of SIGTERM")
                time.sleep(0.1)
        return 0

    def stop_clean(self) -> None:
        self.stop()

    @property
    def log_dir(self) -> Path:
        """Kafka's log.dirs: partition directories of `.log` segments holding the record
        batches as sent, in the same format as Weir's (so the stored codecs can be read)."""
        return self.directory / "data"

    # What only Weir has.

    @property
    def data_dir(self) -> Path:
        weir_only("Weir's data directory (its files on disk)")
        raise AssertionError("unreachable")

    @property
    def proc(self):
        weir_only("the weir-broker child process")

    def restart(self) -> None:
        weir_only("a restart of weir-broker on the same data directory")

    def kill9(self) -> None:
        weir_only("a crash (SIGKILL) of weir-broker")
