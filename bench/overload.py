#!/usr/bin/env python3
"""Memory under overload: many producers, as fast as they can, against one release broker.

Each producer is a kcat (librdkafka) process sending the same file of 1 KiB records with
acks=all, over and over, for the duration; librdkafka pipelines produce requests without limit
(max.in.flight defaults to 1,000,000), so the broker, not the client, has to say "slow down".
The broker runs with its default flush policy (`--flush always`: every acknowledgement waits
for fdatasync) on a topic with several partitions, with size-based retention checked every
second so that minutes of producing do not fill the disk (the whole run keeps under 2 GB). While the producers run, the broker's
/proc/<pid>/status is sampled every 50 ms:

  - RssAnon: the broker's own heap and stacks, what backpressure must bound;
  - RssFile: segment pages mapped by the broker (the page cache, reclaimable; grows with the
    data written and is not a leak);
  - VmHWM: peak total RSS, as the kernel counts it.

After the run, the end offsets are read back (kcat -Q) to check that what the producers
reported as delivered is in the log, and throughput is computed from them.

What keeps the broker's memory bounded (see docs/reliability.md): produce payloads take
permits from a broker-wide 256 MiB semaphore until they are appended (and synced, for
acks=all); each connection reads at most 64 requests ahead; when either is full the broker
stops reading that socket, and TCP pushes back on the producer.

Usage: bench/overload.py [--producers 4,64] [--seconds 60] [--partitions 8] [--write]
       (--write updates the overload section of docs/benchmarks.md)
"""

import argparse
import datetime
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time

# The broker-benchmark helpers (paths, port, readiness) are shared with bench/broker.py.
from broker import BROKER, RECORD, ROOT, TMP, free_port, wait_listening

FILE_MIB = 32  # per kcat run
TOPIC = "overload"
SEGMENT_MIB = 32  # per-partition disk use stays under RETAIN_MIB + 2 segments
RETAIN_MIB = 128
MIN_FREE_GIB = 4  # the run stops if the disk gets fuller than this


def status(pid):
    """The memory fields of /proc/<pid>/status, in KiB."""
    out = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(rest.split()[0])
    return out


