#!/usr/bin/env python3
"""Restart time at many partitions: time from starting the release broker to it accepting
connections, after `kill -9` (recovery of every partition) and after a clean stop.

Populates TOPICS topics of PARTITIONS partitions each (2,000 partitions by default) with a
few records per partition through `weir perf produce`, then for each setting of
--recovery-threads (1, Kafka's default of one thread, and the broker's default) restarts the
broker RUNS times after a `kill -9` and once after a SIGTERM, and prints the medians.

Usage: bench/restart.py [--topics 20] [--partitions 100] [--records 1000] [--runs 3]
                        [--threads 1,default] [--reuse]
Needs target/release/weir-broker and a weir CLI (target/release/weir, else target/debug/weir;
its speed does not matter, it only fills the topics).
"""

import argparse
import shutil
import signal
import statistics
import subprocess
import sys
import time

from broker import BROKER, ROOT, TMP, free_port, wait_listening

SEGMENT_BYTES = 1 << 20  # 2,000 preallocated segments: 2 GiB of disk


def weir_cli():
    for profile in ("release", "debug"):
        path = ROOT / "target" / profile / "weir"
        if path.exists():
            return path
    sys.exit("build the CLI first: cargo build -p weir-cli")


def start(data, port, threads):
    extra = [] if threads is None else ["--recovery-threads", str(threads)]
    return subprocess.Popen(
        [str(BROKER), "--data-dir", str(data), "--listen", f"127.0.0.1:{port}",
         "--segment-bytes", str(SEGMENT_BYTES), *extra],
        env={"WEIR_LOG": "warn", "PATH": "/usr/bin:/bin"},
    )


def timed_start(data, port, threads):
    t0 = time.monotonic()
    proc = start(data, port, threads)
    wait_listening(port, proc, timeout=300.0)
    return proc, time.monotonic() - t0


def kill9(proc):
    proc.kill()
    proc.wait()


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    if proc.wait(timeout=300) != 0:
        sys.exit(f"broker exited with {proc.returncode}")


def populate(data, port, topics, partitions, records):
    proc = start(data, port, None)
    wait_listening(port, proc, timeout=60.0)
    cli = weir_cli()
    for t in range(topics):
        subprocess.run(
            [str(cli), "perf", "produce", "-b", f"127.0.0.1:{port}", "-t", f"restart-{t:02}",
             "--partitions", str(partitions), "--records", str(records), "--record-size", "100",
             "--acks", "all"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topics", type=int, default=20)
    ap.add_argument("--partitions", type=int, default=100)
    ap.add_argument("--records", type=int, default=1000, help="per topic")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", default="1,default",
                    help="comma-separated --recovery-threads settings to measure")
    ap.add_argument("--reuse", action="store_true",
                    help="keep the populated data directory, and reuse it if present")
    args = ap.parse_args()
    if not BROKER.exists():
        sys.exit("build the broker first: cargo build --release -p weir-broker")
    data = TMP / f"restart-data-{args.topics}x{args.partitions}"
    port = free_port()
    total = args.topics * args.partitions
    if not (args.reuse and data.exists()):
        shutil.rmtree(data, ignore_errors=True)
        print(f"populating {args.topics} x {args.partitions} = {total} partitions ...",
              flush=True)
        proc = populate(data, port, args.topics, args.partitions, args.records)
        kill9(proc)
    rows = []
    for setting in args.threads.split(","):
        threads = None if setting == "default" else int(setting)
        crash = []
        for _ in range(args.runs):
            proc, secs = timed_start(data, port, threads)
            crash.append(secs)
            kill9(proc)
        proc, _ = timed_start(data, port, threads)
        stop(proc)
        proc, clean = timed_start(data, port, threads)
        kill9(proc)
        label = "default" if threads is None else str(threads)
        rows.append((label, statistics.median(crash), clean))
        print(f"--recovery-threads {label}: after kill -9 {statistics.median(crash):.2f} s "
              f"(runs {', '.join(f'{s:.2f}' for s in crash)}), after SIGTERM {clean:.2f} s",
              flush=True)
    print()
    print(f"| Partitions | `--recovery-threads` | Start after `kill -9` (median of {args.runs}) "
          "| Start after SIGTERM |")
    print("|---|---|---|---|")
    for label, crash, clean in rows:
        print(f"| {total:,} | {label} | {crash:.2f} s | {clean:.2f} s |")
    if not args.reuse:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
