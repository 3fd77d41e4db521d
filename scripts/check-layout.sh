#!/usr/bin/env bash
# Checks the shape of the code that clippy and rustfmt do not:
#
# - no library file over 700 lines, tests aside (a file's `#[cfg(test)]` module and files
#   named tests.rs do not count): past that a module is doing more than one thing;
# - no import cycle between the modules of any crate (`cargo modules dependencies --acyclic`,
#   installed when missing), so that each module can be read, tested and moved on its own.
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

# Each library crate, and the binaries whose modules form a tree of their own.
check_cycles() {
    local package=$1 target=$2
    local out
    if ! out=$(cargo modules dependencies --package "$package" "$target" --acyclic \
        --no-externs --no-sysroot --no-fns --no-traits --no-types 2>&1 >/dev/null); then
        echo "error: import cycle between modules of $package ($target):" >&2
        printf '%s\n' "$out" | sed 's/^/    /' >&2
        status=1
    fi
}
check_cycles weir-protocol --lib
check_cycles weir-broker --lib
check_cycles weir-client --lib
check_cycles weir-cli --bin=weir

exit "$status"
