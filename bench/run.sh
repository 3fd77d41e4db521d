#!/usr/bin/env bash
# The performance scenarios of the design notes (docs/benchmarks.md, "weir perf" section),
# driven by `weir perf` against a release broker on a temporary data directory, with this
# machine's own figures (fdatasync, memory copy) measured in the same run. Writes the table
# between the `bench/run.sh` markers of docs/benchmarks.md (--print: only print it).
#
#   bench/run.sh [--print]
#   BENCH_SCALE=0.25 BENCH_RUNS=1 bench/run.sh --print     # a quick look
#
# Each throughput figure is the median of BENCH_RUNS runs (default 3), with the spread of
# MB/s beside it. The broker runs with its defaults (`--flush always`: acks=1 and acks=all are
# both synced before the answer), except the first-rebalance delay, set to 0 so that the group
# scenario measures reading rather than waiting.
set -euo pipefail
cd "$(dirname "$0")/.."

# `bench/run.sh --peer kafka [--print]`: the same scenarios against Apache Kafka, interleaved
# with Weir (bench/peers/compare.sh).
if [ "${1:-}" = "--peer" ]; then
    [ "${2:-}" = "kafka" ] || { echo "error: --peer takes: kafka" >&2; exit 2; }
    shift 2
    exec bench/peers/compare.sh "$@"
fi

write=true
[ "${1:-}" = "--print" ] && write=false
scale="${BENCH_SCALE:-1}"
runs="${BENCH_RUNS:-3}"

step() { printf '==> %s\n' "$*" >&2; }
records() { python3 -c "print(max(1, int($1 * $scale)))"; }

step "cargo build --release -p weir-broker -p weir-cli"
cargo build --release --locked -p weir-broker -p weir-cli >&2
broker_bin="$PWD/target/release/weir-broker"
weir="$PWD/target/release/weir"

