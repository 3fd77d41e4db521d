#!/usr/bin/env python3
"""weir-client throughput beside librdkafka (kcat) on the same release broker, same records.

Runs, in one go:
  - produce 1 KiB records to one partition with acks=1 and acks=all: kcat, then weir-client
    (client/examples/throughput.rs, idempotent for acks=all as by default);
  - produce 100-byte records with acks=1: kcat, then weir-client;
  - consume the acks=1 partition (1 GiB by default) from the start: kcat, then weir-client;
  - weir-client's memory with a stalled broker: the producer sends as fast as it can, the
    broker is stopped (SIGSTOP) and the producer's peak RSS is sampled for 5 s.

Settings: linger 5 ms on both; kcat batches up to 1,000,000 bytes (librdkafka's default);
weir-client starts 16 KiB batches that grow up to 1 MiB while the partition is busy.

Usage: bench/client.py [--mib 1024] [--write]   (--write updates docs/benchmarks.md)
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from broker import (ROOT, TMP, free_port, kcat_consume, kcat_produce, kcat_version,
                    make_records, rss_kib, start_broker, stop_broker, wait_listening)

THROUGHPUT = ROOT / "target" / "release" / "examples" / "throughput"
SMALL = 100  # bytes per small record, newline included for kcat


def weir(*args):
    out = subprocess.run([str(THROUGHPUT), *map(str, args)], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


def small_records(path, count):
    if path.exists() and path.stat().st_size == count * SMALL:
        return
    line = (b"y" * (SMALL - 1)) + b"\n"
    with open(path, "wb") as f:
        for _ in range(count // 1000):
            f.write(line * 1000)
        f.write(line * (count % 1000))


def stalled_broker_rss(port, proc):
    """Peak RSS (MiB) of a weir-client producer while the broker is stopped."""
    producer = subprocess.Popen([str(THROUGHPUT), "produce", f"127.0.0.1:{port}", "stall",
                                 "100000000", "1024", "1"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        time.sleep(2.0)
        before = rss_kib(producer.pid)
        proc.send_signal(signal.SIGSTOP)
        peak, deadline = before, time.monotonic() + 5.0
        while time.monotonic() < deadline:
            peak = max(peak, rss_kib(producer.pid))
            time.sleep(0.05)
        proc.send_signal(signal.SIGCONT)
        return before / 1024, peak / 1024
    finally:
        producer.kill()
        producer.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024, help="MiB of 1 KiB records per run")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    if not shutil.which("kcat"):
        sys.exit("kcat is required (apt-get install kcat)")
    subprocess.run(["cargo", "build", "--release", "-p", "weir-broker", "-p", "weir-client",
                    "--example", "throughput"], check=True, cwd=ROOT)
    TMP.mkdir(parents=True, exist_ok=True)
    count = args.mib * 1024 * 1024 // 1024
    big = TMP / f"records-{args.mib}MiB.txt"
    make_records(big, count)
    small_count = 5_000_000
    small = TMP / f"records-{small_count}x{SMALL}.txt"
    small_records(small, small_count)

    data = TMP / "client-bench-data"
    shutil.rmtree(data, ignore_errors=True)
    port = free_port()
    proc = start_broker(data, port)
    wait_listening(port, proc)
    bootstrap = f"127.0.0.1:{port}"
    rows = []
    try:
        for acks in ("1", "all"):
            secs = kcat_produce(port, f"kcat-{acks}", big, acks)
            rows.append((f"produce 1 KiB acks={acks}", "kcat", count, count * 1024, secs))
            r = weir("produce", bootstrap, f"weir-{acks}", count, 1024, acks)
            rows.append((f"produce 1 KiB acks={acks}", "weir-client", r["records"], r["bytes"],
                         r["seconds"]))
        secs = kcat_produce(port, "kcat-small", small, "1")
        rows.append(("produce 100 B acks=1", "kcat", small_count, small_count * SMALL, secs))
        r = weir("produce", bootstrap, "weir-small", small_count, SMALL, "1")
        rows.append(("produce 100 B acks=1", "weir-client", r["records"], r["bytes"],
                     r["seconds"]))
        secs = kcat_consume(port, "kcat-1")
        rows.append(("consume from start", "kcat", count, count * 1024, secs))
        r = weir("consume", bootstrap, "weir-1", count * 1024)
        rows.append(("consume from start", "weir-client", r["records"], r["bytes"],
                     r["seconds"]))
        rss_before, rss_peak = stalled_broker_rss(port, proc)
    finally:
        stop_broker(proc)
        shutil.rmtree(data, ignore_errors=True)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT).stdout.strip()
    lines = [
        f"Measured {datetime.date.today()} at commit `{commit}` with `bench/client.py --mib "
        f"{args.mib}`: one partition, release broker with default flags, kcat (librdkafka "
        f"{kcat_version()}) and weir-client (`client/examples/throughput.rs`) one after the "
        f"other on the same broker; {os.cpu_count()} vCPUs shared by client and broker.",
        "",
        "| Run | Client | Records | MB/s | records/s |",
        "|---|---|---|---|---|",
    ]
    for name, client, n, nbytes, secs in rows:
        lines.append(f"| {name} | {client} | {n:,} | {nbytes / secs / 1e6:,.0f} | "
                     f"{n / secs:,.0f} |")
    lines += [
        "",
        f"weir-client producer with the broker stopped (SIGSTOP) for 5 s while it sends 1 KiB "
        f"records as fast as it can (`buffer_memory` 32 MiB): RSS {rss_before:.1f} MiB before the "
        f"stall, peak **{rss_peak:.1f} MiB** during it (`send` waits; nothing is dropped). The RSS "
        f"includes the example's window of up to 2^20 delivery handles awaited oldest first.",
    ]
    table = "\n".join(lines)
    print(table)
    if args.write:
        doc = ROOT / "docs" / "benchmarks.md"
        text = doc.read_text()
        start, end = "<!-- client:begin -->", "<!-- client:end -->"
        if start not in text:
            text += f"\n## weir-client\n\n{start}\n{end}\n"
        a, b = text.index(start), text.index(end) + len(end)
        doc.write_text(text[:a] + f"{start}\n{table}\n{end}" + text[b:])


if __name__ == "__main__":
    main()
