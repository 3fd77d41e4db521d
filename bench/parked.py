#!/usr/bin/env python3
"""Produce latency with many long-polling fetches parked on other partitions.

1,000 connections each pipeline 64 Fetch requests (max_wait_ms = i32::MAX, min_bytes = 1) at
the log end of the 64 partitions of an idle topic: 64,000 parked fetches. Then one client
sends 1,000 small produces (one 100-byte record, acks=1, one at a time) to a partition of
another topic, and the script reports their total time, per-produce latency and the CPU time
the broker spent meanwhile (utime + stime from /proc/<pid>/stat).

A broker that wakes every parked fetch on every append (one broker-wide notification) makes
each produce cost 64,000 re-reads; one that wakes only the fetches parked on the appended
partition costs nothing here. Run it against any broker binary (--broker) to compare builds.

The broker runs with `--flush os` so that the figure is the broker's own work, not fdatasync.
The clients speak the Kafka protocol directly (Fetch v4, Produce v3, CreateTopics v2), so
nothing but Python is needed.

Usage: bench/parked.py [--broker target/release/weir-broker] [--connections 1000]
                       [--fetches 64] [--produces 1000]
"""

import argparse
import os
import resource
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time

from broker import BROKER, TMP, free_port, wait_listening


def crc32c(data):
    table = crc32c.table
    crc = 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


crc32c.table = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    crc32c.table.append(c)


def varint(n):
    n = (n << 1) ^ (n >> 63)  # zigzag
    out = bytearray()
    while True:
        if n < 0x80:
            out.append(n)
            return bytes(out)
        out.append((n & 0x7F) | 0x80)
        n >>= 7


def string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def frame(api_key, version, correlation_id, body):
    payload = struct.pack(">hhi", api_key, version, correlation_id) + string("parked") + body
    return struct.pack(">i", len(payload)) + payload


def record_batch(value):
    record = (bytes([0]) + varint(0) + varint(0) + varint(-1) + varint(len(value)) + value
              + varint(0))
    record = varint(len(record)) + record
    now = int(time.time() * 1000)
    after_crc = (struct.pack(">hiqqqhii", 0, 0, now, now, -1, -1, -1, 1) + record)
    crc = crc32c(after_crc)
    tail = struct.pack(">ibI", -1, 2, crc) + after_crc
    return struct.pack(">qi", 0, len(tail)) + tail


def create_topics(sock, names, partitions):
    body = struct.pack(">i", len(names))
    for name in names:
        body += string(name) + struct.pack(">ihii", partitions, 1, 0, 0)
    body += struct.pack(">ib", 10_000, 0)  # timeout, validate_only
    sock.sendall(frame(19, 2, 1, body))
    recv_frame(sock)


def fetch_request(topic, partition, correlation_id):
    body = struct.pack(">iiiib", -1, 2**31 - 1, 1, 1 << 20, 0)
    body += struct.pack(">i", 1) + string(topic)
    body += struct.pack(">iiqi", 1, partition, 0, 1 << 20)
    return frame(1, 4, correlation_id, body)


def produce_request(topic, partition, batch, correlation_id):
    body = struct.pack(">hhi", -1, 1, 5_000)
    body += struct.pack(">i", 1) + string(topic)
    body += struct.pack(">ii", 1, partition) + struct.pack(">i", len(batch)) + batch
    return frame(0, 3, correlation_id, body)


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            sys.exit("broker closed the connection")
        buf += chunk
    return bytes(buf)


def recv_frame(sock):
    (size,) = struct.unpack(">i", recv_exact(sock, 4))
    return recv_exact(sock, size)


def produce_error(response, topic):
    # correlation id, [name, [index, error_code, ...]]
    offset = 4 + 4 + 2 + len(topic) + 4 + 4
    return struct.unpack(">h", response[offset:offset + 2])[0]


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", default=str(BROKER))
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--fetches", type=int, default=64, help="per connection (and partitions)")
    ap.add_argument("--produces", type=int, default=1000)
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * args.connections + 4096
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    TMP.mkdir(parents=True, exist_ok=True)
    data = TMP / "parked-data"
    shutil.rmtree(data, ignore_errors=True)
    port = free_port()
    cmd = [args.broker, "--data-dir", str(data), "--listen", f"127.0.0.1:{port}",
           "--flush", "os", "--segment-bytes", str(1 << 20)]
    helptext = subprocess.run([args.broker, "--help"], capture_output=True, text=True).stdout
    if "--max-connections-per-ip" in helptext:
        cmd += ["--max-connections-per-ip", str(args.connections + 10)]
    proc = subprocess.Popen(cmd, env=dict(os.environ, WEIR_LOG="warn"))
    try:
        wait_listening(port, proc)
        admin = socket.create_connection(("127.0.0.1", port))
        create_topics(admin, ["idle", "busy"], args.fetches)
        consumers = []
        for c in range(args.connections):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"".join(fetch_request("idle", p, p) for p in range(args.fetches)))
            consumers.append(s)
        # Let the broker read and park every fetch.
        time.sleep(5)
        batch = record_batch(b"x" * 100)
        latencies = []
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        for i in range(args.produces):
            start = time.monotonic()
            admin.sendall(produce_request("busy", 0, batch, 1000 + i))
            error = produce_error(recv_frame(admin), "busy")
            if error:
                sys.exit(f"produce failed with error {error}")
            latencies.append(time.monotonic() - start)
        elapsed, cpu = time.monotonic() - t0, cpu_seconds(proc.pid) - cpu0
        latencies.sort()
        parked = args.connections * args.fetches
        print(f"{args.produces} produces with {parked:,} parked fetches "
              f"({args.connections} connections x {args.fetches}): {elapsed:.2f} s, "
              f"median {statistics.median(latencies) * 1e3:.2f} ms, "
              f"p99 {latencies[int(0.99 * len(latencies))] * 1e3:.2f} ms, "
              f"broker CPU {cpu:.2f} s")
        for s in consumers:
            s.close()
        admin.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            print("broker did not stop within 60 s of SIGTERM; killed", file=sys.stderr)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
