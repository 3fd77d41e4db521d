#!/usr/bin/env bash
# Run every cargo-fuzz target, one after another, and print a summary.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 600 (10 minutes, what issue 8 asks of each target).
# TARGET defaults to all of them: frame request codec record_batch decompress.
#
# Each target runs in a single libFuzzer process (this is a shared 2-core machine; see
# docs/fuzzing.md), starting from its working corpus `fuzz/corpus/<target>` plus the seeds
# tracked in git (`fuzz/seeds/<target>`). Logs go to `fuzz/logs/<target>.log` (git-ignored).
# A crash, leak, OOM or timeout input lands in `fuzz/artifacts/<target>/`; the script keeps
# going with the next target, and exits non-zero at the end if any target failed, so a CI
# job or a long campaign reports every finding at once.
#
# FUZZ_ARGS adds libFuzzer flags after the script's own (the last of a flag wins), e.g.
# FUZZ_ARGS="-max_len=65536" scripts/fuzz.sh 600 request.
#
# cargo-fuzz needs nightly compiler flags (-Zsanitizer=address). With only a stable
# toolchain, RUSTC_BOOTSTRAP=1 unlocks them; it is set here unless the caller set it.
set -euo pipefail

cd "$(dirname "$0")/.."

all_targets=(frame request codec record_batch decompress)
secs="${1:-600}"
if [[ $# -gt 0 ]]; then shift; fi
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then targets=("${all_targets[@]}"); fi

if ! [[ "$secs" =~ ^[0-9]+$ ]] || [[ "$secs" -eq 0 ]]; then
  echo "fuzz.sh: SECONDS_PER_TARGET must be a positive integer, got '$secs'" >&2
  exit 2
fi
for t in "${targets[@]}"; do
  case " ${all_targets[*]} " in
    *" $t "*) ;;
    *) echo "fuzz.sh: unknown target '$t' (known: ${all_targets[*]})" >&2; exit 2 ;;
  esac
done
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz is not installed (cargo install cargo-fuzz)" >&2
  exit 2
fi

export RUSTC_BOOTSTRAP="${RUSTC_BOOTSTRAP:-1}"
mkdir -p fuzz/logs

# Build everything first so a compile error fails fast, before any fuzzing time is spent.
for t in "${targets[@]}"; do
  echo "== build $t"
  cargo fuzz build "$t"
done

declare -A status execs rate rss corpus cov elapsed
failed=0
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  log="fuzz/logs/$t.log"
  # Any allocation above 256 MB is a finding for the decoders of whole requests: inputs are
  # at most 4 KB, so only a length or count taken from the input unchecked can ask for that.
  extra=()
  # decompress too: its output is at most 64 KiB, and zstd's window (up to 128 MiB for a
  # frame that asks for it, docs/fuzzing.md) is the largest allocation a codec may make.
  case "$t" in request | codec | decompress) extra=(-malloc_limit_mb=256) ;; esac
  echo "== fuzz $t for ${secs}s (log: $log)"
  start=$(date +%s)
  set +e
  # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
  cargo fuzz run "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 "${extra[@]}" ${FUZZ_ARGS:-} \
    >"$log" 2>&1
  rc=$?
  set -e
  elapsed[$t]=$(($(date +%s) - start))
  execs[$t]=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate[$t]=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  rss[$t]=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
  # libFuzzer's own corpus (inputs that add coverage) at the end, e.g. "1062/148Kb", and the
  # edge coverage; fuzz/corpus/<target> also keeps inputs later superseded.
  corpus[$t]=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -n 1 | cut -d' ' -f2)
  cov[$t]=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  if [[ $rc -eq 0 ]]; then
    status[$t]=clean
  else
    status[$t]="FAILED (exit $rc; see $log and fuzz/artifacts/$t/)"
    failed=1
    tail -n 40 "$log" >&2
  fi
done

echo
echo "== summary ($(date -u +%Y-%m-%dT%H:%MZ), ${secs}s per target)"
printf '%-13s %6s %12s %8s %7s %7s %14s  %s\n' target secs execs exec/s rss_mb cov corpus result
for t in "${targets[@]}"; do
  printf '%-13s %6s %12s %8s %7s %7s %14s  %s\n' "$t" "${elapsed[$t]}" "${execs[$t]:--}" \
    "${rate[$t]:--}" "${rss[$t]:--}" "${cov[$t]:--}" "${corpus[$t]:--}" "${status[$t]}"
done
exit "$failed"
