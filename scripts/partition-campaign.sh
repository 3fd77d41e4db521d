#!/usr/bin/env bash
# The long partition fault campaign: the suite's `partition_faults` test (3 real weir-broker
# nodes, every cluster link through a fault proxy; idempotent acks=all producers and a group
# consumer while nodes are killed, paused, isolated, partitioned one way, flapped, wiped (with
# 3 replicas) and all killed at once), with many more faults. At the end every partition is
# read from every broker that serves it and in assign mode, and the jepsen checker must find
# no lost, reordered, phantom or duplicated record, no offset holding two values and no
# committed offset going back.
#
# Usage: scripts/partition-campaign.sh [FAULTS (default 1000)] [SEED (default: the time)]
# Topics have 3 replicas (WEIR_CAMPAIGN_RF=1 runs it on unreplicated ones).
# WEIR_PARTITION_HISTORY=<file> keeps the history (JSON lines) for
# `cargo run -p weir-tests --bin weir-jepsen-check -- <file>`.
# Replay a failure with the seed it printed.
set -euo pipefail
cd "$(dirname "$0")/.."
faults="${1:-1000}"
export WEIR_PARTITION_FAULTS="$faults"
if [ -n "${2:-}" ]; then
    export WEIR_PARTITION_SEED="$2"
fi
# With cargo test rather than nextest, whose profile stops a test after 5 minutes: this one
# takes about 2.3 s per fault at replication factor 3 (debug build, 2 cores): about 40 min
# for 1,000.
cargo test -p weir-tests --test partition_faults partition_faults_lose_no_acknowledged_record \
    -- --nocapture 2>&1 |
    grep -E "seed|^fault|faults in|sends|lost|inconsistent|reordered|phantoms|duplicates|commits backwards|  |test result|panicked|FAILED"
