#!/usr/bin/env bash
#  fuzz.sh - builds the libFuzzer targets with clang and runs each for a
#  bounded time, starting from the seed corpus in tests/fuzz/corpus.
#  Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
#  A longer hunt: scripts/fuzz.sh 3600. A crash leaves crash-* files in
#  build-fuzz/ and fails the script; turn each into a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCARTMQ_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_mdp fuzz_broker_core \
    fuzz_cart_request >/dev/null
status=0
for target in mdp broker_core cart_request; do
    work=build-fuzz/corpus-$target
    mkdir -p "$work"
    cp -n tests/fuzz/corpus/$target/* "$work"/ 2>/dev/null || true
    log=build-fuzz/fuzz-$target.log
    echo "== fuzz_$target for ${seconds}s"
    if (cd build-fuzz && ASAN_OPTIONS=detect_leaks=1 \
            ./tests/fuzz/fuzz_$target -max_total_time="$seconds" \
            -max_len=4096 -print_final_stats=1 "corpus-$target" \
            >"fuzz-$target.log" 2>&1); then
        grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$log" \
            | sed "s/^/fuzz_$target /"
    else
        echo "fuzz_$target FAILED; see $log"; tail -40 "$log"; status=1
    fi
done
exit $status
