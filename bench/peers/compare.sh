#!/usr/bin/env bash
# Weir beside Apache Kafka (`bench/run.sh --peer kafka`): the same scenarios with the same
# clients (`weir perf`, weir-client; Kafka's kafka-producer-perf-test) against a release
# weir-broker, a single-node KRaft Kafka with
# its defaults, and the same Kafka with `flush.messages=1`, interleaved: each round starts each
# broker in turn on a fresh directory, measures it and stops it, so the three see the same
# machine state. Writes the table between the `bench/run.sh --peer kafka` markers of
# docs/benchmarks.md (--print: only print it).
#
#   bench/run.sh --peer kafka [--print]
#   BENCH_SCALE=0.1 BENCH_RUNS=1 bench/run.sh --peer kafka --print    # a quick look
#
# Durability, stated as it is: weir-broker runs with its defaults (`--flush always`: acks=1 and
# acks=all are both answered after fdatasync). Kafka by default answers before any fsync (the
# page cache, and on a real cluster the replicas, are its durability); `flush.messages=1`
# makes it fsync each append before answering, the comparison on equal durability.
set -euo pipefail
cd "$(dirname "$0")/../.."

write=true
for a in "$@"; do [ "$a" = "--print" ] && write=false; done
scale="${BENCH_SCALE:-1}"
runs="${BENCH_RUNS:-3}"

step() { printf '==> %s\n' "$*" >&2; }
records() { python3 -c "print(max(1, int($1 * $scale)))"; }

step "cargo build --release -p weir-broker -p weir-cli"
cargo build --release --locked -p weir-broker -p weir-cli >&2
broker_bin="$PWD/target/release/weir-broker"
weir="$PWD/target/release/weir"
step "Apache Kafka's jars (bench/peers/kafka.sh fetch)"
bench/peers/kafka.sh fetch

mkdir -p target/bench-tmp
tmp=$(mktemp -d "$PWD/target/bench-tmp/peer.XXXXXX")
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
results="$tmp/results.jsonl"
: >"$results"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kib() { awk '/^'"$2"':/ {print $2}' "/proc/$1/status"; }
# note BROKER KEY VALUE: one figure of the broker's round.
note() { printf '{"broker":"%s","label":"%s","value":%s}\n' "$1" "$2" "$3" >>"$results"; }

# start_peer NAME: starts it on a fresh directory; sets pid, WEIR_BOOTSTRAP, startup_ms.
start_peer() {
    local dir="$tmp/$1"
    rm -rf "$dir"
    mkdir -p "$dir"
    case "$1" in
    weir)
        local port t0=$EPOCHREALTIME deadline=$((SECONDS + 60))
        port=$(free_port)
        "$broker_bin" --listen "127.0.0.1:$port" --data-dir "$dir/data" \
            --group-initial-rebalance-delay-ms 0 2>>"$dir/broker.log" &
        pid=$!
        until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
            [ "$SECONDS" -gt "$deadline" ] && { echo "error: weir-broker did not start" >&2; exit 1; }
            sleep 0.001
        done
        startup_ms=$(awk "BEGIN { printf \"%d\", ($EPOCHREALTIME - $t0) * 1000 }")
        export WEIR_BOOTSTRAP="127.0.0.1:$port"
        ;;
    kafka | kafka-fsync)
        local extra=() out
        [ "$1" = "kafka-fsync" ] && extra=(flush.messages=1)
        out=$(bench/peers/kafka.sh start "$dir" "${extra[@]}")
        pid=$(sed -n 's/^pid=//p' <<<"$out")
        startup_ms=$(sed -n 's/^startup_ms=//p' <<<"$out")
        export WEIR_BOOTSTRAP=$(sed -n 's/^bootstrap=//p' <<<"$out")
        ;;
    esac
}

stop_peer() {
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    pid=""
}

