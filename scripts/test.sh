#!/usr/bin/env bash
#  test.sh - installs what is missing, builds, and runs every test: the
#  plain build's suite, broker and worker under valgrind for one end-to-end
#  run, each fuzz target for a bounded time, then the whole suite again
#  under ASan + UBSan.
#  Usage: scripts/test.sh [--quick]   (--quick: plain build's suite only)
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

echo "== format (clang-format, .clang-format at the top)"
if git rev-parse --git-dir >/dev/null 2>&1; then
    git ls-files -z '*.c' '*.h' | xargs -0 clang-format --dry-run --Werror
fi

echo "== plain build"
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo
[ "${1:-}" = "--quick" ] && exit 0

echo "== valgrind: broker and worker, one end-to-end run"
scripts/valgrind.sh build

echo "== fuzzing, ${CARTMQ_FUZZ_SECONDS:=20}s per target"
scripts/fuzz.sh "$CARTMQ_FUZZ_SECONDS"

echo "== ASan + UBSan build"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_suite build-asan -DCARTMQ_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
