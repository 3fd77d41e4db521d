#!/usr/bin/env python3
"""End-to-end broker benchmark with librdkafka (through kcat) against the release broker.

Measures, in one run, beside this machine's own figures:
  - produce 1 KiB records to one partition with acks=1 and with acks=all (kcat -P -l FILE);
  - consume the whole partition (1 GiB by default) from the start (kcat -C ... -e);
  - broker start-up time with an empty data directory, and idle RSS;
  - the machine: dd of 1 MiB blocks with O_DSYNC (append 1 MiB + fdatasync) and a 1 MiB-block
    read of the same file from the page cache.

Usage: bench/broker.py [--mib 1024] [--write]   (--write updates docs/benchmarks.md)
"""

import argparse
import datetime
import os
import pathlib
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TMP = pathlib.Path(os.environ.get("TMPDIR_BENCH", ROOT / "target" / "bench-tmp"))
BROKER = ROOT / "target" / "release" / "weir-broker"
RECORD = 1024  # bytes per record, newline included


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"broker exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.05):
                return
        except OSError:
            time.sleep(0.0005)
    sys.exit("broker did not start listening")


def start_broker(data, port, extra=()):
    env = dict(os.environ, WEIR_LOG="warn")
    return subprocess.Popen(
        [str(BROKER), "--data-dir", str(data), "--listen", f"127.0.0.1:{port}", *extra],
        env=env,
    )


def stop_broker(proc):
    proc.send_signal(signal.SIGTERM)
    if proc.wait(timeout=60) != 0:
        sys.exit(f"broker exited with {proc.returncode}")


def rss_kib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def timed(cmd, **kw):
    start = time.monotonic()
    subprocess.run(cmd, check=True, **kw)
    return time.monotonic() - start


def startup_and_rss():
    times, rss = [], []
    for _ in range(7):
        data = TMP / "startup-data"
        shutil.rmtree(data, ignore_errors=True)
        port = free_port()
        t0 = time.monotonic()
        proc = start_broker(data, port)
        wait_listening(port, proc)
        times.append((time.monotonic() - t0) * 1e3)
        time.sleep(1.0)
        rss.append(rss_kib(proc.pid))
        stop_broker(proc)
    return statistics.median(times), statistics.median(rss) / 1024


def make_records(path, count):
    if path.exists() and path.stat().st_size == count * RECORD:
        return
    line = (b"x" * (RECORD - 1)) + b"\n"
    chunk = line * 1024
    with open(path, "wb") as f:
        for _ in range(count // 1024):
            f.write(chunk)
        f.write(line * (count % 1024))


def machine_figures(mib):
    path = TMP / "machine-dd"
    out = subprocess.run(
        ["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}", "oflag=dsync"],
        capture_output=True, text=True, check=True).stderr
    dsync = parse_dd(out)
    out = subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=1M"],
                         capture_output=True, text=True, check=True).stderr
    cached = parse_dd(out)
    path.unlink()
    return dsync, cached


def parse_dd(stderr):
    # "... bytes (...) copied, 1.234 s, 870 MB/s"
    last = stderr.strip().splitlines()[-1]
    nbytes = int(last.split()[0])
    secs = float(last.split("copied,")[1].split()[0])
    return nbytes / secs / 1e6


def kcat_produce(port, topic, path, acks):
    return timed([
        "kcat", "-P", "-b", f"127.0.0.1:{port}", "-t", topic, "-p", "0", "-l", str(path),
        "-X", f"acks={acks}", "-X", "linger.ms=5", "-X", "batch.size=1000000",
        "-X", "queue.buffering.max.kbytes=1048576", "-X", "queue.buffering.max.messages=1000000",
        "-X", "message.max.bytes=10000000",
    ])


def kcat_consume(port, topic):
    return timed([
        "kcat", "-C", "-b", f"127.0.0.1:{port}", "-t", topic, "-p", "0", "-o", "beginning",
        "-e", "-q", "-f", "%R",
        # -e ends at the first empty fetch, which the broker (like Kafka) holds for
        # fetch.wait.max.ms (500 ms by default) waiting for data that never comes: a fixed
        # cost that is not throughput. Data-carrying fetches return at once either way.
        "-X", "fetch.wait.max.ms=10",
        "-X", "fetch.max.bytes=52428800", "-X", "fetch.message.max.bytes=8388608",
        "-X", "queued.max.messages.kbytes=1048576",
    ], stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024, help="MiB produced per run")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    if not shutil.which("kcat"):
        sys.exit("kcat is required (apt-get install kcat)")
    subprocess.run(["cargo", "build", "--release", "-p", "weir-broker"], check=True, cwd=ROOT)
    TMP.mkdir(parents=True, exist_ok=True)
    count = args.mib * 1024 * 1024 // RECORD
    records = TMP / f"records-{args.mib}MiB.txt"
    make_records(records, count)
    nbytes = count * RECORD

    startup_ms, rss_mib = startup_and_rss()
    dsync, cached = machine_figures(args.mib)

    data = TMP / "bench-data"
    shutil.rmtree(data, ignore_errors=True)
    port = free_port()
    proc = start_broker(data, port)
    wait_listening(port, proc)
    rows = []
    try:
        for acks, topic in (("1", "bench-acks1"), ("all", "bench-acksall")):
            secs = kcat_produce(port, topic, records, acks)
            rows.append((f"produce acks={acks}", secs))
        secs = kcat_consume(port, "bench-acksall")
        rows.append(("consume from start", secs))
    finally:
        stop_broker(proc)
        shutil.rmtree(data, ignore_errors=True)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT).stdout.strip()
    lines = [
        f"Measured {datetime.date.today()} at commit `{commit}` with `bench/broker.py --mib {args.mib}`: "
        f"{count:,} records of {RECORD} B ({nbytes / 2**20:,.0f} MiB), one partition, kcat "
        f"(librdkafka {kcat_version()}), release broker with default flags (`--flush always`).",
        "",
        "| Run | Time | MB/s | records/s | Machine figure |",
        "|---|---|---|---|---|",
    ]
    for name, secs in rows:
        machine = (f"{cached:,.0f} MB/s (read 1 MiB blocks from page cache)" if name.startswith("consume")
                   else f"{dsync:,.0f} MB/s (append 1 MiB + fdatasync, dd oflag=dsync)")
        lines.append(f"| {name} | {secs:.2f} s | {nbytes / secs / 1e6:,.0f} | {count / secs:,.0f} | {machine} |")
    lines += [
        "",
        f"Start-up with an empty data directory (spawn to accepting connections, median of 7): "
        f"**{startup_ms:.1f} ms**. Idle RSS one second after start: **{rss_mib:.1f} MiB**.",
    ]
    table = "\n".join(lines)
    print(table)
    if args.write:
        doc = ROOT / "docs" / "benchmarks.md"
        text = doc.read_text()
        start, end = "<!-- broker:begin -->", "<!-- broker:end -->"
        a, b = text.index(start), text.index(end) + len(end)
        doc.write_text(text[:a] + f"{start}\n{table}\n{end}" + text[b:])


def kcat_version():
    out = subprocess.run(["kcat", "-V"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "librdkafka " in line:
            return line.split("librdkafka ")[1].split()[0]
    return "?"


if __name__ == "__main__":
    main()
