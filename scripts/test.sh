#!/usr/bin/env bash
# Runs the whole Weir test suite: formatting, lints, every test (unit, integration, property,
# crash and failure-injection) and the doc tests. Installs what the tests need and fails,
# never skips, when something is missing. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

command -v cargo >/dev/null || { echo "error: cargo is not installed (https://rustup.rs)" >&2; exit 1; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

if ! cargo nextest --version >/dev/null 2>&1; then
    step "installing cargo-nextest"
    cargo install --locked cargo-nextest
fi

step "tests (cargo nextest)"
cargo nextest run --workspace --locked --no-fail-fast

step "doc tests"
cargo test --workspace --locked --doc