# Data next to the target directory: the same filesystem a data directory would use.
mkdir -p target/bench-tmp
tmp=$(mktemp -d "$PWD/target/bench-tmp/run.XXXXXX")
broker_pid=""
cleanup() {
    if [ -n "$broker_pid" ] && kill -0 "$broker_pid" 2>/dev/null; then
        kill -TERM "$broker_pid" && wait "$broker_pid" || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export WEIR_BOOTSTRAP="127.0.0.1:$port"
results="$tmp/results.jsonl"
: >"$results"

# Starts the broker; sets broker_pid and startup_s (seconds from spawn until it accepts
# connections).
start_broker() {
    local t0=$EPOCHREALTIME deadline=$((SECONDS + 60))
    "$broker_bin" --listen "127.0.0.1:$port" --data-dir "$tmp/data" \
        --group-initial-rebalance-delay-ms 0 2>>"$tmp/broker.log" &
    broker_pid=$!
    # Bash's own /dev/tcp: no interpreter start-up inside the measured time.
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        if [ "$SECONDS" -gt "$deadline" ]; then
            echo "error: the broker did not start within 60 s (see $tmp/broker.log)" >&2
            exit 1
        fi
        sleep 0.001
    done
    startup_s=$(awk "BEGIN { print $EPOCHREALTIME - $t0 }")
}
rss_kib() { awk '/^'"$2"':/ {print $2}' "/proc/$1/status"; }

# --- The machine's own figures, same run, same filesystem.
step "machine: append 1 MiB + fdatasync (dd oflag=dsync), memory copy"
dsync_mbs=$(dd if=/dev/zero of="$tmp/dd" bs=1M count=256 oflag=dsync 2>&1 |
    python3 -c 'import sys,re; t=sys.stdin.read(); m=re.search(r"(\d+) bytes.*copied, ([\d.]+) s", t); print(int(int(m[1])/float(m[2])/1e6))')
dsync64_mbs=$(dd if=/dev/zero of="$tmp/dd64" bs=64k count=2048 oflag=dsync 2>&1 |
    python3 -c 'import sys,re; t=sys.stdin.read(); m=re.search(r"(\d+) bytes.*copied, ([\d.]+) s", t); print(int(int(m[1])/float(m[2])/1e6))')
rm -f "$tmp/dd" "$tmp/dd64"
copy_gbs=$(python3 - <<'PY'
import time
src = bytearray(b"x" * (256 << 20))
dst = bytearray(len(src))
best = 0.0
for _ in range(5):
    t = time.perf_counter()
    dst[:] = src
    best = max(best, len(src) / (time.perf_counter() - t))
print(f"{best / 1e9:.1f}")
PY
)

step "broker start-up (empty data directory)"
start_broker; startup_empty=$startup_s
sleep 1
rss_idle=$(rss_kib "$broker_pid" VmRSS)

# perf LABEL ARGS...: runs `weir perf ARGS --json` BENCH_RUNS times, each on a fresh topic
# when the args contain TOPIC (replaced by LABEL-run).
perf() {
    local label=$1 run
    shift
    for run in $(seq 1 "$runs"); do
        local args=("${@//TOPIC/$label-$run}")
        step "$label (run $run/$runs): weir perf ${args[*]}"
        "$weir" perf "${args[@]}" --json |
            python3 -c 'import json,sys; r=json.load(sys.stdin); r["label"]=sys.argv[1]; print(json.dumps(r))' "$label" >>"$results"
        # The disk is shared: a run's own topic goes once measured.
        if [[ " $* " == *" TOPIC "* ]]; then
            "$weir" topics delete "$label-$run" >/dev/null
        fi
    done
}

n1k=$(records 200000)
n100=$(records 1000000)
ncache=$(records 1048576)
ne2e=$(records 100000)
ngroup=$(records 300000)
perf "durable-1p" produce -t TOPIC -n "$n1k" -s 1024 --acks all --partitions 1
perf "durable-8p" produce -t TOPIC -n "$n1k" -s 1024 --acks all --partitions 8
perf "fast-1p" produce -t TOPIC -n "$n1k" -s 1024 --acks 1 --partitions 1
perf "fast-8p" produce -t TOPIC -n "$n1k" -s 1024 --acks 1 --partitions 8
perf "small-100b" produce -t TOPIC -n "$n100" -s 100 --acks 1 --partitions 1
# 1 GiB (at scale 1) written once, then read from offset 0 while it is in the page cache.
runs_saved=$runs; runs=1
perf "fill-cache" produce -t cache -n "$ncache" -s 1024 --acks 1 --partitions 1
runs=$runs_saved
perf "consume-cache" consume -t cache
perf "e2e-10mbs" e2e -t TOPIC -n "$ne2e" -s 1024 --acks all --throughput 10000
runs_saved=$runs; runs=1
perf "fill-group" produce -t group12 -n "$ngroup" -s 1024 --acks 1 --partitions 12
runs=$runs_saved
perf "group-3x12" consume -t group12 --consumers 3
rss_peak=$(rss_kib "$broker_pid" VmHWM)
rss_after=$(rss_kib "$broker_pid" VmRSS)
data_mib=$(du -sm "$tmp/data" | cut -f1)

step "broker restart on the loaded data directory, then recovery after kill -9"
kill -TERM "$broker_pid"; wait "$broker_pid" || true
start_broker; startup_loaded=$startup_s
kill -9 "$broker_pid"; wait "$broker_pid" 2>/dev/null || true
start_broker; startup_crash=$startup_s
"$weir" topics delete cache group12 >/dev/null
kill -TERM "$broker_pid"; wait "$broker_pid" || true
broker_pid=""

table=$(python3 - "$results" <<PY
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r["label"], []).append(r)
desc = {
    "durable-1p": ("1. Produce, durable", "1 KiB", "all (synced)", "1 partition"),
    "durable-8p": ("1. Produce, durable", "1 KiB", "all (synced)", "8 partitions"),
    "fast-1p": ("2. Produce, fast", "1 KiB", "1", "1 partition"),
    "fast-8p": ("2. Produce, fast", "1 KiB", "1", "8 partitions"),
    "small-100b": ("3. Small records", "100 B", "1", "1 partition"),
    "consume-cache": ("4. Consume from cache", "1 KiB", "-", "1 partition, from offset 0"),
    "e2e-10mbs": ("5. End to end at 10,000 records/s", "1 KiB", "all (synced)", "1 partition"),
    "group-3x12": ("6. Consumer group, 3 members", "1 KiB", "-", "12 partitions"),
}
print("| Scenario | Record | acks | Shape | Records | records/s | MB/s (spread) | p50 ms | p99 ms | p99.9 ms | max ms |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for label, (name, size, acks, shape) in desc.items():
    rs = by.get(label)
    if not rs:
        continue
    rs.sort(key=lambda r: r["records_per_s"])
    med = rs[len(rs) // 2]
    mbs = [r["mb_per_s"] for r in rs]
    spread = f"{min(mbs):,.0f}–{max(mbs):,.0f}" if len(rs) > 1 else ""
    lat = med.get("latency_ms")
    l = [f"{lat[k]:.2f}" for k in ("p50", "p99", "p999", "max")] if lat else ["-"] * 4
    failed = f" ({med['failed']} failed)" if med["failed"] else ""
    print(f"| {name} | {size} | {acks} | {shape} | {med['records']:,}{failed} | "
          f"{med['records_per_s']:,.0f} | {med['mb_per_s']:,.1f} ({spread}) | " + " | ".join(l) + " |")
PY
)

commit=$(git rev-parse --short HEAD)
body=$(cat <<MD
Measured $(date -u +%Y-%m-%d) at commit \`$commit\` with \`bench/run.sh\` (BENCH_SCALE=$scale, medians of $runs runs, spread = lowest–highest MB/s): release \`weir-broker\` with default flags (\`--flush always\`) and \`weir perf\` (weir-client, producer batch 1 MB, linger 5 ms, one producer) on the same 2 vCPUs. Latency: produce from \`send\` to acknowledgement; end to end from \`send\` to the consumer's \`poll\`. MB/s are 10^6 bytes of values.

| Machine, same run | Figure |
|---|---|
| Append 1 MiB + fdatasync (\`dd bs=1M oflag=dsync\`) | $dsync_mbs MB/s |
| Append 64 KiB + fdatasync (\`dd bs=64k oflag=dsync\`) | $dsync64_mbs MB/s |
| Memory copy, 256 MiB buffers, one core (best of 5) | $copy_gbs GB/s |

$table

7. Footprint: broker RSS idle **$((rss_idle / 1024)) MiB**, peak under these loads **$((rss_peak / 1024)) MiB** ($((rss_after / 1024)) MiB after; resident pages of the memory-mapped segments count in RSS); start-up to accepting connections with an empty data directory **$(python3 -c "print(f'{$startup_empty*1000:.0f}')") ms**, with the $data_mib MiB written here **$(python3 -c "print(f'{$startup_loaded*1000:.0f}')") ms**, after \`kill -9\` (recovery) **$(python3 -c "print(f'{$startup_crash*1000:.0f}')") ms** (spawn to accepting, including the process start).

How to read it: every figure is weir-client and the broker sharing the same two vCPUs. The
producer pipelines up to 5 batches per partition and grows a batch up to 1 MiB while
earlier ones are in flight (docs/client.md); with one partition the durable figure still reads
against the machine's "append 1 MiB + fdatasync" line, and more partitions overlap the syncs (the broker's group commit covers the batches that
arrive during one \`fdatasync\`). Produce latency under an unlimited rate is mostly queueing
in the producer's 32 MiB buffer (Little's law: buffer / throughput); the end-to-end scenario,
at a fixed moderate rate, shows the latency of the path itself. The librdkafka figures of the
"Broker end to end" section above are the client-side reference on the same broker.
MD
)
echo "$body"

if $write; then
    python3 - "$body" <<'PY'
import pathlib, sys
doc = pathlib.Path("docs/benchmarks.md")
text = doc.read_text()
start, end = "<!-- bench/run.sh begin -->", "<!-- bench/run.sh end -->"
section = f"{start}\n{sys.argv[1]}\n{end}"
if start in text and end in text:
    a, b = text.index(start), text.index(end) + len(end)
    text = text[:a] + section + text[b:]
else:
    text = text.rstrip("\n") + (
        "\n\n## Scenarios with `weir perf`\n\n"
        "Command: `bench/run.sh` (the scenarios of the design notes, each beside this "
        "machine's own figures from the same run).\n\n" + section + "\n"
    )
doc.write_text(text)
PY
    step "wrote docs/benchmarks.md"
fi
