"""The `weir` CLI against kcat (librdkafka) through weir-broker, both ways: records kcat
produces (keys, headers) read by `weir consume`, and records `weir produce` writes read by
kcat, compared field by field.

The binary is `$WEIR_BIN` if set, else `$CARGO_TARGET_DIR/debug/weir`, else
`<repo>/target/debug/weir`; `scripts/test.sh` builds it (`cargo build -p weir-cli`).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

RECORDS = 5_000
HEADERS = [("source", "kcat"), ("trace-id", "00f067aa0ba902b7"), ("empty", "")]


@pytest.fixture(scope="session")
def weir() -> Path:
    if os.environ.get("WEIR_BIN"):
        path = Path(os.environ["WEIR_BIN"])
    else:
        target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
        if not target.is_absolute():
            target = REPO / target
        path = target / "debug" / "weir"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"weir binary not found at {path}: run `cargo build -p weir-cli` first "
            "(or set WEIR_BIN)",
            pytrace=False,
        )
    return path


def run(cmd: list, stdin: bytes | None = None, timeout: float = 60) -> bytes:
    proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} exited with {proc.returncode}\n"
            f"stderr:\n{proc.stderr.decode(errors='replace')[-4000:]}"
        )
    return proc.stdout


def lines(n: int) -> list[tuple[str, str]]:
    # Values with the separator in them: only the first one splits key from value.
    return [(f"key-{i % 37}", f"value {i}: {'x' * (i % 50)}") for i in range(n)]


def test_kcat_produces_weir_consumes(broker, kcat, weir):
    records = lines(RECORDS)
    data = "".join(f"{k}:{v}\n" for k, v in records).encode()
    header_args = [a for k, v in HEADERS for a in ("-H", f"{k}={v}")]
    run([kcat, "-P", "-b", broker.bootstrap, "-t", "from-kcat", "-K", ":", *header_args], data)

    out = run(
        [weir, "-b", broker.bootstrap, "consume", "-t", "from-kcat", "--offset", "beginning",
         "--exit-at-end", "--format", "json"]
    )
    got = [json.loads(line) for line in out.decode().splitlines()]
    assert len(got) == RECORDS
    assert [(r["key"], r["value"]) for r in got] == records
    for offset, r in enumerate(got):
        assert r["topic"] == "from-kcat"
        assert r["partition"] == 0
        assert r["offset"] == offset
        assert [(h["key"], h["value"]) for h in r["headers"]] == HEADERS, r

    kv = run(
        [weir, "-b", broker.bootstrap, "consume", "-t", "from-kcat", "--offset", "beginning",
         "--count", str(RECORDS), "--format", "kv", "-K", ":"]
    )
    assert kv == data


def test_weir_produces_kcat_consumes(broker, kcat, weir):
    records = lines(RECORDS)
    data = "".join(f"{k}:{v}\n" for k, v in records).encode()
    header_args = [a for k, v in HEADERS for a in ("-H", f"{k}={v}")]
    run(
        [weir, "-b", broker.bootstrap, "produce", "-t", "from-weir", "-K", ":", "--compression",
         "lz4", *header_args],
        data,
    )

    out = run(
        [kcat, "-C", "-b", broker.bootstrap, "-t", "from-weir", "-o", "beginning", "-e", "-J"]
    )
    got = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert len(got) == RECORDS
    assert [(r["key"], r["payload"]) for r in got] == records
    for offset, r in enumerate(got):
        assert r["offset"] == offset
        # kcat -J lists headers flat: [k1, v1, k2, v2, ...].
        flat = [x for kv in HEADERS for x in kv]
        assert r["headers"] == flat, r

    # The plain form, as a shell pipeline would use it.
    values = run(
        [kcat, "-C", "-b", broker.bootstrap, "-t", "from-weir", "-o", "beginning", "-e",
         "-f", "%k=%s\n"]
    )
    assert values.decode() == "".join(f"{k}={v}\n" for k, v in records)


def consumed(out: bytes, payload_key: str) -> list[tuple[int, int, str]]:
    records = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    return sorted((r["partition"], r["offset"], r[payload_key]) for r in records)


def test_start_offsets_mean_what_they_mean_in_kcat(broker, kcat, weir):
    """`-o beginning`, `-o N`, `-o -N` (the last N of each partition) and `-o end` select
    the same records in weir as in kcat."""
    bootstrap = broker.bootstrap
    run([weir, "-b", bootstrap, "topics", "create", "offsets", "--partitions", "3"])
    for partition in range(3):
        data = "".join(f"p{partition}-{i}\n" for i in range(20 + 10 * partition)).encode()
        run([weir, "-b", bootstrap, "produce", "-t", "offsets", "-p", str(partition)], data)

    for offset in ["beginning", "12", "-5", "-100", "end"]:
        ours = run(
            [weir, "-b", bootstrap, "consume", "-t", "offsets", "-o", offset, "-e",
             "--format", "json"]
        )
        theirs = run(
            [kcat, "-C", "-b", bootstrap, "-t", "offsets", "-o", offset, "-e", "-J"]
        )
        assert consumed(ours, "value") == consumed(theirs, "payload"), offset
    last = consumed(
        run([weir, "-b", bootstrap, "consume", "-t", "offsets", "-o", "-5", "-e", "--format",
             "json"]),
        "value",
    )
    assert len(last) == 15
