#!/usr/bin/env bash
# Checks the shape of the code that clippy and rustfmt do not:
#
# - no library file over 700 lines, tests aside (a file's `#[cfg(test)]` module and files
#   named tests.rs do not count): past that a module is doing more than one thing;
# - no import cycle between the modules of any crate (the graph from `cargo modules
#   dependencies`, installed when missing, checked by scripts/module_cycles.py), so that each
#   module can be read, tested and moved on its own.
#
# Functions over 80 lines are held by clippy (`too_many_lines`, clippy.toml). Called by
# scripts/test.sh; runs on its own too.
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_FILE_LINES=700
status=0

# Lines of a file before its first `#[cfg(test)]` at column 0.
code_lines() {
    awk '/^#\[cfg\(test\)\]/ { exit } { n++ } END { print n + 0 }' "$1"
}

while IFS= read -r file; do
    lines=$(code_lines "$file")
    if [ "$lines" -gt "$MAX_FILE_LINES" ]; then
        echo "error: $file has $lines lines of library code (at most $MAX_FILE_LINES); split it" >&2
        status=1
    fi
done < <(find protocol/src broker/src client/src cli/src -name '*.rs' ! -name 'tests.rs' | sort)

if ! cargo modules --version >/dev/null 2>&1; then
    echo "==> installing cargo-modules (the import-cycle check)"
    # 0.27 is the newest release that builds with Rust 1.95.
    cargo install --locked cargo-modules@0.27.0
fi

# Each library crate, and the binary whose modules form a tree of their own. cargo-modules
# prints the item graph; module_cycles.py collapses it into modules and looks for circles
# (cargo-modules' own --acyclic works on items, where a type and its methods already form one).
check_cycles() {
    local package=$1
    shift
    local graph
    graph=$(cargo modules dependencies --package "$package" "$@" \
        --no-externs --no-sysroot --no-owns 2>/dev/null) || {
        echo "error: cargo modules dependencies failed for $package" >&2
        status=1
        return
    }
    if ! printf '%s\n' "$graph" | python3 scripts/module_cycles.py "$package"; then
        status=1
    fi
}
check_cycles weir-protocol --lib
check_cycles weir-broker --lib
check_cycles weir-client --lib
check_cycles weir-cli --bin weir

exit "$status"