# perf BROKER LABEL ARGS...: one `weir perf ARGS --json`, recorded under LABEL.
perf() {
    local b=$1 label=$2
    shift 2
    step "$b $label: weir perf $*"
    "$weir" perf "$@" --json |
        python3 -c 'import json,sys; r=json.load(sys.stdin); r["label"]=sys.argv[1]; r["broker"]=sys.argv[2]; print(json.dumps(r))' "$label" "$b" >>"$results"
}

# java_perf BROKER LABEL ACKS: Kafka's own `kafka-producer-perf-test` (1 KiB records, unlimited
# rate), the Java client tuned for Kafka, against the same broker.
java_perf() {
    local b=$1 label=$2 acks=$3
    step "$b $label: kafka-producer-perf-test acks=$acks"
    java -Xmx256m -cp "$kafka_cp" org.apache.kafka.tools.ProducerPerformance --topic "java-$acks" \
        --num-records "$n1k" --record-size 1024 --throughput -1 \
        --producer-props bootstrap.servers="$WEIR_BOOTSTRAP" acks="$acks" 2>/dev/null | tail -1 |
        python3 -c '
import json, re, sys
line = sys.stdin.read()
m = re.search(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\).*?([\d.]+) ms 50th, ([\d.]+) ms 95th, ([\d.]+) ms 99th", line)
if not m:
    sys.exit("kafka-producer-perf-test: no summary line: " + line)
print(json.dumps({"label": sys.argv[1], "broker": sys.argv[2], "records": int(m[1]),
    "records_per_s": float(m[2]), "mb_per_s": float(m[3]), "failed": 0,
    "latency_ms": {"p50": float(m[4]), "p99": float(m[6])}}))' "$label" "$b" >>"$results"
}
kafka_cp=$(bench/peers/kafka.sh classpath)

n1k=$(records 200000)
n100=$(records 1000000)
ne2e=$(records 50000)
for round in $(seq 1 "$runs"); do
    for b in weir kafka kafka-fsync; do
        step "round $round/$runs: $b"
        start_peer "$b"
        note "$b" startup_ms "$startup_ms"
        sleep 2
        note "$b" rss_idle_kib "$(rss_kib "$pid" VmRSS)"
        perf "$b" acks1-1k produce -t acks1 -n "$n1k" -s 1024 --acks 1 --partitions 1
        perf "$b" acksall-1k produce -t acksall -n "$n1k" -s 1024 --acks all --partitions 1
        perf "$b" acks1-100b produce -t small -n "$n100" -s 100 --acks 1 --partitions 1
        perf "$b" consume consume -t acks1
        java_perf "$b" java-acksall-1k all
        # Half load: half of this broker's own acks=all rate of this round.
        half=$(python3 - "$results" "$b" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
r = [x for x in rows if x.get("broker") == sys.argv[2] and x["label"] == "acksall-1k"][-1]
print(max(1, int(r["records_per_s"] / 2)))
PY
)
        note "$b" half_rate "$half"
        perf "$b" e2e-half e2e -t e2e -n "$ne2e" -s 1024 --acks all --throughput "$half"
        note "$b" rss_peak_kib "$(rss_kib "$pid" VmHWM)"
        stop_peer
        rm -rf "$tmp/$b"
    done
done