def make_records(path, count):
    if path.exists() and path.stat().st_size == count * RECORD:
        return
    line = (b"x" * (RECORD - 1)) + b"\n"
    with open(path, "wb") as f:
        for _ in range(count // 1024):
            f.write(line * 1024)


def kcat_version():
    out = subprocess.run(["kcat", "-V"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "librdkafka " in line:
            return line.split("librdkafka ")[1].split()[0]
    return "?"


def producer(port, path, deadline, results, index, running, low_disk):
    runs = failures = 0
    while time.monotonic() < deadline and not low_disk.is_set():
        p = subprocess.Popen([
            "kcat", "-P", "-b", f"127.0.0.1:{port}", "-t", TOPIC, "-l", str(path),
            "-X", "acks=all", "-X", "linger.ms=5", "-X", "batch.size=1000000",
            "-X", "queue.buffering.max.kbytes=1048576",
            "-X", "queue.buffering.max.messages=1000000", "-X", "message.max.bytes=10000000",
        ], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        running.add(p)
        rc = p.wait()
        running.discard(p)
        if rc == 0:
            runs += 1
        else:
            failures += 1
    results[index] = (runs, failures)


def end_offsets(port, partitions):
    # -Q with timestamp -1 asks for the latest offset (the log end) of each partition.
    args = ["kcat", "-Q", "-b", f"127.0.0.1:{port}"]
    for p in range(partitions):
        args += ["-t", f"{TOPIC}:{p}:-1"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    total = 0
    for line in out.splitlines():
        # "overload [3] offset 123456"
        if " offset " in line:
            total += int(line.rsplit(" offset ", 1)[1])
    return total


def run(producers, seconds, partitions, path, records_per_file, budget_mib):
    data = TMP / "overload-data"
    shutil.rmtree(data, ignore_errors=True)
    port = free_port()
    proc = subprocess.Popen(
        [str(BROKER), "--data-dir", str(data), "--listen", f"127.0.0.1:{port}",
         "--default-partitions", str(partitions),
         # The producers write hundreds of MB/s for minutes: without retention they would fill
         # the disk. Keep at most RETAIN_MIB (plus the active segment) per partition.
         "--segment-bytes", str(SEGMENT_MIB << 20), "--retention-bytes", str(RETAIN_MIB << 20),
         "--retention-check-ms", "1000"]
        + (["--max-produce-bytes-in-flight", str(budget_mib << 20)] if budget_mib else []),
        env=dict(os.environ, WEIR_LOG="warn"))
    try:
        wait_listening(port, proc)
        idle = status(proc.pid)
        samples = []  # (seconds since start, status)
        stop = threading.Event()
        low_disk = threading.Event()
        running = set()

        def sample():
            t0 = time.monotonic()
            while not stop.is_set():
                samples.append((time.monotonic() - t0, status(proc.pid)))
                # A shared machine: never let a run take the disk from everyone else.
                if shutil.disk_usage(data).free < MIN_FREE_GIB << 30:
                    low_disk.set()
                    for p in list(running):
                        p.kill()
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.monotonic()
        deadline = start + seconds
        results = [None] * producers
        threads = [threading.Thread(target=producer,
                                    args=(port, path, deadline, results, i, running, low_disk))
                   for i in range(producers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
        stop.set()
        sampler.join()
        if low_disk.is_set():
            sys.exit(f"stopped: less than {MIN_FREE_GIB} GiB free on the disk of {data}")
        final = status(proc.pid)
        runs = sum(r[0] for r in results)
        failures = sum(r[1] for r in results)
        in_log = end_offsets(port, partitions)
        acked = runs * records_per_file
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        shutil.rmtree(data, ignore_errors=True)
    if proc.returncode != 0:
        sys.exit(f"broker exited with {proc.returncode}")
    if in_log < acked:
        sys.exit(f"{acked} records reported delivered but only {in_log} in the log")
    anon = [s["RssAnon"] for _, s in samples]
    half = [s["RssAnon"] for t, s in samples if t <= elapsed / 2]
    return {
        "producers": producers,
        "elapsed": elapsed,
        "records": in_log,
        "mb_s": in_log * RECORD / elapsed / 1e6,
        "failures": failures,
        "idle_rss": idle["VmRSS"] / 1024,
        "peak_anon": max(anon) / 1024,
        "peak_anon_first_half": max(half) / 1024 if half else 0.0,
        "peak_file": max(s["RssFile"] for _, s in samples) / 1024,
        "hwm": final["VmHWM"] / 1024,
        "end_anon": final["RssAnon"] / 1024,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--producers", default="4,64", help="comma-separated producer counts")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--budget-mib", type=int, default=0,
                    help="--max-produce-bytes-in-flight in MiB (default: the broker's, 256)")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    if not shutil.which("kcat"):
        sys.exit("kcat is required (apt-get install kcat)")
    subprocess.run(["cargo", "build", "--release", "-p", "weir-broker"], check=True, cwd=ROOT)
    TMP.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(TMP).free < (MIN_FREE_GIB + 4) << 30:
        sys.exit(f"needs {MIN_FREE_GIB + 4} GiB free under {TMP}")
    count = FILE_MIB * 1024 * 1024 // RECORD
    path = TMP / f"overload-{FILE_MIB}MiB.txt"
    make_records(path, count)

    rows = []
    for n in (int(x) for x in args.producers.split(",")):
        r = run(n, args.seconds, args.partitions, path, count, args.budget_mib)
        print(r, flush=True)
        rows.append(r)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT).stdout.strip()
    lines = [
        f"Measured {datetime.date.today()} at commit `{commit}` with `bench/overload.py "
        f"--producers {args.producers} --seconds {args.seconds} --partitions {args.partitions}"
        f"{f' --budget-mib {args.budget_mib}' if args.budget_mib else ''}`: "
        f"each producer a kcat process (librdkafka {kcat_version()}, acks=all, linger.ms=5, "
        f"batch.size=1000000, unlimited in-flight requests) sending {FILE_MIB} MiB of 1 KiB "
        f"records again and again; release broker with `--flush always` (the default), "
        f"{SEGMENT_MIB} MiB segments, retention {RETAIN_MIB} MiB per partition checked every second, "
        f"{os.cpu_count()} vCPUs shared by broker and producers. RSS sampled every 50 ms.",
        "",
        f"Produce bytes in flight (`--max-produce-bytes-in-flight`): "
        f"{args.budget_mib or 256} MiB.",
        "",
        "| Producers | Duration | Records in the log | MB/s | Broker RSS idle | Peak RssAnon (first half / whole run) | RssAnon at the end | Peak RssFile (mapped segments) | VmHWM | Failed kcat runs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['producers']} | {r['elapsed']:.0f} s | {r['records']:,} | {r['mb_s']:,.0f} | "
            f"{r['idle_rss']:.1f} MiB | {r['peak_anon_first_half']:.0f} / {r['peak_anon']:.0f} MiB | "
            f"{r['end_anon']:.0f} MiB | {r['peak_file']:.0f} MiB | {r['hwm']:.0f} MiB | {r['failures']} |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        doc = ROOT / "docs" / "benchmarks.md"
        text = doc.read_text()
        start, end = "<!-- overload:begin -->", "<!-- overload:end -->"
        a, b = text.index(start), text.index(end) + len(end)
        doc.write_text(text[:a] + f"{start}\n{table}\n{end}" + text[b:])


if __name__ == "__main__":
    main()
