#!/usr/bin/env bash
# Runs the crash campaign for longer than CI does: the weir-broker binary is SIGKILLed (and
# paused with SIGSTOP/SIGCONT) under acks=all producers and a consumer group, then the whole
# history is checked. Both sides run: weir-client (tests/tests/campaign_kill.rs) and
# confluent-kafka (tests/compat/test_campaign.py).
#
#   scripts/campaign.sh [kills] [seed]       e.g. scripts/campaign.sh 200
#   WEIR_CAMPAIGN_SIDE=rust|python|both      which campaign to run (default both)
#
# Each side prints its seed first and its figures (kills survived, records checked, commits)
# last; a failure prints the seed to replay with: scripts/campaign.sh <kills> <seed>.
# The Python side needs .venv (created by scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

kills="${1:-${WEIR_CAMPAIGN_KILLS:-100}}"
side="${WEIR_CAMPAIGN_SIDE:-both}"
export WEIR_CAMPAIGN_KILLS="$kills"
if [ -n "${2:-}" ]; then
    export WEIR_CAMPAIGN_SEED="$2"
fi
case "$side" in rust|python|both) ;; *) echo "error: WEIR_CAMPAIGN_SIDE must be rust, python or both" >&2; exit 2 ;; esac

# pytest-timeout's default (180 s) is for CI-sized runs; allow about 3 s per kill plus settling.
timeout_s=$(( kills * 3 + 300 ))

if [ "$side" != python ]; then
    printf '\n==> weir-client campaign: %s kills\n' "$kills"
    cargo build -p weir-broker --bin weir-broker
    # cargo test, not nextest: the nextest profile ends tests after 5 minutes.
    cargo test -p weir-tests --test campaign_kill -- --nocapture
fi

if [ "$side" != rust ]; then
    printf '\n==> confluent-kafka campaign: %s kills\n' "$kills"
    if ! .venv/bin/python -c 'import confluent_kafka' 2>/dev/null; then
        echo "error: .venv with confluent-kafka is missing; run scripts/test.sh once (or its pip step)" >&2
        exit 1
    fi
    cargo build -p weir-broker --bin weir-broker
    .venv/bin/python -m pytest tests/compat/test_campaign.py -q -s \
        -o "timeout=${timeout_s}" -k survives_kills
fi
