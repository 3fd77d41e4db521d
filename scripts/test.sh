#!/usr/bin/env bash
# Runs the whole Weir test suite: formatting, lints, the code's layout (file sizes, module
# cycles: scripts/check-layout.sh), every test (unit, integration, property,
# crash and failure-injection), the doc tests, then the real-client compatibility suite
# (tests/compat: kcat, the Python clients, Apache Kafka's Java client, tools and Streams, and
# headless Chromium against the weir-broker binary). Installs what the tests need and fails,
# never skips, when something is missing. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

command -v cargo >/dev/null || { echo "error: cargo is not installed (https://rustup.rs)" >&2; exit 1; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "layout: no library file over 700 lines, no import cycle between modules"
./scripts/check-layout.sh

if ! cargo nextest --version >/dev/null 2>&1; then
    step "installing cargo-nextest"
    cargo install --locked cargo-nextest
fi

step "tests (cargo nextest)"
cargo nextest run --workspace --locked --no-fail-fast

step "doc tests"
cargo test --workspace --locked --doc

# --- Real-client compatibility suite (tests/compat): kcat, confluent-kafka, kafka-python
# against the real weir-broker binary. Every missing tool is installed or the run fails.

# Runs apt-get as root, or through sudo when not root.
apt_get() {
    if [ "$(id -u)" -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo DEBIAN_FRONTEND=noninteractive apt-get "$@"
    else
        return 1
    fi
}

# Installs Debian packages; refreshes the package lists first if a plain install fails.
apt_install() {
    command -v apt-get >/dev/null 2>&1 || return 1
    apt_get install -y "$@" || { apt_get update && apt_get install -y "$@"; }
}

if ! command -v kcat >/dev/null 2>&1; then
    step "installing kcat (apt-get install -y kcat)"
    apt_install kcat || true
    if ! command -v kcat >/dev/null 2>&1; then
        echo "error: kcat is required by the compatibility tests and could not be installed;" >&2
        echo "       install it (Debian/Ubuntu: apt-get install -y kcat) and run again" >&2
        exit 1
    fi
fi

# The console's browser test (tests/compat/test_console.py) drives Debian's headless Chromium
# through its chromedriver.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    step "installing chromium and chromium-driver (apt-get install -y chromium chromium-driver)"
    apt_install chromium chromium-driver || true
    if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
        echo "error: chromium and chromedriver are required by the console test and could not be installed;" >&2
        echo "       install them (Debian: apt-get install -y chromium chromium-driver) and run again" >&2
        exit 1
    fi
fi

# A .venv left half-made (no working pip) is rebuilt. Debian ships venv's ensurepip apart, in
# python3-venv.
if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    step "creating .venv (python3 -m venv)"
    command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv || true
    rm -rf .venv
    if ! python3 -m venv .venv; then
        step "installing python3-venv (apt-get)"
        rm -rf .venv
        apt_install python3-venv || true
        if ! python3 -m venv .venv; then
            echo "error: the compatibility tests need python3 with the venv module;" >&2
            echo "       install it (Debian/Ubuntu: apt-get install -y python3 python3-venv)" >&2
            exit 1
        fi
    fi
fi

# The Java part (tests/compat/test_java_*.py) builds tests/java with Maven, which fetches Apache
# Kafka's jars into the ignored .cache/m2 (fast after the first run); it needs a JDK 17+ and Maven.
if ! command -v java >/dev/null 2>&1 || ! command -v javac >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
    step "installing a JDK and Maven (apt-get install -y openjdk-17-jdk-headless maven)"
    apt_install openjdk-17-jdk-headless maven || true
    if ! command -v javac >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
        echo "error: the Java compatibility tests need a JDK (17 or newer) and Maven, which could" >&2
        echo "       not be installed; install them (Debian/Ubuntu: apt-get install -y" >&2
        echo "       openjdk-17-jdk-headless maven) and run again" >&2
        exit 1
    fi
fi

step "Python clients for the compatibility tests (pip install -r tests/compat/requirements.txt)"
.venv/bin/python -m pip install --disable-pip-version-check -q -r tests/compat/requirements.txt

step "cargo build -p weir-broker"
cargo build -p weir-broker --locked
cargo build -p weir-cli --locked   # the `weir` binary for tests/compat/test_cli.py
cargo build -p weir-tests --bin weir-jepsen-check --locked   # test_partition_campaign.py's checker
# weir-client's interop example (client/examples/interop.rs) is built by the `interop` fixture
# of tests/compat/test_client_interop.py, so running pytest alone never uses a stale one.

step "compatibility tests (pytest tests/compat)"
.venv/bin/python -m pytest tests/compat -q
