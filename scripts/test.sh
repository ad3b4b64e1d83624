#!/usr/bin/env bash
#  test.sh - installs what is missing, builds, and runs every test: the
#  plain build, then the whole suite again under ASan + UBSan.
#  Usage: scripts/test.sh [--quick]   (--quick: plain build only)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

jobs=$(nproc)
run_suite() {
    local dir=$1; shift
    cmake -S . -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j"$jobs"
    ctest --test-dir "$dir" --output-on-failure
}

echo "== plain build"
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo
[ "${1:-}" = "--quick" ] && exit 0

echo "== ASan + UBSan build"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_suite build-asan -DCARTMQ_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
