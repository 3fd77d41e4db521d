"""Fixtures for the real-client compatibility suite: a real `weir-broker` process per test.

`broker` starts target/debug/weir-broker on a free 127.0.0.1 port with a fresh data directory,
waits until it accepts connections and yields a `WeirBroker` (its `bootstrap` is the address to
give clients). `restart()` starts it again on the same data directory and port, `kill9()`
simulates a crash. On teardown the broker gets SIGTERM and must exit with status 0. When a test
fails, the broker's stderr (every run of it) is attached to the test's report.

The binary is `$WEIR_BROKER_BIN` if set, else `$CARGO_TARGET_DIR/debug/weir-broker`, else
`<repo>/target/debug/weir-broker`; `scripts/test.sh` builds it first.

With `WEIR_COMPAT_BROKER=kafka` the same fixtures start Apache Kafka instead (a single-node
KRaft broker from bench/peers/kafka.sh, see kafka_peer.py); Weir's flags that Kafka has too
become its settings (KAFKA_SETTINGS), and a test that needs what only Weir has (its other
flags, data files, restart or SIGKILL) is skipped in that mode, and only in that mode.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from kafka_peer import KafkaBroker, kafka_mode, weir_only

REPO = Path(__file__).resolve().parents[2]

# Small segments keep the preallocated files small (a fresh partition allocates a whole
# segment) and make the restart and crash tests cross segment rolls.
DEFAULT_SEGMENT_BYTES = 4 << 20
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0


def broker_binary() -> Path:
    if os.environ.get("WEIR_BROKER_BIN"):
        path = Path(os.environ["WEIR_BROKER_BIN"])
    else:
        target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
        if not target.is_absolute():
            target = REPO / target
        path = target / "debug" / "weir-broker"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"weir-broker binary not found at {path}: run `cargo build -p weir-broker` first "
            "(or set WEIR_BROKER_BIN)",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BrokerError(Exception):
    pass


class WeirBroker:
    """One weir-broker process (and its restarts) on a fixed data directory and port."""

    def __init__(
        self,
        binary: Path,
        data_dir: Path,
        log_path: Path,
        extra_args: list[str],
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ):
        self.binary = binary
        self.segment_bytes = segment_bytes
        self.data_dir = data_dir
        self.log_path = log_path
        self.extra_args = list(extra_args)
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    @property
    def bootstrap(self) -> str:
        assert self.port is not None, "broker was never started"
        return f"127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        """Where the partition directories (`<topic>-<partition>/*.log`) are: the data directory."""
        return self.data_dir

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """First start: a free port, retried if another process takes it first."""
        last = None
        for _ in range(5):
            self.port = free_port()
            try:
                self._spawn()
                return
            except BrokerError as err:
                last = err
                if "Address already in use" not in self._current_run_log():
                    raise
        raise BrokerError(f"could not find a free port: {last}")

    def restart(self) -> None:
        """Starts the broker again on the same data directory and port (it must be stopped)."""
        assert self.proc is None or self.proc.poll() is not None, "broker is still running"
        deadline = time.monotonic() + 10
        while True:
            try:
                self._spawn()
                return
            except BrokerError:
                # The port can only be busy if something else grabbed it meanwhile.
                if "Address already in use" in self._current_run_log() and time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                raise

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM; waits for the exit and returns the exit status (does not assert it)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise BrokerError(f"weir-broker did not exit within {timeout}s of SIGTERM")
        self._close_log()
        return self.proc.returncode

    def stop_clean(self) -> None:
        """SIGTERM and asserts a clean exit (status 0)."""
        rc = self.stop()
        assert rc == 0, f"weir-broker exited with status {rc} after SIGTERM"

    def kill9(self) -> None:
        """SIGKILL: a crash. Nothing gets a chance to run in the broker."""
        assert self.proc is not None and self.proc.poll() is None, "broker is not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._close_log()

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- internals ---------------------------------------------------------------------------

    def _current_run_log(self) -> str:
        text = self.log_text()
        marker = f"----- weir-broker run {self.runs}:"
        return text[text.rfind(marker):] if marker in text else text

    def _close_log(self) -> None:
        f = getattr(self, "_log_file", None)
        if f is not None and not f.closed:
            f.close()

    def _spawn(self) -> None:
        self.runs += 1
        args = [
            str(self.binary),
            "--listen", self.bootstrap,
            "--data-dir", str(self.data_dir),
            "--segment-bytes", str(self.segment_bytes),
            *self.extra_args,
        ]
        self._close_log()
        self._log_file = open(self.log_path, "ab", buffering=0)
        self._log_file.write(f"\n----- weir-broker run {self.runs}: {' '.join(args)}\n".encode())
        env = dict(os.environ)
        env.setdefault("WEIR_LOG", "info")
        env.pop("WEIR_LISTEN", None)
        env.pop("WEIR_DATA_DIR", None)
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=self._log_file, env=env
        )
        expected = f"weir-broker listening addr={self.bootstrap}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._close_log()
                raise BrokerError(
                    f"weir-broker exited with status {self.proc.returncode} while starting:\n"
                    + self._current_run_log()
                )
            # Our own process announced this address, so the port answering is us, not a
            # leftover from some other process.
            if expected in self._current_run_log() and _accepts(self.port):
                return
            time.sleep(0.02)
        self.proc.kill()
        self.proc.wait()
        self._close_log()
        raise BrokerError(f"weir-broker did not accept connections within {START_TIMEOUT_S}s")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def broker_factory(request, tmp_path):
    """Starts brokers with extra flags: `broker_factory("--flush", "os", segment_bytes=1 << 20)`.
    Each has its own data directory. Stopped (SIGTERM, exit 0 asserted) on teardown."""
    if kafka_mode():
        yield from _kafka_factory(request, tmp_path)
        return
    binary = broker_binary()
    brokers: list[WeirBroker] = []
    request.node.weir_brokers = brokers

    def make(*extra_args: str, segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> WeirBroker:
        n = len(brokers)
        data_dir = tmp_path / f"weir-data-{n}"
        log = tmp_path / f"weir-broker-{n}.log"
        b = WeirBroker(binary, data_dir, log, list(extra_args), segment_bytes)
        brokers.append(b)
        b.start()
        return b

    yield make

    failures = []
    for b in brokers:
        if b.proc is None:
            continue
        was_running = b.is_running()
        try:
            rc = b.stop()
        except BrokerError as err:
            failures.append(str(err))
            continue
        if was_running and rc != 0:
            failures.append(f"weir-broker exited with status {rc} after SIGTERM (expected 0)")
    if failures:
        pytest.fail("; ".join(failures), pytrace=False)


# Weir's flags that have a Kafka broker setting of the same meaning: in Kafka mode they become
# lines of its server.properties instead of skipping the test.
KAFKA_SETTINGS = {
    "--group-initial-rebalance-delay-ms": "group.initial.rebalance.delay.ms",
    "--log-cleanup-policy": "log.cleanup.policy",
    "--log-cleaner-threads": "log.cleaner.threads",
    "--log-cleaner-backoff-ms": "log.cleaner.backoff.ms",
    "--log-cleaner-min-cleanable-ratio": "log.cleaner.min.cleanable.ratio",
    "--segment-ms": "log.roll.ms",
}
# Kafka refuses a smaller log.segment.bytes.
KAFKA_MIN_SEGMENT_BYTES = 1 << 20


def kafka_settings(extra_args, segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> list[str]:
    """Kafka's server.properties lines for weir-broker flags (see KAFKA_SETTINGS) and a segment
    size; skips the test (`weir_only`) for a flag without a Kafka equivalent. Weir's default
    segment size here is a test convenience with no Kafka meaning, so it is not passed on."""
    settings = []
    args = list(extra_args)
    while args:
        flag = args.pop(0)
        if flag not in KAFKA_SETTINGS or not args:
            weir_only(f"weir-broker flags {' '.join(extra_args)}")
        settings.append(f"{KAFKA_SETTINGS[flag]}={args.pop(0)}")
    if segment_bytes != DEFAULT_SEGMENT_BYTES:
        if segment_bytes < KAFKA_MIN_SEGMENT_BYTES:
            weir_only(f"Weir's --segment-bytes {segment_bytes} (below Kafka's minimum)")
        settings.append(f"log.segment.bytes={segment_bytes}")
    return settings


def start_module_broker(directory: Path, extra_args: list[str]):
    """A started broker for a module-scoped fixture (the Java tests share one per module):
    weir-broker with `extra_args` in `directory`, or in Kafka mode Apache Kafka with their
    equivalent settings. Stop it with `stop()`, which returns the exit status (0 for Kafka)."""
    if kafka_mode():
        b = KafkaBroker(directory / "kafka", kafka_settings(extra_args))
    else:
        b = WeirBroker(
            broker_binary(), directory / "data", directory / "weir-broker.log", extra_args, DEFAULT_SEGMENT_BYTES
        )
    b.start()
    return b


def _kafka_factory(request, tmp_path):
    """`broker_factory` in Kafka mode: Weir's flags become Kafka settings where Kafka has the
    same one (KAFKA_SETTINGS); a test with any other flag is skipped."""
    brokers: list[KafkaBroker] = []
    request.node.weir_brokers = brokers

    def make(*extra_args: str, segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> KafkaBroker:
        settings = kafka_settings(extra_args, segment_bytes)
        b = KafkaBroker(tmp_path / f"kafka-{len(brokers)}", settings)
        brokers.append(b)
        b.start()
        return b

    yield make

    failures = []
    for b in brokers:
        try:
            b.stop()
        except RuntimeError as err:
            failures.append(str(err))
    if failures:
        pytest.fail("; ".join(failures), pytrace=False)


@pytest.fixture
def broker(broker_factory) -> WeirBroker:
    """A fresh broker with default settings (auto-create on, 1 partition by default)."""
    return broker_factory()


@pytest.fixture(scope="session")
def kcat() -> str:
    path = shutil.which("kcat")
    if path is None:
        pytest.fail("kcat is not installed (apt-get install -y kcat)", pytrace=False)
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for i, b in enumerate(getattr(item, "weir_brokers", [])):
            report.sections.append((f"weir-broker {i} stderr ({b.log_path})", b.log_text()))


@pytest.fixture(scope="session")
def java_builds():
    """Maven builds of tests/java (Kafka's Java client, Streams and tools), made on first use
    and kept for the session; see tests/compat/java.py."""
    from java import JavaBuilds

    return JavaBuilds()