table=$(python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
brokers = ["weir", "kafka", "kafka-fsync"]
def vals(b, label, key):
    out = []
    for r in rows:
        if r.get("broker") != b or r["label"] != label:
            continue
        v = r.get(key) if key != "value" else r["value"]
        if key.startswith("latency_"):
            v = (r.get("latency_ms") or {}).get(key[len("latency_"):])
        if v is not None:
            out.append(float(v))
    return out
def med(b, label, key):
    v = vals(b, label, key)
    return statistics.median(v) if v else None
lines = [
    ("Produce 1 KiB, acks=1, records/s", "acks1-1k", "records_per_s", 1, True),
    ("Produce 1 KiB, acks=all, records/s", "acksall-1k", "records_per_s", 1, True),
    ("Produce 100 B, acks=1, records/s", "acks1-100b", "records_per_s", 1, True),
    ("Consume 1 KiB from offset 0, records/s", "consume", "records_per_s", 1, True),
    ("Java client (`kafka-producer-perf-test`), 1 KiB, acks=all, records/s", "java-acksall-1k", "records_per_s", 1, True),
    ("Java client, 1 KiB, acks=all, p99 ms (unlimited rate: mostly queueing)", "java-acksall-1k", "latency_p99", 1, False),
    ("End to end at half load, p50 ms", "e2e-half", "latency_p50", 1, False),
    ("End to end at half load, p99 ms", "e2e-half", "latency_p99", 1, False),
    ("Half load (records/s, half the broker's own acks=all rate)", "half_rate", "value", 1, True),
    ("RSS idle, MiB", "rss_idle_kib", "value", 1 / 1024, False),
    ("RSS peak under these loads, MiB", "rss_peak_kib", "value", 1 / 1024, False),
    ("Start-up to accepting connections, ms", "startup_ms", "value", 1, False),
]
print("| Figure (median of rounds) | Weir (`--flush always`) | Kafka (default: acks before fsync) | Kafka (`flush.messages=1`) | Weir ÷ Kafka | Weir ÷ Kafka fsync |")
print("|---|---|---|---|---|---|")
for name, label, key, factor, higher_better in lines:
    v = [med(b, label, key) for b in brokers]
    cells = [f"{x * factor:,.1f}" if x is not None else "-" for x in v]
    ratios = [f"{v[0] / x:.2f}" if v[0] is not None and x else "-" for x in v[1:]]
    print(f"| {name} | " + " | ".join(cells + ratios) + " |")
failed = [r for r in rows if r.get("failed")]
if failed:
    print()
    print("Failed sends: " + ", ".join(f"{r['broker']} {r['label']}: {r['failed']}" for r in failed))
PY
)

commit=$(git rev-parse --short HEAD)
kv="${KAFKA_VERSION:-4.4.0}"
body=$(cat <<MD
Measured $(date -u +%Y-%m-%d) at commit \`$commit\` with \`BENCH_SCALE=$scale BENCH_RUNS=$runs bench/run.sh --peer kafka\`: release \`weir-broker\` (defaults, \`--flush always\`: every acknowledged record was fdatasync'ed, for acks=1 too) against Apache Kafka $kv (single-node KRaft, broker and controller in one JVM, \`-Xmx512m\`, bench/peers/kafka.sh), once with Kafka's defaults, which acknowledge **before** fsync (durability from the page cache and, on a real cluster, replicas), and once with \`flush.messages=1\` (fsync per append before the answer: the same durability as Weir). Same clients for all: \`weir perf\` (weir-client, one producer, batch up to 1 MB, linger 5 ms) and, for the Java rows, Kafka's \`kafka-producer-perf-test\` (its defaults, a fresh JVM), on the same 2 vCPUs; rounds interleave the three brokers (each started fresh, measured, stopped). Ratios above 1 mean Weir has more of the figure (for latency, RSS and start-up, lower is better).

$table
MD
)
echo "$body"

if $write; then
    python3 - "$body" <<'PY'
import pathlib, sys
doc = pathlib.Path("docs/benchmarks.md")
text = doc.read_text()
start, end = "<!-- bench/run.sh --peer kafka begin -->", "<!-- bench/run.sh --peer kafka end -->"
section = f"{start}\n{sys.argv[1]}\n{end}"
if start in text and end in text:
    a, b = text.index(start), text.index(end) + len(end)
    text = text[:a] + section + text[b:]
else:
    text = text.rstrip("\n") + (
        "\n\n## Weir ÷ Kafka\n\n"
        "Command: `bench/run.sh --peer kafka` (bench/peers/compare.sh; Apache Kafka from "
        "bench/peers/kafka.sh).\n\n" + section + "\n"
    )
doc.write_text(text)
PY
    step "wrote docs/benchmarks.md"
fi
