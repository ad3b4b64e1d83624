#!/usr/bin/env bash
#  run.sh - installs what is missing, builds, and runs a cartmq cluster in
#  the foreground: redis-server, the broker and two cart workers, with all
#  local state under var/. Ctrl-C stops everything.
#  --redis sentinel|cluster runs Redis as a Sentinel set or a Redis Cluster
#  (scripts/redis-topology.sh) instead of one redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."

#  --redis MODE (single, sentinel or cluster); other flags pass through.
redis_mode=single
rest=()
while [ $# -gt 0 ]; do
    case "$1" in
        --redis) redis_mode=${2:?--redis needs single, sentinel or cluster}; shift 2 ;;
        *) rest+=("$1"); shift ;;
    esac
done
set -- ${rest[@]+"${rest[@]}"}
case "$redis_mode" in
    single | sentinel | cluster) ;;
    *) echo "run.sh: --redis must be single, sentinel or cluster" >&2; exit 2 ;;
esac
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

source scripts/redis-topology.sh
"redis_topology_$redis_mode"
build/broker/cartmq-broker --config config/cartmq.cfg &
pids+=($!)
build/worker/cartmq-worker --config config/cartmq.cfg \
    --redis "$redis_url" --processes 2 &
pids+=($!)
echo "cartmq running: broker tcp://127.0.0.1:5555, redis $redis_url," \
     "state in $state. Try: build/client/cartmq get alice"
wait -n || true
