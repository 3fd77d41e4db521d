#!/usr/bin/env bash
# The long metadata-quorum fault campaign: the suite's `cluster_faults` test (a proxied
# 3-node cluster of real weir-broker processes: leader isolated, one-way partitions, delays,
# flapping links, SIGSTOP/SIGCONT of the leader, kill -9 and restart, wiped followers) with
# many more faults. Every fault is followed by the metadata-prefix check and, at the end,
# every acknowledged topic creation must be on every node.
#
# Usage: scripts/cluster-campaign.sh [FAULTS (default 200)] [SEED (default: the time)]
# Replay a failure with the seed it printed.
set -euo pipefail
cd "$(dirname "$0")/.."
faults="${1:-200}"
export WEIR_CLUSTER_FAULTS="$faults"
if [ -n "${2:-}" ]; then
    export WEIR_CLUSTER_SEED="$2"
fi
# With cargo test rather than nextest, whose profile stops a test after 5 minutes: this one
# takes about 2-4 s per fault.
cargo test -p weir-tests --test cluster_faults -- --nocapture 2>&1 |
    grep -E "seed|fault|acknowledged|test result|panicked|FAILED"
