#!/usr/bin/env bash
#  soak.sh - runs the chaos mix (steady client load with retries and
#  request_ids; workers SIGKILLed and SIGSTOPped; Redis and the broker
#  restarted once) for DURATION_SECONDS, then checks every cart and reports
#  requests served, errors, and broker and worker RSS at start and end.
#  Not in CI: run it by hand, e.g. for 30 minutes: scripts/soak.sh 1800
#  Usage: scripts/soak.sh DURATION_SECONDS [BUILD_DIR]   (default build)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]] || [ "$1" -lt 30 ]; then
    echo "usage: scripts/soak.sh DURATION_SECONDS (at least 30) [BUILD_DIR]" >&2
    exit 2
fi
build=${2:-build}
for program in broker/cartmq-broker worker/cartmq-worker; do
    if [ ! -x "$build/$program" ]; then
        echo "soak: $build/$program missing; build first:" \
             "cmake -S . -B $build && cmake --build $build" >&2
        exit 2
    fi
done
exec /usr/bin/python3 tests/soak/soak.py --duration "$1" --build "$build"
