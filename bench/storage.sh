#!/usr/bin/env bash
# Runs the storage-engine Criterion benchmarks (which measure this machine's own
# append+fdatasync and buffered-write figures in the same run) and prints a markdown table of
# the results. With --write, replaces the generated section of docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."

write=false
[ "${1:-}" = "--write" ] && write=true

# Benchmark temp files go next to the target directory: same filesystem as a data directory.
export TMPDIR="${TMPDIR:-$PWD/target/bench-tmp}"
mkdir -p "$TMPDIR"
cargo bench -p weir-broker --bench log -- --noplot >&2

table=$(python3 - <<'PY'
import json, pathlib
root = pathlib.Path("target/criterion")
rows = []
for est in sorted(root.glob("**/new/estimates.json")):
    bench = json.loads((est.parent / "benchmark.json").read_text())
    e = json.loads(est.read_text())
    ns = e["median"]["point_estimate"]
    lo = e["median"]["confidence_interval"]["lower_bound"]
    hi = e["median"]["confidence_interval"]["upper_bound"]
    tp = bench.get("throughput") or {}
    if "Bytes" in tp:
        rate = f'{tp["Bytes"] / ns * 1e3:,.0f} MB/s'
        spread = f'{tp["Bytes"] / hi * 1e3:,.0f}–{tp["Bytes"] / lo * 1e3:,.0f}'
    elif "Elements" in tp:
        rate = f'{tp["Elements"] / ns * 1e9:,.0f} /s'
        spread = f'{tp["Elements"] / hi * 1e9:,.0f}–{tp["Elements"] / lo * 1e9:,.0f}'
    else:
        rate, spread = "", ""
    rows.append((bench["full_id"], f"{ns/1e3:,.1f} µs", rate, spread))
print("| Benchmark | Median time per iteration | Throughput (median) | 95% CI |")
print("|---|---|---|---|")
for r in rows:
    print("| `%s` | %s | %s | %s |" % r)
PY
)
echo "$table"

if $write; then
    python3 - "$table" <<'PY'
import sys, pathlib, datetime, subprocess
doc = pathlib.Path("docs/benchmarks.md")
text = doc.read_text()
start, end = "<!-- storage:begin -->", "<!-- storage:end -->"
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
body = f"{start}\nMeasured {datetime.date.today()} at commit `{commit}` with `bench/storage.sh`.\n\n{sys.argv[1]}\n{end}"
a, b = text.index(start), text.index(end) + len(end)
doc.write_text(text[:a] + body + text[b:])
PY
fi
