#!/usr/bin/env bash
#  run.sh - installs what is missing, builds, and runs a cartmq cluster in
#  the foreground: redis-server, the broker and two cart workers, with all
#  local state under var/. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

state=$PWD/var
mkdir -p "$state/redis"
#  Its own port, so a system redis-server on 6379 is left alone.
redis_port=${CARTMQ_REDIS_PORT:-6390}
pids=()
stop() {
    trap - INT TERM EXIT
    echo "stopping cluster"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait || true
}
trap stop INT TERM EXIT

redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$state/redis" \
    --appendonly yes --save '' --daemonize no \
    --logfile "$state/redis/redis.log" &
pids+=($!)
build/broker/cartmq-broker --config config/cartmq.cfg &
pids+=($!)
build/worker/cartmq-worker --config config/cartmq.cfg \
    --redis "redis://127.0.0.1:$redis_port/0" --processes 2 &
pids+=($!)
echo "cartmq running: broker tcp://127.0.0.1:5555, redis :$redis_port," \
     "state in $state. Try: build/client/cartmq get alice"
wait -n || true
